"""Properties of the webhook parser: every element accounted for, nothing else raised."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import INGESTED_AT, SECRET

from seqscore.event_schema import EVENT_SCHEMA, EVENT_TYPES
from seqscore.ingest.webhook import BodyError, EventParser, ParsedBatch

PARSER = EventParser(SECRET, raw_cap_bytes=256)
SAFETY_NET = "event could not be read"

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)

# Values that look like what the parser reads, in right and wrong shapes.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "email": st.sampled_from(["a@b.com", " A@Gmail.COM ", "", "x", "@", "a@b@c.d"])
    | json_values,
    "timestamp": st.sampled_from([1600112492, "1600112492", 1600112492123, "abc", -1, 10**13,
                                  1.5, "1e3", 2**64]) | json_values,
    "event": st.sampled_from([*sorted(EVENT_TYPES), "spam report", "foo", ""]) | json_values,
    "sg_event_id": st.text(max_size=10) | json_values,
    "sg_message_id": st.text(max_size=10) | json_values,
    "type": st.sampled_from(["bounce", "blocked", "x"]) | json_values,
    "bounce_classification": st.sampled_from(["Technical Failure", "content"]) | json_values,
    "status": st.sampled_from(["5.1.1"]) | json_values,
    "sg_machine_open": st.sampled_from([True, "true", 1, 0, "false"]) | json_values,
    "category": st.sampled_from(["c", ["a", "b"]]) | json_values,
    "tls": st.sampled_from([1, "1", True]) | json_values,
    "attempt": st.sampled_from(["5", 5]) | json_values,
    "asm_group_id": st.sampled_from(["5", 5]) | json_values,
    "smtp-id": json_values,
    "reason": st.just("550 a@b.com unknown") | json_values,
    "custom": json_values,
}
events = st.fixed_dictionaries({}, optional=FIELD_VALUES)


def check(body: bytes, elements: int | None) -> None:
    """The property: a result accounting for every element, or BodyError."""
    try:
        result: ParsedBatch = PARSER.parse(body, account_id=1, ingested_at=INGESTED_AT)
    except BodyError:
        assert elements is None
        return
    assert elements is not None
    assert result.table.num_rows + len(result.rejects) == elements
    assert result.table.schema.equals(EVENT_SCHEMA)
    result.table.validate(full=True)
    assert [r.index for r in result.rejects] == sorted({r.index for r in result.rejects})
    assert not any(r.reason.startswith(SAFETY_NET) for r in result.rejects), result.rejects
    for raw in result.table.column("raw").to_pylist():
        assert raw is None or (len(raw.encode()) <= 256 and isinstance(json.loads(raw), dict))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_any_json_value(value: Any) -> None:
    check(json.dumps(value).encode(), len(value) if isinstance(value, list) else None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(events | json_values, max_size=6))
def test_arrays_of_event_like_objects(items: list[Any]) -> None:
    check(json.dumps(items).encode(), len(items))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes(data: bytes) -> None:
    try:
        expected = json.loads(data)
    except (ValueError, RecursionError):
        expected = None
    try:
        result = PARSER.parse(data, account_id=1, ingested_at=INGESTED_AT)
    except BodyError:
        return
    # Accepted: it was a JSON array, and every element is accounted for.
    assert isinstance(expected, list)
    assert result.table.num_rows + len(result.rejects) == len(expected)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(events, max_size=4), junk=st.binary(min_size=1, max_size=8),
       cut=st.integers(0, 10_000))
def test_damaged_bodies(items: list[Any], junk: bytes, cut: int) -> None:
    body = msgspec.json.encode(items)
    position = cut % (len(body) + 1)
    for damaged in (body[:position], body[:position] + junk + body[position:]):
        with contextlib.suppress(BodyError):
            PARSER.parse(damaged, account_id=1, ingested_at=INGESTED_AT)


def test_nan_and_infinity_literals_are_body_errors() -> None:
    for body in (b"[NaN]", b"[Infinity]", b"[-Infinity]", b'[{"timestamp": NaN}]'):
        try:
            PARSER.parse(body, account_id=1, ingested_at=INGESTED_AT)
        except BodyError:
            continue
        raise AssertionError(body)
