"""JSON Lines read a block at a time: the same chunks, lines and rejects as line by line.

``read_events`` checks the lines of a JSON Lines file in groups (one decode of
their array); a group with any doubtful line is looked at line by line. These
tests hold the grouped reading to the per-line rules: records that only look
valid together, chunk limits in events and bytes, original text.
"""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from seqscore.ingest.files import _check_element, read_events


def chunks_of(path: Path, **limits: int) -> list[tuple[tuple[int, ...], list[bytes], list[int]]]:
    return [(chunk.lines,
             [bytes(raw) for raw in msgspec.json.decode(chunk.body, type=list[msgspec.Raw])],
             [r.line for r in chunk.rejects])
            for chunk in read_events(path, file_format="jsonl", **limits)]


def line_by_line(lines: list[bytes], chunk_events: int, chunk_bytes: int
                 ) -> list[tuple[tuple[int, ...], list[bytes], list[int]]]:
    """The reference: each line checked alone, a chunk closed as soon as it is full."""
    out: list[tuple[tuple[int, ...], list[bytes], list[int]]] = []
    numbers: list[int] = []
    records: list[bytes] = []
    rejects: list[int] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        record = line.strip(b" \t\r")
        if record:
            if _check_element(record) is None:
                numbers.append(number)
                records.append(record)
                size += len(record) + 1
            else:
                rejects.append(number)
        if len(numbers) >= chunk_events or size >= chunk_bytes or len(rejects) >= chunk_events:
            out.append((tuple(numbers), records, rejects))
            numbers, records, rejects, size = [], [], [], 0
    if numbers or rejects:
        out.append((tuple(numbers), records, rejects))
    return out


def test_lines_that_form_valid_json_only_together_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\n1,[2\n3]\n{"b":2}\n')
    ((lines, records, rejects),) = chunks_of(path)
    assert (lines, records, rejects) == ((1, 4), [b'{"a":1}', b'{"b":2}'], [2, 3])


def test_surrounding_whitespace_and_carriage_returns_keep_the_original_text(
        tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\r\n  {"b":2}\t\n{"c":3}\n')
    (chunk,) = read_events(path)
    assert chunk.sources == (b'{"a":1}', b'  {"b":2}\t', b'{"c":3}')
    assert chunk.body == b'[{"a":1},{"b":2},{"c":3}]'


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chunk_events=st.integers(1, 40),
       chunk_bytes=st.integers(20, 3000))
def test_grouped_reading_equals_line_by_line(tmp_path_factory, seed: int, chunk_events: int,
                                             chunk_bytes: int) -> None:
    rng = random.Random(seed)
    kinds = [b'{"event":"open","n":%d}', b'{"long":"' + b"x" * 300 + b'","n":%d}',
             b"", b"  ", b'{"bad": %d', b'"\xff%d"', b"1,[%d", b"3]", b"[" * 300 + b"%d"
             + b"]" * 300, b' {"n":%d} \r']
    weights = [60, 10, 3, 2, 2, 2, 2, 2, 1, 5] if seed % 2 else [1] + [0] * 9
    lines = [rng.choices(kinds, weights)[0].replace(b"%d", str(i).encode())
             for i in range(rng.randint(0, 400))]
    path = tmp_path_factory.mktemp("lines") / "e.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert chunks_of(path, chunk_events=chunk_events, chunk_bytes=chunk_bytes) == \
        line_by_line(lines, chunk_events, chunk_bytes)
