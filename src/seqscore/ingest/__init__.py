"""Events in: parsing and normalising SendGrid Event Webhook data (spec/events.md).

- ``webhook``: a webhook body (JSON array) -> ``EVENT_SCHEMA`` Arrow table + rejects
- ``body``: the body as a whole: UTF-8, a JSON array (else ``BodyError``: a 400)
- ``payload``: a SendGrid event as a typed ``msgspec.Struct``
- ``normalise``: the per-field rules of the spec's field table
- ``rawjson``: the ``raw`` column (other fields, recipient scrubbed, size-capped)
- ``rows``: parsed rows -> the Arrow table
- ``recipients``: the per-installation secret and the recipient hash
- ``providers``: mailbox provider of a domain (the spec's default table)
- ``signature``: SendGrid's signed-webhook (ECDSA P-256) verification
- ``files``, ``jsonarray``, ``csvrecords``: streaming readers for ``seqscore import``

No HTTP and no storage here: the API and the stores call in. Decisions: docs/ingest.md.
"""
