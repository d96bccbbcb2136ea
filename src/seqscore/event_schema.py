"""The normalised event record: the one row shape every event store holds.

Ingest produces Arrow tables of this schema; event stores persist them; the
window aggregation reads them. See spec/events.md for how raw webhook fields map
onto these columns.
"""

from __future__ import annotations

import pyarrow as pa

#: Event types, as normalised (``spam_report`` and ``spam report`` become ``spamreport``).
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "processed", "dropped", "delivered", "deferred", "bounce", "open", "click",
        "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe",
        "account_status_change",
    }
)

#: The seven bounce classes, as normalised.
BOUNCE_CLASSES: frozenset[str] = frozenset(
    {
        "Invalid Address", "Technical", "Content", "Reputation", "Frequency/Volume",
        "Mailbox Unavailable", "Unclassified",
    }
)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.int64(), nullable=False),
        # sg_event_id, or a key derived from the event's canonical JSON when absent
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("message_id", pa.string()),  # sg_message_id; absent on delayed bounces
        pa.field("event", pa.string(), nullable=False),  # one of EVENT_TYPES
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),  # the event's own time
        pa.field("day", pa.date32(), nullable=False),  # UTC day of ts
        pa.field("recipient", pa.string()),  # hex HMAC of the normalised address
        pa.field("domain", pa.string()),  # recipient's domain, lower-cased
        pa.field("provider", pa.string()),  # mailbox provider (gmail, microsoft, ... or domain)
        pa.field("bounce_type", pa.string()),  # bounce | blocked (bounces only)
        pa.field("bounce_class", pa.string()),  # one of BOUNCE_CLASSES
        pa.field("status", pa.string()),  # SMTP enhanced status, e.g. 5.1.1
        pa.field("machine_open", pa.bool_(), nullable=False),  # Apple MPP and the like
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("raw", pa.string()),  # the other fields as JSON, size-capped
    ]
)
