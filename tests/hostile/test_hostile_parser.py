"""Property-based fuzzing of the webhook parser with hostile bodies.

The parser's promise (``seqscore.ingest.webhook``): for any bytes it returns a
batch accounting for every array element, or raises ``BodyError``; nothing else.
Here with what an attacker sends: invalid UTF-8, deep nesting, huge strings,
wrong types, NaN/Infinity, duplicate keys; and for bodies whose every element is
known to be valid or invalid, exactly the valid ones become rows.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hostile_events import batches, broken_bodies, encode, nested
from hostile_support import HOSTILE
from hypothesis import given, settings
from hypothesis import strategies as st

from seqscore.event_schema import EVENT_SCHEMA
from seqscore.ingest.webhook import BodyError, EventParser, ParsedBatch

SECRET = bytes(range(32))
INGESTED_AT = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
RAW_CAP = 512
PARSER = EventParser(SECRET, raw_cap_bytes=RAW_CAP)
#: the parser's last-resort reason: an exception it did not foresee
SAFETY_NET = "event could not be read"


def parse(body: bytes) -> ParsedBatch:
    return PARSER.parse(body, account_id=7, ingested_at=INGESTED_AT)


def accounted(result: ParsedBatch, elements: int) -> None:
    assert result.table.num_rows + len(result.rejects) == elements
    assert result.table.schema.equals(EVENT_SCHEMA)
    result.table.validate(full=True)
    assert not [r for r in result.rejects if r.reason.startswith(SAFETY_NET)], result.rejects
    for raw in result.table.column("raw").to_pylist():
        assert raw is None or len(raw.encode()) <= RAW_CAP


@settings(HOSTILE, max_examples=200)
@given(batch=batches())
def test_exactly_the_valid_events_become_rows(batch: tuple[list[Any], list[int]]) -> None:
    elements, valid = batch
    result = parse(encode(elements))
    accounted(result, len(elements))
    assert [r.index for r in result.rejects] == [
        i for i in range(len(elements)) if i not in valid]
    stored_ids = result.table.column("event_id").to_pylist()
    assert stored_ids == [elements[i]["sg_event_id"] for i in valid]


@settings(HOSTILE, max_examples=200)
@given(body=broken_bodies())
def test_a_broken_body_is_a_body_error(body: bytes) -> None:
    with pytest.raises(BodyError):
        parse(body)


@settings(HOSTILE, max_examples=200)
@given(batch=batches(), data=st.data())
def test_invalid_utf8_anywhere_refuses_the_whole_body(batch: tuple[list[Any], list[int]],
                                                       data: st.DataObject) -> None:
    body = encode(batch[0])
    at = data.draw(st.integers(0, len(body)))
    junk = data.draw(st.sampled_from([b"\xff", b"\xfe", b"\xc3", b"\xed\xb0\x80",
                                      b"\xf4\x90\x80\x80", b"\xc1\xbf"]))
    with pytest.raises(BodyError, match="UTF-8"):
        parse(body[:at] + junk + body[at:])


@settings(HOSTILE, max_examples=150)
@given(batch=batches(), data=st.data())
def test_duplicate_keys_wrong_types_and_literals_never_escape(
        batch: tuple[list[Any], list[int]], data: st.DataObject) -> None:
    """Each element re-written with repeated keys (JSON allows them, readers differ) and
    odd number spellings: every element is still accounted for."""
    pieces = []
    for element in batch[0]:
        text = json.dumps(element)
        if isinstance(element, dict) and element:
            name = data.draw(st.sampled_from([*element, "event", "email", "timestamp",
                                              "sg_event_id"]))
            repeat = data.draw(st.sampled_from(
                ['"open"', "null", "1e400", "-0", "1.0e2", "[]", "{}", '"\\u0000"',
                 "123456789012345678901234567890", "true"]))
            text = "{" + json.dumps(name) + ": " + repeat + ", " + text[1:]
            if data.draw(st.booleans()):
                text = text[:-1] + ", " + json.dumps(name) + ": " + repeat + "}"
        pieces.append(text)
    body = ("[" + ", ".join(pieces) + "]").encode("utf-8", "surrogatepass")
    accounted(parse(body), len(pieces))


@pytest.mark.parametrize("depth", [10, 100, 900, 1_000, 5_000, 100_000, 1_000_000])
def test_deep_nesting_inside_an_event(depth: int) -> None:
    event = ('{"event": "open", "email": "a@b.c", "timestamp": 1763600000, '
             '"sg_event_id": "deep", "custom": ' + nested(depth) + "}")
    try:
        result = parse(("[" + event + "]").encode())
    except BodyError as exc:
        assert "nested too deeply" in str(exc)
        assert depth >= 900
        return
    accounted(result, 1)


@pytest.mark.parametrize("depth", [1_000, 100_000, 1_000_000])
def test_deep_nesting_of_objects_and_of_the_body(depth: int) -> None:
    for body in ("[" + '{"a":' * depth + "1" + "}" * depth + "]", nested(depth, "")):
        with pytest.raises(BodyError, match="nested too deeply"):
            parse(body.encode())


@pytest.mark.parametrize("field", ["email", "sg_event_id", "sg_message_id", "event", "custom",
                                   "category", "reason", "status"])
def test_huge_strings_in_any_field(field: str) -> None:
    huge = "a" * 5_000_000 + ("@example.com" if field == "email" else "")
    event = {"event": "bounce", "email": "a@b.c", "timestamp": 1763600000,
             "sg_event_id": "huge", "type": "bounce", field: huge}
    result = parse(json.dumps([event, {**event, "sg_event_id": "small", field: "x"}]).encode())
    accounted(result, 2)
    if field == "event":
        assert [r.index for r in result.rejects] == [0, 1]  # "a…a" and "x": unknown types
    elif field == "email":
        assert [r.index for r in result.rejects] == [1]  # "x" is no address
        assert result.table.column("domain").to_pylist() == ["example.com"]
    else:
        assert result.table.num_rows == 2


def test_huge_arrays_of_tiny_elements() -> None:
    body = b"[" + b",".join([b"0"] * 200_000) + b"]"
    result = parse(body)
    assert result.table.num_rows == 0 and len(result.rejects) == 200_000


@pytest.mark.parametrize("body", [
    b"[NaN]", b"[Infinity]", b"[-Infinity]", b'[{"timestamp": NaN}]',
    b'[{"event": "open", "email": "a@b.c", "timestamp": Infinity}]',
    b'[{"event": "open", "email": "a@b.c", "timestamp": 1763600000, "x": -Infinity}]',
])
def test_nan_and_infinity_literals_refuse_the_body(body: bytes) -> None:
    with pytest.raises(BodyError):
        parse(body)


@pytest.mark.parametrize("timestamp", ["1e400", "-1e400", "123456789" * 40])
def test_numbers_beyond_float_range_reject_only_their_event(timestamp: str) -> None:
    good = '{"event": "open", "email": "a@b.c", "timestamp": 1763600000, "sg_event_id": "ok"}'
    bad = ('{"event": "open", "email": "a@b.c", "timestamp": ' + timestamp
           + ', "sg_event_id": "bad"}')
    result = parse(f"[{good}, {bad}]".encode())
    accounted(result, 2)
    assert result.table.column("event_id").to_pylist() == ["ok"]
