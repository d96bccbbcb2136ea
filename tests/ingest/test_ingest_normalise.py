"""The per-field rules, directly (the parser tests cover them end to end)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from seqscore.event_schema import EVENT_TYPES
from seqscore.ingest import normalise as norm


def test_message_events_are_all_but_account_status_change() -> None:
    assert EVENT_TYPES - {"account_status_change"} == norm.MESSAGE_EVENTS


@pytest.mark.parametrize(
    ("value", "shown"),
    [("abc", '"abc"'), (5, "5"), (None, "null"), (True, "true"), (1.5, "1.5"),
     ([1], "an array"), ({"a": 1}, "an object"), ("x" * 100, '"' + "x" * 40 + '..."'),
     (10**60, "1" + "0" * 39 + "...")],
)
def test_show_is_short_json(value: Any, shown: str) -> None:
    assert norm.show(value) == shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5), (" +5 ", 5), ("-3", -3), (5, 5), (True, 1), ("", ""), ("5.0", "5.0"),
     ("9" * 30, "9" * 30), (None, None), ([1], [1])],
)
def test_lenient_int(value: Any, expected: Any) -> None:
    assert norm.lenient_int(value) == expected


def test_timestamp_microseconds_are_truncated_not_rounded() -> None:
    assert norm.timestamp_us("1.9999999") == 1_999_999
    assert norm.timestamp_us(1600000000123.4567) == 1_600_000_000_123_456


def test_timestamp_upper_bound_is_year_9999() -> None:
    assert norm.timestamp_us(253402300799) == norm.MAX_TS_US - 999_999
    with pytest.raises(norm.FieldReject):
        norm.timestamp_us(253402300800)


def test_canonical_json_sorts_keys_at_every_level() -> None:
    event = {"b": {"d": 1, "c": [{"z": 1, "y": 2}]}, "a": "é"}
    assert norm.canonical_json(event, b"") == '{"a":"é","b":{"c":[{"y":2,"z":1}],"d":1}}'.encode()


def test_canonical_json_falls_back_to_the_bytes_received() -> None:
    assert norm.canonical_json({"a": msgspec}, b"raw") == b"raw"


def test_derived_event_id_is_prefixed_and_128_bits() -> None:
    derived = norm.derived_event_id(b"k" * 32, b"{}")
    assert derived.startswith(norm.DERIVED_ID_PREFIX) and len(derived) == 2 + 32
    assert derived != norm.derived_event_id(b"j" * 32, b"{}")
