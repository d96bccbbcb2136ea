"""The field rules of spec/events.md: one small function per raw field.

Each function takes the value as decoded from JSON (any type, or ``UNSET`` when
the field is absent) and returns the normalised column value, or raises
``FieldReject`` with the reason the whole event is rejected. Fields that are
merely unrecognised (an unknown bounce class, say) never reject: the column is
left empty and the original value stays in the event's ``raw`` JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from decimal import Decimal
from typing import Final

import msgspec

from seqscore.event_schema import BOUNCE_CLASSES, EVENT_TYPES

UNSET: Final = msgspec.UNSET

#: Events about one message to one recipient: ``email`` is required on these.
#: ``account_status_change`` is about the sending account and has no recipient.
MESSAGE_EVENTS: frozenset[str] = EVENT_TYPES - {"account_status_change"}

#: Event type as sent -> as stored, for the exact spellings (see ``event_type``).
EVENT_NAMES: Final[dict[str, str]] = {name: name for name in EVENT_TYPES} | {
    "spam_report": "spamreport",
    "spam report": "spamreport",
}

#: Bounce class as sent, lower-cased -> as stored (see ``bounce_class``).
BOUNCE_CLASS_SPELLINGS: Final[dict[str, str]] = {
    name.lower(): name for name in BOUNCE_CLASSES} | {
    "technical failure": "Technical",
    "frequency or volume too high": "Frequency/Volume",
}

_BOUNCE_TYPES: frozenset[str] = frozenset({"bounce", "blocked"})
_MACHINE_OPEN_TEXT: dict[str, bool] = {"true": True, "1": True, "false": False, "0": False,
                                       "": False}

#: A timestamp above this many units is in milliseconds, else in seconds.
MILLISECONDS_ABOVE: Final = 10**12
#: Latest instant an Arrow/Python timestamp can hold: 9999-12-31T23:59:59.999999Z.
MAX_TS_US: Final = 253_402_300_799_999_999
US_PER_DAY: Final = 86_400_000_000

_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_MAX_NUMERIC_CHARS = 40
_SHOW_CHARS = 40


class FieldReject(Exception):
    """A field makes the whole event invalid; ``str(exc)`` is the reason."""


#: What a reject reason shows for a text that may hold an address.
MAY_HOLD_ADDRESS = 'a text with "@" (not shown)'


def show(value: object) -> str:
    """A short JSON-ish rendering of a field value for a reject reason (<= ~45 chars).

    Reasons are answered, logged and stored in plaintext, so a text with an ``@``
    (also URL-encoded), which may quote the recipient's address, is never shown.
    """
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str) and ("@" in value or "%40" in value):
        return MAY_HOLD_ADDRESS
    if isinstance(value, str) and len(value) > _SHOW_CHARS:
        return msgspec.json.encode(value[:_SHOW_CHARS]).decode()[:-1] + '..."'
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        return type(value).__name__
    return text if len(text) <= _SHOW_CHARS + 5 else text[:_SHOW_CHARS] + "..."


def event_type(value: object) -> str:
    """The normalised event type; rejects a missing, non-string or unknown one.

    Matching is exact first, then with whitespace collapsed and lower-cased, so
    ``spam_report``, ``spam report`` and ``Spam Report`` all read ``spamreport``.
    """
    if type(value) is str:
        name = EVENT_NAMES.get(value) or EVENT_NAMES.get(" ".join(value.split()).lower())
        if name is None:
            raise FieldReject(f"unknown event type {show(value)}")
        return name
    if value is UNSET or value is None:
        raise FieldReject('missing "event"')
    raise FieldReject(f'"event" is not a string: {show(value)}')


def timestamp_us(value: object) -> int:
    """The event's time in microseconds since the Unix epoch (UTC).

    Accepts an integer, a finite number or a decimal string (``"1600000000"``,
    ``" 1600000000.5 "``; no exponent) of Unix seconds; a value above 10^12 is
    milliseconds. Sub-microsecond digits are truncated. Rejects a missing value,
    anything else (booleans, arrays, ``"abc"``), and instants before 1970 or
    after 9999.
    """
    us: int
    if type(value) is int:
        us = value * 1000 if value > MILLISECONDS_ABOVE else value * 1_000_000
    elif type(value) is str:
        text = value.strip()
        if len(text) > _MAX_NUMERIC_CHARS or not _NUMERIC.fullmatch(text):
            raise FieldReject(f'unparsable "timestamp": {show(value)}')
        exact = Decimal(text)
        us = int(exact * 1000) if exact > MILLISECONDS_ABOVE else int(exact * 1_000_000)
    elif type(value) is float:
        if not math.isfinite(value):
            raise FieldReject(f'unparsable "timestamp": {show(value)}')
        exact = Decimal(value)
        us = int(exact * 1000) if exact > MILLISECONDS_ABOVE else int(exact * 1_000_000)
    elif value is UNSET or value is None:
        raise FieldReject('missing "timestamp"')
    else:
        raise FieldReject(f'unparsable "timestamp": {show(value)}')
    if not 0 <= us <= MAX_TS_US:
        raise FieldReject(f'"timestamp" out of range: {show(value)}')
    return us


def recipient_address(value: object) -> str | None:
    """The normalised address (trimmed, lower-cased), or None when absent or blank.

    Rejects a non-string and an address without a local part, ``@`` and domain.
    Reasons never quote the address itself.
    """
    if type(value) is str:
        address = value.strip().lower()
        if not address:
            return None
        local, at, domain = address.rpartition("@")
        if not (at and local and domain):
            raise FieldReject('invalid "email": expected local-part@domain')
        return address
    if value is UNSET or value is None:
        return None
    raise FieldReject(f'"email" is not a string: {show(value)}')


def bounce_class(value: object) -> str | None:
    """One of the seven classes, matched case-insensitively; None if absent or unknown.

    ``Technical Failure`` reads ``Technical`` and ``Frequency or Volume Too
    High`` reads ``Frequency/Volume``; inner whitespace is collapsed.
    """
    if type(value) is str:
        return BOUNCE_CLASS_SPELLINGS.get(value.lower()) or BOUNCE_CLASS_SPELLINGS.get(
            " ".join(value.split()).lower())
    return None


def bounce_type(value: object) -> str | None:
    """``bounce`` (permanent) or ``blocked`` (temporary), case-insensitive; else None."""
    if type(value) is str:
        lowered = value.strip().lower()
        if lowered in _BOUNCE_TYPES:
            return lowered
    return None


def machine_open(value: object) -> bool | None:
    """True for ``true``, ``"true"`` (any case), ``1`` and ``"1"``; False for their
    opposites and when absent (a human open); None for an unrecognised value."""
    if value is UNSET or value is None or value is False:
        return False
    if value is True:
        return True
    if type(value) is int:
        return True if value == 1 else False if value == 0 else None
    if type(value) is str:
        return _MACHINE_OPEN_TEXT.get(value.strip().lower())
    return None


def optional_text(value: object) -> str | None:
    """A non-empty string as is; None for anything else (absent, null, "", numbers)."""
    if type(value) is str and value:
        return value
    return None


def event_id(value: object) -> str | None:
    """``sg_event_id``: a non-empty string as is, an integer as its digits; else None."""
    if type(value) is str:
        return value if value and not value.isspace() else None
    if type(value) is int:
        return str(value)
    return None


def lenient_int(value: object) -> object:
    """``tls``, ``attempt``, ``asm_group_id``: ``"5"`` reads 5, ``true`` reads 1.

    Anything that is not an integer, a boolean or a string of digits is
    returned unchanged (kept in ``raw``, never a reason to reject).
    """
    if type(value) is str:
        text = value.strip()
        if 0 < len(text) <= 18 and text.isascii() and text.lstrip("+-").isdigit():
            return int(text)
        return value
    if type(value) is bool:
        return int(value)
    return value


def category(value: object) -> object:
    """``category`` as an array: a single string becomes a one-element array.

    Anything else (already an array, or malformed) is returned unchanged.
    """
    if type(value) is str:
        return [value]
    return value


#: Prefix of a derived event id; ``:`` never occurs in SendGrid's base64 ids.
DERIVED_ID_PREFIX: Final = "h:"
_DERIVED_ID_CONTEXT: Final = b"seqscore event id\x00"
_KEYED_TEXT_CONTEXT: Final = b"seqscore text\x00"


def canonical_json(event: object, raw: bytes) -> bytes:
    """The event as canonical JSON: keys sorted at every level, no whitespace.

    Strings are emitted as UTF-8 with only the escapes JSON requires, numbers as
    msgspec writes them, a duplicated key once (its last value). ``raw`` (the
    event's bytes as received) stands in when the event cannot be re-encoded
    (an integer too large to read, say).
    """
    try:
        return msgspec.json.encode(event, order="sorted")
    except (TypeError, ValueError, OverflowError, RecursionError):
        return raw


def derived_event_id(key: bytes, canonical: bytes) -> str:
    """The de-duplication key of an event without ``sg_event_id``.

    ``"h:"`` + the first 32 hex digits of HMAC-SHA256(key, ``b"seqscore event
    id\\x00"`` + canonical JSON). Keyed with the installation's recipient
    secret, because the event holds the address: an unkeyed hash of it could
    be confirmed by guessing. Stable under key order and whitespace.
    """
    digest = hmac.new(key, _DERIVED_ID_CONTEXT + canonical, hashlib.sha256).hexdigest()
    return DERIVED_ID_PREFIX + digest[:32]


def mentions_address(text: str, address: str) -> bool:
    """Whether ``text`` holds the normalised ``address``, in any case, also with its
    ``@`` URL-encoded (``%40``)."""
    lowered = text.lower()
    return address in lowered or address.replace("@", "%40") in lowered


def keyed_text(key: bytes, text: str) -> str:
    """A stand-in for a column value that quotes the recipient's address.

    ``"h:"`` + the first 32 hex digits of HMAC-SHA256(key, ``b"seqscore
    text\x00"`` + UTF-8 text): equal values stay equal (an id still
    de-duplicates), the address is gone.
    """
    data = _KEYED_TEXT_CONTEXT + text.encode("utf-8", "surrogatepass")
    return DERIVED_ID_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()[:32]
