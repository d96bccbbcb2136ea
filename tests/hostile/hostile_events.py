"""Hypothesis strategies for hostile webhook bodies: valid events, invalid elements, damage.

``batches`` draws a body whose every element is known in advance to be valid or
invalid, so a test can demand exactly which ones are stored and which quarantined.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from seqscore.event_schema import EVENT_TYPES
from seqscore.ingest.payload import ATTRIBUTE_OF

MESSAGE_EVENTS = sorted(EVENT_TYPES - {"account_status_change"})
#: 2026-11-19 00:00 UTC .. 2026-11-20 12:00 UTC (the tests' frozen now)
FIRST_S, LAST_S = 1_763_510_400, 1_763_640_000

scalars = (st.none() | st.booleans() | st.integers(-(2**80), 2**80)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=40)
           | st.text(alphabet="\x00\ud7ff\ue000\U0010ffff\u202e", max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
custom_keys = st.text(min_size=1, max_size=12).filter(lambda k: k not in ATTRIBUTE_OF)
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
addresses = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(alphabet=_ALNUM + "._+-", min_size=1, max_size=16),
    st.text(alphabet=_ALNUM + "-", min_size=1, max_size=12),
    st.sampled_from(["com", "net", "example", "de"]))
ids = st.text(alphabet=_ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", min_size=1, max_size=24)


@st.composite
def valid_events(draw: st.DrawFn, unique: str = "") -> dict[str, Any]:
    """An event the parser must store: a known type, an address, an in-range time,
    an id; custom args of any JSON (huge strings and deep values included)."""
    event: dict[str, Any] = {
        "event": draw(st.sampled_from(MESSAGE_EVENTS)),
        "email": draw(addresses),
        "timestamp": draw(st.integers(FIRST_S, LAST_S) | st.integers(FIRST_S, LAST_S).map(str)),
        "sg_event_id": unique + draw(ids),
    }
    event.update(draw(st.dictionaries(custom_keys, json_values | st.just("x" * 20_000),
                                      max_size=3)))
    return event


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != name}


@st.composite
def invalid_elements(draw: st.DrawFn) -> Any:
    """An array element the parser must reject (quarantine), whatever else it holds."""
    base = draw(valid_events())
    kind = draw(st.sampled_from([
        "scalar", "array", "unknown event", "event not a string", "no timestamp",
        "timestamp out of range", "timestamp not a number", "bad email", "email not a string",
        "no email", "no event"]))
    if kind == "scalar":
        return draw(scalars)
    if kind == "array":
        return draw(st.lists(json_values, max_size=3))
    if kind == "unknown event":
        return {**base, "event": "x-" + draw(st.text(max_size=8))}
    if kind == "event not a string":
        return {**base, "event": draw(st.integers() | st.lists(st.integers(), max_size=2)
                                      | st.booleans())}
    if kind == "no timestamp":
        return _without(base, "timestamp")
    if kind == "timestamp out of range":
        return {**base, "timestamp": draw(st.integers(-(2**70), -1)
                                          | st.integers(10**19, 2**80))}
    if kind == "timestamp not a number":
        return {**base, "timestamp": draw(st.sampled_from(
            ["nan", "NaN", "inf", "-Infinity", "1e5", "", "0x10", "12:00", True, [1], {}]))}
    if kind == "bad email":
        return {**base, "email": draw(st.sampled_from(["no-at-sign", "@", "a@", "@b.c", "  @ "]))}
    if kind == "email not a string":
        return {**base, "email": draw(st.integers() | st.lists(st.text(max_size=3), max_size=2)
                                      | st.booleans() | st.dictionaries(st.text(max_size=2),
                                                                       st.integers(),
                                                                       max_size=2))}
    if kind == "no email":
        return _without(base, "email")
    return _without(base, "event")


@st.composite
def batches(draw: st.DrawFn, unique: str = "") -> tuple[list[Any], list[int]]:
    """(elements, indices of the valid ones): valid events and invalid elements mixed."""
    elements: list[Any] = []
    valid: list[int] = []
    for index, is_valid in enumerate(draw(st.lists(st.booleans(), max_size=12))):
        if is_valid:
            elements.append(draw(valid_events(unique=f"{unique}{index}-")))
            valid.append(index)
        else:
            elements.append(draw(invalid_elements()))
    return elements, valid


def encode(elements: list[Any]) -> bytes:
    """JSON with non-ASCII kept (lone surrogates escaped, as JSON allows)."""
    return json.dumps(elements, ensure_ascii=False).encode("utf-8", "surrogatepass")


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@st.composite
def broken_bodies(draw: st.DrawFn) -> bytes:
    """A body the receiver must refuse whole (400, nothing stored): not UTF-8, not
    JSON, not an array, NaN/Infinity literals, nested beyond any event's depth."""
    elements, _valid = draw(batches())
    body = encode(elements) if elements else b"[]"
    kind = draw(st.sampled_from(["invalid utf-8", "truncated", "not an array", "literal",
                                 "too deep", "empty", "trailing garbage", "bom"]))
    if kind == "invalid utf-8":
        at = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80",
                                     b"\xe2\x82", b"\x80"]))
        return body[:at] + junk + body[at:]
    if kind == "truncated":
        return body[:draw(st.integers(0, max(0, len(body) - 1)))] or b"["
    if kind == "not an array":
        return draw(st.sampled_from([b"{}", b'{"event": "delivered"}', b"null", b"true",
                                     b"42", b'"[]"', b"1e999"]))
    if kind == "literal":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"undefined"]))
        return b'[{"timestamp": ' + literal + b', "event": "open", "email": "a@b.c"}]'
    if kind == "too deep":
        return ("[" + nested(draw(st.sampled_from([5_000, 50_000, 200_000]))) + "]").encode()
    if kind == "empty":
        return draw(st.sampled_from([b"", b"   ", b"\n\t"]))
    if kind == "trailing garbage":
        return body + draw(st.sampled_from([b"]", b",", b"x", b"[]", b"\x00"]))
    return b"\xef\xbb\xbf" + body
