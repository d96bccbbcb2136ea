"""Streaming file readers for ``seqscore import``: every format, plain and gzip."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ingest_helpers import INGESTED_AT, SECRET, event

from seqscore.ingest.files import Chunk, ImportFileError, read_events
from seqscore.ingest.webhook import EventParser

FIELDS = ["email", "timestamp", "event", "sg_event_id", "sg_message_id", "category"]


def events(count: int) -> list[dict[str, Any]]:
    return [event(sg_event_id=f"id-{i}", timestamp=1600000000 + i, email=f"u{i}@gmail.com",
                  category="news") for i in range(count)]


def encode(items: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(items, indent=1).encode()
    if fmt == "jsonl":
        return b"".join(msgspec.json.encode(item) + b"\n" for item in items)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(items)
    return text.getvalue().encode()


def write(path: Path, data: bytes, *, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def read_all(path: Path, **options: Any) -> list[Chunk]:
    return list(read_events(path, **options))


def parse_chunks(chunks: list[Chunk]) -> tuple[int, list[str]]:
    parser = EventParser(SECRET)
    rows, ids = 0, []
    for chunk in chunks:
        result = parser.parse(chunk.body, account_id=1, ingested_at=INGESTED_AT)
        assert not result.rejects, result.rejects[:3]
        rows += result.table.num_rows
        ids += result.table.column("event_id").to_pylist()
    return rows, ids


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_every_format_reads_every_event(tmp_path: Path, fmt: str, compress: bool) -> None:
    path = write(tmp_path / "events.data", encode(events(250), fmt), compress=compress)
    chunks = read_all(path, chunk_events=100)
    assert [chunk.count for chunk in chunks] == [100, 100, 50]
    assert all(not chunk.rejects for chunk in chunks)
    rows, ids = parse_chunks(chunks)
    assert rows == 250
    assert ids == [f"id-{i}" for i in range(250)]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_bytes_read_grows_to_the_file_size(tmp_path: Path, fmt: str, compress: bool) -> None:
    path = write(tmp_path / "e", encode(events(3000), fmt), compress=compress)
    progress = [chunk.bytes_read for chunk in read_all(path, chunk_events=200)]
    assert progress == sorted(progress)
    assert progress[-1] == path.stat().st_size


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    data = encode(events(3), "jsonl")
    disguised = write(tmp_path / "events.jsonl", data, compress=True)
    misnamed = write(tmp_path / "events.jsonl.gz", data, compress=False)
    assert parse_chunks(read_all(disguised))[0] == 3
    assert parse_chunks(read_all(misnamed))[0] == 3


def test_csv_values_are_strings_the_parser_tolerates(tmp_path: Path) -> None:
    data = (b"email,timestamp,event,sg_machine_open,category,custom\n"
            b'A@Gmail.com,1600000000000,open,true,"[""a"",""b""]",x\n')
    (chunk,) = read_all(write(tmp_path / "e.csv", data, compress=False))
    assert json.loads(chunk.body) == [{
        "email": "A@Gmail.com", "timestamp": "1600000000000", "event": "open",
        "sg_machine_open": "true", "category": ["a", "b"], "custom": "x"}]
    row = EventParser(SECRET).parse(chunk.body, account_id=1,
                                    ingested_at=INGESTED_AT).table.to_pylist()[0]
    assert row["machine_open"] is True and row["provider"] == "gmail"


def test_csv_record_spanning_lines_keeps_its_original_text(tmp_path: Path) -> None:
    data = (b"email,timestamp,event,reason\n"
            b'a@b.com,1,bounce,"line one\nline two"\n'
            b"c@d.com,2,open,\n")
    (chunk,) = read_all(write(tmp_path / "e.csv", data, compress=False))
    assert chunk.lines == (2, 4)
    assert chunk.sources[0] == b'a@b.com,1,bounce,"line one\nline two"'
    assert json.loads(chunk.body)[0]["reason"] == "line one\nline two"


def test_csv_missing_trailing_cells_are_empty(tmp_path: Path) -> None:
    data = b"email,timestamp,event,status\na@b.com,1,open\n"
    (chunk,) = read_all(write(tmp_path / "e.csv", data, compress=False))
    assert json.loads(chunk.body) == [{"email": "a@b.com", "timestamp": "1", "event": "open"}]


def test_csv_bad_records_are_line_rejects(tmp_path: Path) -> None:
    data = (b"\xef\xbb\xbfemail,timestamp,event\n"
            b"a@b.com,1,open\n"
            b"a@b.com,1,open,extra\n"
            b'a@b.com,"1"x,open\n'
            b"\xff@b.com,1,open\n"
            b"\n"
            b"c@d.com,2,click\n")
    (chunk,) = read_all(write(tmp_path / "e.csv", data, compress=False))
    assert chunk.lines == (2, 7)
    assert [(r.line, r.raw) for r in chunk.rejects] == [
        (3, b"a@b.com,1,open,extra"), (4, b'a@b.com,"1"x,open'), (5, b"\xff@b.com,1,open")]
    assert chunk.rejects[0].reason == "4 fields, but the header names 3"
    assert chunk.rejects[1].reason.startswith("malformed CSV: ")
    assert chunk.rejects[2].reason == "invalid UTF-8 (byte 0 of the record)"
    assert chunk.rejects[2].text == "\ufffd@b.com,1,open"


def test_jsonl_bad_lines_are_line_rejects_with_original_text(tmp_path: Path) -> None:
    data = (b'{"email":"a@b.com","timestamp":1,"event":"open"}\r\n'
            b"\n"
            b'{"email": oops}\n'
            b'  {"email":"\xff"}  \n'
            b'{"timestamp":2,"event":"open"}\n'
            b"[1, 2]\n")
    (chunk,) = read_all(write(tmp_path / "e.jsonl", data, compress=False))
    assert chunk.lines == (1, 5, 6)
    assert chunk.sources[0] == b'{"email":"a@b.com","timestamp":1,"event":"open"}'
    assert [(r.line, r.raw) for r in chunk.rejects] == [
        (3, b'{"email": oops}'), (4, b'  {"email":"\xff"}  ')]
    assert chunk.rejects[0].reason.startswith("invalid JSON: ")
    assert chunk.rejects[1].reason.startswith("invalid UTF-8")
    # the parser's rejects map back to lines and original text through the chunk
    result = EventParser(SECRET).parse(chunk.body, account_id=1, ingested_at=INGESTED_AT)
    assert [(chunk.lines[r.index], r.reason) for r in result.rejects] == [
        (5, 'missing "email"'), (6, "event is not a JSON object: an array")]
    assert chunk.sources[result.rejects[0].index] == b'{"timestamp":2,"event":"open"}'


def test_json_array_elements_carry_their_lines(tmp_path: Path) -> None:
    data = b'[\n{"a": 1},\n\n  {"b": "x\\ny"},  {"c": [1,\n2]}\n]\n'
    (chunk,) = read_all(write(tmp_path / "e.json", data, compress=False))
    assert chunk.lines == (2, 4, 4)
    assert chunk.sources == (b'{"a": 1}', b'{"b": "x\\ny"}', b'{"c": [1,\n2]}')


def test_json_array_invalid_utf8_element_is_a_reject(tmp_path: Path) -> None:
    data = b'[{"a": "\xff"},\n{"b": 1}]'
    (chunk,) = read_all(write(tmp_path / "e.json", data, compress=False))
    assert chunk.lines == (2,)
    assert [(r.line, r.reason) for r in chunk.rejects] == [(1, "invalid UTF-8 (byte 7)")]


def test_json_arrays_one_after_another_are_read_as_one(tmp_path: Path) -> None:
    data = b'[{"a":1}]\n[]\n[{"b":2},{"c":3}]\n'
    (chunk,) = read_all(write(tmp_path / "e.json", data, compress=False))
    assert json.loads(chunk.body) == [{"a": 1}, {"b": 2}, {"c": 3}]


@pytest.mark.parametrize("data", [b"", b"  \n\n", b"\xef\xbb\xbf"])
def test_empty_file_yields_nothing(tmp_path: Path, data: bytes) -> None:
    assert read_all(write(tmp_path / "e", data, compress=False)) == []


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    data = b'{"a":1}\n{"b":2}\n'
    (chunk,) = read_all(write(tmp_path / "e", data, compress=False), file_format="jsonl")
    assert chunk.count == 2


# -- truncated and corrupt files --------------------------------------------------------------


def drain(path: Path, **options: Any) -> tuple[list[Chunk], ImportFileError]:
    chunks: list[Chunk] = []
    with pytest.raises(ImportFileError) as info:
        for chunk in read_events(path, **options):
            chunks.append(chunk)
    return chunks, info.value


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    _, error = drain(tmp_path / "nope.json")
    assert str(error).startswith(f"{tmp_path / 'nope.json'}: cannot open")


def test_truncated_gzip_raises_after_the_good_chunks(tmp_path: Path) -> None:
    whole = gzip.compress(encode(events(20_000), "jsonl"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    chunks, error = drain(path, chunk_events=500)
    assert chunks and sum(chunk.count for chunk in chunks) < 20_000
    assert parse_chunks(chunks)[0] == sum(chunk.count for chunk in chunks)
    assert str(error).startswith(f"{path}: the gzip stream is truncated")
    assert "of the decompressed data" in str(error)
    assert error.offset is not None and error.offset > 0


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(encode(events(2000), "jsonl")))
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(data))
    _, error = drain(path)
    assert str(error).startswith(f"{path}: ")
    assert "gzip" in str(error)


def test_json_array_cut_mid_element_raises_after_the_good_ones(tmp_path: Path) -> None:
    data = encode(events(1000), "json")
    path = write(tmp_path / "cut.json", data[: len(data) * 3 // 4], compress=False)
    chunks, error = drain(path, chunk_events=100)
    assert 600 < sum(chunk.count for chunk in chunks) < 1000
    assert "the data ends inside the array" in str(error)
    assert str(error).startswith(f"{path}: ")
    assert error.line is not None and error.offset is not None


def test_json_array_cut_in_a_gzip_that_ends_cleanly(tmp_path: Path) -> None:
    data = encode(events(50), "json")
    path = write(tmp_path / "cut.json.gz", data[:-30], compress=True)
    _, error = drain(path)
    assert "the data ends inside the array" in str(error)
    assert "of the decompressed data" in str(error)


def test_json_array_broken_in_the_middle_names_line_and_byte(tmp_path: Path) -> None:
    data = b'[{"a":1},\n{"b":2}\n{"c":3}]'
    chunks, error = drain(write(tmp_path / "e.json", data, compress=False))
    assert json.loads(chunks[0].body) == [{"a": 1}, {"b": 2}]
    assert str(error) == (f"{tmp_path / 'e.json'}: expected ',' or ']' after an element, "
                          "found '{' (line 3, byte 18)")


def test_json_not_an_array_is_an_error(tmp_path: Path) -> None:
    _, error = drain(write(tmp_path / "e.json", b"[1] 2", compress=False))
    assert "unexpected data after the array" in str(error)


def test_jsonl_last_line_cut_mid_record_raises(tmp_path: Path) -> None:
    data = encode(events(10), "jsonl") + b'{"email":"a@b.com","times'
    chunks, error = drain(write(tmp_path / "cut.jsonl", data, compress=False))
    assert sum(chunk.count for chunk in chunks) == 10
    assert "the file ends in the middle of a record" in str(error)
    assert error.line == 11


def test_jsonl_last_line_complete_without_newline_is_fine(tmp_path: Path) -> None:
    data = encode(events(2), "jsonl").rstrip(b"\n")
    assert sum(c.count for c in read_all(write(tmp_path / "e", data, compress=False))) == 2


def test_csv_cut_inside_a_quoted_field_raises(tmp_path: Path) -> None:
    data = b'email,timestamp,event,reason\na@b.com,1,open,x\na@b.com,1,bounce,"unfinished'
    chunks, error = drain(write(tmp_path / "cut.csv", data, compress=False))
    assert sum(chunk.count for chunk in chunks) == 1
    assert "the file ends in the middle of a CSV record" in str(error)
    assert error.line == 3


def test_overlong_record_is_an_error_not_a_memory_blowup(tmp_path: Path) -> None:
    data = b'[{"a": "' + b"x" * 5000 + b'"}]'
    _, error = drain(write(tmp_path / "e.json", data, compress=False), max_record_bytes=1000)
    assert "larger than 1000 bytes" in str(error)
    line = b'{"a": "' + b"x" * 5000
    _, error = drain(write(tmp_path / "e.jsonl", b"{}\n" * 2 + line, compress=False),
                     max_record_bytes=1000)
    assert "longer than 1000 bytes" in str(error)
    unbalanced = b'email,event,timestamp\na@b.com,"' + b"x\n" * 3000
    _, error = drain(write(tmp_path / "e.csv", unbalanced, compress=False),
                     max_record_bytes=1000)
    assert "an unbalanced quote?" in str(error)


# -- memory stays flat ------------------------------------------------------------------------


def big_file(path: Path, fmt: str, count: int) -> Path:
    with path.open("wb") as out:
        if fmt == "json":
            out.write(b"[")
        for start in range(0, count, 1000):
            batch = events(min(1000, count - start))
            if fmt == "json":
                out.write((b"," if start else b"") + encode(batch, "json")[1:-1])
            else:
                out.write(encode(batch, "jsonl"))
        if fmt == "json":
            out.write(b"]")
    return path


def test_reading_yields_long_before_the_end(tmp_path: Path) -> None:
    path = big_file(tmp_path / "big.jsonl", "jsonl", 40_000)
    first = next(iter(read_events(path, chunk_events=1000)))
    assert first.count == 1000
    assert first.bytes_read < path.stat().st_size / 4


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_memory_stays_flat_on_a_large_file(tmp_path: Path, fmt: str) -> None:
    path = big_file(tmp_path / f"big.{fmt}", fmt, 60_000)
    size = path.stat().st_size
    assert size > 12 << 20
    tracemalloc.start()
    try:
        total = 0
        chunks: Iterator[Chunk] = read_events(path, chunk_events=1000)
        for chunk in chunks:
            total += chunk.count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 60_000
    assert peak < 8 << 20, f"peak {peak} bytes for a {size}-byte file"
