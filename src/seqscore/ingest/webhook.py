"""Parse a SendGrid Event Webhook body into normalised rows (``EVENT_SCHEMA``).

A body is a JSON array of event objects. ``EventParser.parse`` returns an Arrow
table of the valid events and a list of rejects (index, original bytes,
reason); a body that is not a JSON array at all raises ``BodyError``. Nothing
else is ever raised for any input. The field rules are ``normalise``'s; the
decisions are in docs/ingest.md.

How it stays fast: a body of plain SendGrid events is decoded in one call into
a list of ``payload.StrictEvent`` structs (no dicts); what is not a column is
re-encoded from each struct as its ``raw`` JSON. A body with custom args is
decoded in two calls: into ``payload.Event`` structs, and into each event's
fields by name (values left undecoded) to pick out the custom ones. Only a body
with an element neither fits (a wrong type, not an object) is read element by
element, an odd one through a plain ``dict``. Every path ends in ``_row``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa
from msgspec import UNSET, Raw

from seqscore.ingest import normalise as norm
from seqscore.ingest.body import BodyError, Elements, check_utf8, split_body
from seqscore.ingest.payload import ATTRIBUTE_OF, Event, StrictEvent
from seqscore.ingest.providers import DEFAULT_PROVIDERS, ProviderLookup, provider_function
from seqscore.ingest.rawjson import RawJson
from seqscore.ingest.recipients import RecipientHasher
from seqscore.ingest.rows import Row, to_table

__all__ = [
    "DEFAULT_RAW_CAP_BYTES", "BodyError", "EventParser", "ParsedBatch", "Reject",
    "parse_webhook_body", "split_body",
]

#: Default size cap of the ``raw`` column: UTF-8 bytes of the JSON object.
DEFAULT_RAW_CAP_BYTES: Final = 4096

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_MISSING = (UNSET, None)
#: Integer seconds up to this are in range (and not milliseconds): the fast path.
_MAX_SECONDS: Final = norm.MAX_TS_US // 1_000_000
_MISSING_EMAIL: Final = 'missing "email"'
_UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)

# (recipient hash, domain, provider, address as UTF-8); all None: no recipient.
_Recipient = tuple[str, str, str, bytes] | tuple[None, None, None, None]
_NO_RECIPIENT: _Recipient = (None, None, None, None)
# Email as sent -> its _Recipient, or the reason it is rejected.
_Memo = dict[str, "_Recipient | str"]
#: Recipients a parser remembers (about 200 bytes each) before it starts afresh.
RECIPIENT_MEMO_ENTRIES: Final = 100_000


@dataclass(frozen=True, slots=True)
class Reject:
    """One array element that was not stored, kept whole with the reason.

    ``index`` is the element's 0-based position in the body's array; ``raw``
    is its exact JSON bytes as received (it may hold a plaintext address: it
    belongs in the quarantine, never in the event store or a log).
    """

    index: int
    raw: bytes
    reason: str

    @property
    def text(self) -> str:
        """``raw`` as text (the body was checked to be UTF-8)."""
        return self.raw.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """The valid events of a body as an ``EVENT_SCHEMA`` table, and the rejects."""

    table: pa.Table
    rejects: list[Reject]

    @property
    def total(self) -> int:
        """Number of elements in the body: ``table.num_rows + len(rejects)``."""
        return int(self.table.num_rows) + len(self.rejects)


class EventParser:
    """Turns webhook bodies into ``EVENT_SCHEMA`` rows for one installation.

    ``recipient_key`` is the installation's secret (``recipients``);
    ``providers`` maps a lower-case domain to its mailbox provider (a mapping,
    whose unknown domains are their own provider, or a function);
    ``raw_cap_bytes`` caps the ``raw`` column (see ``rawjson``; 0 stores no
    raw JSON). A parser may be shared between threads; all it keeps between calls
    is a bounded memo of the recipients it has hashed, in this process's memory.
    """

    def __init__(
        self,
        recipient_key: bytes,
        *,
        providers: ProviderLookup = DEFAULT_PROVIDERS,
        raw_cap_bytes: int = DEFAULT_RAW_CAP_BYTES,
    ) -> None:
        self._hash = RecipientHasher(recipient_key)
        self._key = recipient_key
        self._provider: Callable[[str], str] = provider_function(providers)
        self._provider_table = providers if isinstance(providers, Mapping) else None
        self._raw = RawJson(raw_cap_bytes)
        self._memo: _Memo = {}
        self._decode_all = msgspec.json.Decoder(list[StrictEvent]).decode
        self._decode_all_loose = msgspec.json.Decoder(list[Event]).decode
        self._decode_all_names = msgspec.json.Decoder(list[dict[str, Raw]]).decode
        self._decode_event = msgspec.json.Decoder(Event).decode
        self._decode_names = msgspec.json.Decoder(dict[str, Raw]).decode
        self._decode_any = msgspec.json.Decoder().decode
        self._encode = msgspec.json.Encoder().encode

    def parse(self, body: bytes, *, account_id: int, ingested_at: dt.datetime) -> ParsedBatch:
        """Parse one body: a JSON array of events (bytes as received).

        ``account_id`` and ``ingested_at`` (timezone-aware; stored to the
        microsecond) fill those columns of every row. Every element becomes
        either a row or a ``Reject``: ``result.total`` equals the array's length.
        Raises ``BodyError`` for a body that is not a JSON array (see
        ``split_body``) and nothing else.
        """
        ingested_us = (ingested_at - _EPOCH) // _US
        rows: list[Row] = []
        rejects: list[Reject] = []
        check_utf8(body)
        decoded = self._decode_whole(body)
        if decoded is None:
            self._parse_each(Elements(body, split_body(body)), rows, rejects)
        else:
            self._parse_all(*decoded, Elements(body), rows, rejects)
        return ParsedBatch(to_table(rows, account_id=account_id, ingested_us=ingested_us),
                           rejects)

    def _decode_whole(
        self, body: bytes,
    ) -> tuple[list[StrictEvent] | list[Event], list[dict[str, Raw]] | None] | None:
        """The fast paths: the whole body decoded in one call, into strict structs
        (no custom args), else into structs plus each event's fields by name (to
        find the custom args); None if an element fits neither (a wrong type, not
        an object), and the body must be read element by element."""
        try:
            return self._decode_all(body), None
        except _UNDECODABLE:
            pass
        try:
            return self._decode_all_loose(body), self._decode_all_names(body)
        except _UNDECODABLE:
            return None

    def _parse_all(self, events: list[StrictEvent] | list[Event],
                   names: list[dict[str, Raw]] | None, elements: Elements,
                   rows: list[Row], rejects: list[Reject]) -> None:
        """A body decoded in one call; ``names`` holds each event's fields by name
        (None: there are no custom args)."""
        memo = self._memo_for_body()
        row = self._row
        append = rows.append
        for index, event in enumerate(events):
            try:
                custom = None if names is None else {
                    key: value for key, value in names[index].items() if key not in ATTRIBUTE_OF}
                append(row(event, custom, elements, index, memo))
            except norm.FieldReject as exc:
                rejects.append(Reject(index, bytes(elements[index]), str(exc)))
            except Exception as exc:  # the promise: nothing but BodyError is raised
                rejects.append(Reject(index, bytes(elements[index]), _unreadable(exc)))

    def _memo_for_body(self) -> _Memo:
        """The recipients seen lately (the same few recur across bodies), emptied when
        it holds ``RECIPIENT_MEMO_ENTRIES``: a dict is safe to share between threads."""
        memo = self._memo
        if len(memo) >= RECIPIENT_MEMO_ENTRIES:
            memo.clear()
        return memo

    def _parse_each(self, elements: Elements, rows: list[Row], rejects: list[Reject]) -> None:
        """Element by element, for a body with an element no struct fits."""
        memo = self._memo_for_body()
        for index, element in enumerate(elements.items):
            try:
                try:
                    event = self._decode_event(element)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    rows.append(self._parse_dict(elements, index, memo))
                else:
                    custom = {key: value for key, value in self._decode_names(element).items()
                              if key not in ATTRIBUTE_OF}
                    rows.append(self._row(event, custom, elements, index, memo))
            except norm.FieldReject as exc:
                rejects.append(Reject(index, bytes(element), str(exc)))
            except Exception as exc:  # the promise: nothing but BodyError is raised
                rejects.append(Reject(index, bytes(element), _unreadable(exc)))

    def _parse_dict(self, elements: Elements, index: int, memo: _Memo) -> Row:
        """The slow path: any JSON value at all, through a plain ``dict``."""
        try:
            value = self._decode_any(elements[index])
        except RecursionError:
            raise norm.FieldReject("event is nested too deeply") from None
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
            raise norm.FieldReject(f"event is not valid JSON: {exc}") from None
        if type(value) is not dict:
            raise norm.FieldReject(f"event is not a JSON object: {norm.show(value)}")
        # Struct __init__ does not check types: the field rules take any value.
        event = Event(**{ATTRIBUTE_OF[key]: item for key, item in value.items()
                         if key in ATTRIBUTE_OF})
        custom = {key: item for key, item in value.items() if key not in ATTRIBUTE_OF}
        return self._row(event, custom, elements, index, memo, value)

    def _row(
        self, event: Event, custom: dict[str, Any] | None, elements: Elements, index: int,
        memo: _Memo, decoded: dict[str, Any] | None = None,
    ) -> Row:
        """The row of one event; ``custom`` holds the fields ``Event`` does not name.

        Raises ``FieldReject``. Consumes ``event``: its column fields are
        cleared and what remains is encoded as ``raw``.
        """
        # The common shapes are decided inline; anything else goes to ``norm``.
        name = event.event
        name = norm.EVENT_NAMES.get(name) if type(name) is str else None
        if name is None:
            name = norm.event_type(event.event)
        ts = event.timestamp
        ts_us = (ts * 1_000_000 if type(ts) is int and 0 <= ts <= _MAX_SECONDS
                 else norm.timestamp_us(ts))
        email = event.email
        known = memo.get(email) if type(email) is str else None
        if type(known) is not tuple:
            known = self._recipient(email, name, memo)
        recipient, domain, provider, address = known
        # Column fields whose value could not be read stay in ``raw``.
        keep: list[tuple[str, object]] | None = None
        event_id = event.sg_event_id
        if type(event_id) is not str or not event_id or event_id.isspace():
            event_id = norm.event_id(event.sg_event_id)
            if event_id is None:
                event_id = self._derived_event_id(elements[index], decoded)
                if event.sg_event_id not in _MISSING:
                    keep = [("sg_event_id", event.sg_event_id)]
        message_id = event.sg_message_id
        if type(message_id) is not str or not message_id:
            message_id = None
            if event.sg_message_id not in _MISSING:
                keep = [*(keep or ()), ("sg_message_id", event.sg_message_id)]
        bounce_type = bounce_class = status = None
        if name == "bounce" or event.type_ is not UNSET:
            bounce_type = norm.bounce_type(event.type_) if name == "bounce" else None
            if bounce_type is None and event.type_ is not UNSET:
                keep = [*(keep or ()), ("type_", event.type_)]
        if event.bounce_classification not in _MISSING:
            bounce_class = norm.bounce_class(event.bounce_classification)
            if bounce_class is None:
                keep = [*(keep or ()), ("bounce_classification", event.bounce_classification)]
        if event.status not in _MISSING:
            status = norm.optional_text(event.status)
            if status is None:
                keep = [*(keep or ()), ("status", event.status)]
        machine = event.sg_machine_open
        if machine is UNSET or machine is False or machine is None:
            machine = False
        elif machine is not True:
            original = machine
            machine = norm.machine_open(machine)
            if machine is None:
                machine = False
                keep = [*(keep or ()), ("sg_machine_open", original)]
        # The cheap test before looking for the address in a column: an "@" or a "%40".
        if address is not None and (
                "@" in event_id or "%" in event_id
                or (message_id is not None and ("@" in message_id or "%" in message_id))
                or (status is not None and ("@" in status or "%" in status))):
            # A column that quotes the address (some senders build ids from it).
            plain = address.decode("utf-8", "surrogatepass")
            event_id = self._private(event_id, plain)
            message_id = None if message_id is None else self._private(message_id, plain)
            status = None if status is None else self._private(status, plain)
        return (event_id, message_id, name, ts_us, ts_us // norm.US_PER_DAY, recipient, domain,
                provider, bounce_type, bounce_class, status, machine,
                self._raw.finish(self._rest(event, custom, keep), address))

    def _private(self, text: str, address: str) -> str:
        """``text`` (an id, a status), or a keyed stand-in if it quotes the address."""
        if norm.mentions_address(text, address):
            return norm.keyed_text(self._key, text)
        return text

    def _rest(self, event: Event, custom: dict[str, Any] | None,
              keep: list[tuple[str, object]] | None) -> bytes:
        """The JSON object of what has no column: ``event`` minus its column fields
        (but those in ``keep``), lenient fields normalised, then ``custom``."""
        event.email = event.timestamp = event.event = event.sg_event_id = UNSET
        event.sg_message_id = event.type_ = event.bounce_classification = UNSET
        event.status = event.sg_machine_open = UNSET
        if keep is not None:
            for attribute, value in keep:
                setattr(event, attribute, value)
        if type(event.category) is str:
            event.category = norm.category(event.category)  # type: ignore[assignment]
        if event.tls is not UNSET and type(event.tls) is not int:
            event.tls = norm.lenient_int(event.tls)  # type: ignore[assignment]
        if type(event.attempt) is str:
            event.attempt = norm.lenient_int(event.attempt)  # type: ignore[assignment]
        if type(event.asm_group_id) is str:
            event.asm_group_id = norm.lenient_int(event.asm_group_id)  # type: ignore[assignment]
        encoded = self._encode(event)
        if custom:
            more = self._encode(custom)
            encoded = more if len(encoded) == 2 else encoded[:-1] + b"," + more[1:]
        return encoded

    def _recipient(self, email: object, event: str, memo: _Memo) -> _Recipient:
        """(hash, domain, provider, address bytes) of ``email``; all None when absent
        from an event that needs none. Memoised by the value as sent."""
        if type(email) is str:
            known = memo.get(email)
            if known is None:
                address = email.strip().lower()
                local, at, domain = address.rpartition("@")
                if local and at and domain:  # norm.recipient_address, inline for speed
                    table = self._provider_table
                    provider = (table.get(domain, domain) if table is not None
                                else self._provider(domain))
                    known = (self._hash(address), domain, provider,
                             address.encode("utf-8", "surrogatepass"))
                else:
                    try:
                        norm.recipient_address(email)
                        known = _MISSING_EMAIL
                    except norm.FieldReject as exc:
                        known = str(exc)
                memo[email] = known
            if type(known) is tuple:
                return known
            if known != _MISSING_EMAIL or event in norm.MESSAGE_EVENTS:
                raise norm.FieldReject(known)
            return _NO_RECIPIENT
        if email is UNSET or email is None:
            if event in norm.MESSAGE_EVENTS:
                raise norm.FieldReject(_MISSING_EMAIL)
            return _NO_RECIPIENT
        norm.recipient_address(email)  # raises the reason for this non-string
        raise AssertionError("unreachable")  # pragma: no cover

    def _derived_event_id(self, element: Raw, decoded: dict[str, Any] | None) -> str:
        raw = bytes(element)
        if decoded is None:
            try:
                decoded = self._decode_any(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                # unreadable as a whole (a huge integer in a verbatim field): the bytes
                return norm.derived_event_id(self._key, raw)
        return norm.derived_event_id(self._key, norm.canonical_json(decoded, raw))


def _unreadable(exc: Exception) -> str:
    return f"event could not be read ({type(exc).__name__})"


def parse_webhook_body(
    body: bytes,
    *,
    account_id: int,
    ingested_at: dt.datetime,
    recipient_key: bytes,
    providers: ProviderLookup = DEFAULT_PROVIDERS,
    raw_cap_bytes: int = DEFAULT_RAW_CAP_BYTES,
) -> ParsedBatch:
    """One-shot ``EventParser(recipient_key, ...).parse(body, ...)``; see there."""
    parser = EventParser(recipient_key, providers=providers, raw_cap_bytes=raw_cap_bytes)
    return parser.parse(body, account_id=account_id, ingested_at=ingested_at)
