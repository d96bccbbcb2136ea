"""The block-wise JSON array splitter behind JSON-array imports."""

from __future__ import annotations

import io
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqscore.ingest import jsonarray
from seqscore.ingest.jsonarray import ArraySplitter, SplitError


def split(data: bytes, block: int = 7, max_element: int = 1 << 20) -> list[bytes]:
    stream = io.BytesIO(data)
    return [element for _, _, element in
            ArraySplitter(stream.read, block_bytes=block, max_element_bytes=max_element)]


def test_msgspec_error_positions_are_calibrated() -> None:
    # The splitter reads msgspec's "trailing characters (byte N)"; a release that
    # changes that text or convention must fail here, not split wrongly.
    assert jsonarray._POSITION_SHIFT is not None
    with pytest.raises(msgspec.DecodeError, match=r"trailing characters \(byte \d+\)"):
        msgspec.json.decode(b'{"a":1} ,', type=msgspec.Raw)


@pytest.mark.parametrize("block", [1, 2, 3, 5, 64, 1 << 20])
def test_tricky_elements_at_every_block_size(block: int) -> None:
    data = (b'\xef\xbb\xbf [ {"a": "x,]}\\"[{"} , 12345 ,"s\\\\",[1,[2,{"b":[]}]],\n'
            b'-0.5e-3 , true,null,{}, [] ]  ')
    assert split(data, block) == [b'{"a": "x,]}\\"[{"}', b"12345", b'"s\\\\"', b'[1,[2,{"b":[]}]]',
                                  b"-0.5e-3", b"true", b"null", b"{}", b"[]"]


def test_offsets_and_lines() -> None:
    data = b'[\n 1,\n\n"two",\n {"three": 3}]'
    found = list(ArraySplitter(io.BytesIO(data).read, block_bytes=4))
    assert found == [(3, 2, b"1"), (7, 4, b'"two"'), (15, 5, b'{"three": 3}')]


def test_empty_arrays() -> None:
    assert split(b"[]") == []
    assert split(b" [ ] [\n] ") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}', "expected a JSON array"),
        (b"[1] [2] x", "unexpected data after the array"),
        (b"[1, 2", "the data ends inside the array"),
        (b"[1, ", "the data ends inside the array"),
        (b'[{"a": "unterminated', "the data ends inside the array"),
        (b"[1 2]", "expected ',' or ']' after an element, found '2'"),
        (b"[1,]", "invalid JSON"),
        (b"[,1]", "invalid JSON"),
        (b'[{"a": }]', "invalid JSON"),
        (b"[" + b"[" * 5000 + b"]" * 5001, "nested too deeply"),
    ],
)
def test_malformed_arrays_raise_split_error(data: bytes, message: str) -> None:
    with pytest.raises(SplitError, match=message.replace("(", r"\(")):
        split(data)


def test_oversized_element_is_refused() -> None:
    with pytest.raises(SplitError, match="larger than 100 bytes"):
        split(b'[1, "' + b"x" * 500 + b'"]', block=16, max_element=100)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(json_values, max_size=8), block=st.integers(1, 40),
       indent=st.sampled_from([None, 0, 2]))
def test_split_elements_decode_to_the_array(values: list[Any], block: int,
                                            indent: int | None) -> None:
    data = json.dumps(values, indent=indent, ensure_ascii=False).encode()
    assert [json.loads(element) for element in split(data, block)] == values
