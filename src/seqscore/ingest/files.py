"""Read event files for ``seqscore import``: JSON array, JSON Lines or CSV, maybe gzip.

``read_events(path)`` yields ``Chunk``s: each holds a JSON-array body of up to
``chunk_events`` events (so ``EventParser.parse`` handles it exactly like a
webhook body), where each element came from (line, original text), the records
that could not become an event at all, and how many input bytes were read so
far (for a progress bar). Memory stays flat: one read block, one chunk.

- Compression is detected from the gzip magic bytes, never from the name.
- The format is detected from the first non-blank byte of the (decompressed)
  data: ``[`` JSON array (several arrays one after another are read as one),
  ``{`` JSON Lines, anything else CSV with a header row of field names.
- A JSON Lines line or CSV record that is not valid JSON / well-formed CSV /
  UTF-8 becomes a ``LineReject`` with its line number and original text.
- A file that is truncated or corrupt (a cut or damaged gzip stream, an array
  cut short or broken, a last line cut mid-record) raises ``ImportFileError``
  naming the file and position, after every good chunk before it was yielded.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import itertools
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, Literal

import msgspec

from seqscore.errors import SeqscoreError
from seqscore.ingest.csvrecords import CsvRecords, RecordTooLong
from seqscore.ingest.jsonarray import ArraySplitter, SplitError

FileFormat = Literal["json", "jsonl", "csv"]

GZIP_MAGIC: Final = b"\x1f\x8b"
DEFAULT_CHUNK_EVENTS: Final = 2000
#: A chunk also closes at this many bytes, well under the webhook body limit.
DEFAULT_CHUNK_BYTES: Final = 4 << 20
#: Largest single record (array element, line, CSV record) accepted.
DEFAULT_MAX_RECORD_BYTES: Final = 16 << 20
_BLOCK_BYTES: Final = 1 << 20
_BOM: Final = b"\xef\xbb\xbf"
#: Records with fewer brackets than this certainly nest shallowly enough.
_CHEAP_DEPTH: Final = 256


class ImportFileError(SeqscoreError):
    """A file cannot be read on: truncated, corrupt, or not events at all.

    ``offset`` is the byte where it went wrong, counted in the decompressed
    data for a gzip file (``decompressed``), and ``line`` its line, when known.
    """

    def __init__(self, path: Path, message: str, *, offset: int | None = None,
                 line: int | None = None, decompressed: bool = False) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"byte {offset}" + (" of the decompressed data" if decompressed else ""))
        super().__init__(f"{path}: {message}" + (f" ({', '.join(where)})" if where else ""))
        self.path = path
        self.offset = offset
        self.line = line
        self.decompressed = decompressed


@dataclass(frozen=True, slots=True)
class LineReject:
    """A record that could not become an event: ``raw`` is its original bytes
    (without the line break), ``line`` the 1-based line it starts on."""

    line: int
    raw: bytes
    reason: str

    @property
    def text(self) -> str:
        """``raw`` as text; invalid UTF-8 is replaced (U+FFFD)."""
        return self.raw.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Up to ``chunk_events`` events of a file, ready for ``EventParser.parse``.

    ``body`` is a JSON array; its element ``i`` started on line ``lines[i]`` of
    the file and was ``sources[i]`` there (the JSON text, or the CSV record).
    ``rejects`` are the records of the same stretch that never became an
    element; ``bytes_read`` counts the input bytes read so far (compressed bytes
    for gzip), for progress against the file size.
    """

    body: bytes
    lines: tuple[int, ...]
    sources: tuple[bytes, ...]
    rejects: tuple[LineReject, ...]
    bytes_read: int

    @property
    def count(self) -> int:
        """Number of elements in ``body``."""
        return len(self.lines)


@dataclass
class _Chunker:
    chunk_events: int
    chunk_bytes: int
    elements: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    sources: list[bytes] = field(default_factory=list)
    rejects: list[LineReject] = field(default_factory=list)
    size: int = 0

    def add(self, line: int, element: bytes, source: bytes) -> None:
        self.elements.append(element)
        self.lines.append(line)
        self.sources.append(source)
        self.size += len(element) + 1

    def extend(self, lines: Iterable[int], elements: list[bytes], sources: list[bytes]) -> None:
        self.elements += elements
        self.lines += lines
        self.sources += sources
        self.size += sum(map(len, elements)) + len(elements)

    def full(self) -> bool:
        return (len(self.elements) >= self.chunk_events or self.size >= self.chunk_bytes
                or len(self.rejects) >= self.chunk_events)

    def take(self, bytes_read: int) -> Chunk | None:
        if not self.elements and not self.rejects:
            return None
        chunk = Chunk(b"[" + b",".join(self.elements) + b"]", tuple(self.lines),
                      tuple(self.sources), tuple(self.rejects), bytes_read)
        self.elements, self.lines, self.sources, self.rejects = [], [], [], []
        self.size = 0
        return chunk


class _Input:
    """The file's bytes, decompressed if gzip; read errors become ``ImportFileError``."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file = file
        self.offset = 0  # decompressed bytes returned so far
        head = self._raw_head()
        self.gzip = head.startswith(GZIP_MAGIC)
        self._gzip = gzip.GzipFile(fileobj=file, mode="rb") if self.gzip else None
        self._failed: ImportFileError | None = None  # raised once the data before it is out

    def _raw_head(self) -> bytes:
        peek = getattr(self._file, "peek", None)
        return bytes(peek(2)[:2]) if peek is not None else b""

    @property
    def bytes_read(self) -> int:
        try:
            return self._file.tell()
        except (OSError, ValueError):
            return self.offset

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end). A damaged gzip stream first
        gives everything decompressed before the damage, then raises."""
        if self._failed is not None:
            raise self._failed
        if self._gzip is None:
            try:
                data = self._file.read(size)
            except OSError as exc:
                raise self.error(f"read error ({exc.strerror or exc})") from None
            self.offset += len(data)
            return data
        parts: list[bytes] = []
        got = 0
        while got < size:  # read1: a failing read() would drop what it decompressed
            try:
                part = self._gzip.read1(size - got)
            except EOFError:
                failure = "the gzip stream is truncated (the file was cut short)"
            except (gzip.BadGzipFile, zlib.error) as exc:
                failure = f"corrupt gzip data ({exc})"
            except OSError as exc:
                failure = f"read error ({exc.strerror or exc})"
            else:
                if not part:
                    break
                parts.append(part)
                got += len(part)
                continue
            self._failed = self.error(failure, offset=self.offset + got)
            if not parts:
                raise self._failed
            break
        data = b"".join(parts)
        self.offset += len(data)
        return data

    def error(self, message: str, *, offset: int | None = None,
              line: int | None = None) -> ImportFileError:
        """An ``ImportFileError`` at ``offset`` (default: all that was read)."""
        return ImportFileError(self.path, message,
                               offset=self.offset if offset is None else offset,
                               line=line, decompressed=self.gzip)


def read_events(
    path: str | os.PathLike[str],
    *,
    file_format: FileFormat | Literal["auto"] = "auto",
    chunk_events: int = DEFAULT_CHUNK_EVENTS,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[Chunk]:
    """Stream the events of the file at ``path`` as ``Chunk``s (see the module doc).

    ``chunk_events`` / ``chunk_bytes`` bound a chunk (events, bytes of its
    body); a record over ``max_record_bytes`` is an ``ImportFileError``. An
    empty file yields nothing. Raises ``ImportFileError`` (also for a missing
    or unreadable file) and nothing else.
    """
    source = Path(path)
    try:
        file = source.open("rb")
    except OSError as exc:
        raise ImportFileError(source, f"cannot open ({exc.strerror or exc})") from None
    with file:
        inp = _Input(source, file)
        head = inp.read(_BLOCK_BYTES)
        fmt = _detect(head) if file_format == "auto" else file_format
        _check_text(inp, head, fmt)
        chunker = _Chunker(chunk_events, chunk_bytes)
        try:
            if fmt == "json":
                yield from _json_chunks(inp, head, chunker, max_record_bytes)
            elif fmt == "jsonl":
                yield from _jsonl_chunks(inp, head, chunker, max_record_bytes)
            else:
                yield from _csv_chunks(inp, head, chunker, max_record_bytes)
        except ImportFileError:  # a read failed (gzip damage): the records before it first
            chunk = chunker.take(inp.bytes_read)
            if chunk is not None:
                yield chunk
            raise


#: Columns every event needs: a CSV header without them is not a file of events.
_CSV_REQUIRED: Final = ("event", "timestamp")


def _check_text(inp: _Input, head: bytes, fmt: FileFormat) -> None:
    """Refuse a file whose first block shows it is not UTF-8 text of events: binary
    data (a NUL byte), UTF-16/32 text, or a CSV whose header row is not UTF-8 or
    names no ``event`` and ``timestamp`` columns (every record would be rejected)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise inp.error("UTF-16 or UTF-32 text, not UTF-8: save it as UTF-8", offset=0)
    nul = head.find(b"\0")
    if nul >= 0:
        raise inp.error("binary data, not a text file of events (a NUL byte)", offset=nul)
    if fmt != "csv":
        return
    text = head.removeprefix(_BOM)
    lines = text.split(b"\n")[:-1] or [text]
    number = next((n for n, line in enumerate(lines, 1) if line.strip()), 0)
    if not number:
        return  # blank: no records
    line = lines[number - 1]
    offset = len(head) - len(text) + sum(len(before) + 1 for before in lines[:number - 1])
    try:
        names = {name.strip() for name in next(csv.reader([line.decode("utf-8").rstrip("\r")]),
                                                [])}
    except UnicodeDecodeError as exc:
        raise inp.error("not an event file: the CSV header row is not UTF-8 text",
                        line=number, offset=offset + exc.start) from None
    except csv.Error as exc:
        raise inp.error(f"not an event file: the CSV header row is malformed ({exc})",
                        line=number, offset=offset) from None
    missing = [name for name in _CSV_REQUIRED if name not in names]
    if missing:
        raise inp.error("not an event file: the CSV header row names no "
                        + " or ".join(f'"{name}"' for name in missing) + " column",
                        line=number, offset=offset)


def _detect(head: bytes) -> FileFormat:
    stripped = head.removeprefix(_BOM).lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def _check_element(element: bytes, *, json_checked: bool = False) -> str | None:
    """Why ``element`` cannot go into a chunk body, or None when it can.

    ``json_checked``: the splitter already read it as JSON (but not its UTF-8)."""
    if not json_checked:
        try:
            msgspec.json.decode(element, type=msgspec.Raw)
        except msgspec.DecodeError as exc:
            return f"invalid JSON: {exc}"
        except RecursionError:
            return "nested too deeply"
    try:
        element.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 (byte {exc.start})"
    if element.count(b"[") + element.count(b"{") >= _CHEAP_DEPTH:
        try:  # as an element of the body it sits one level deeper
            msgspec.json.decode(b"[" + element + b"]", type=list[msgspec.Raw])
        except RecursionError:
            return "nested too deeply"
    return None


def _json_chunks(inp: _Input, head: bytes, chunker: _Chunker,
                 max_record_bytes: int) -> Iterator[Chunk]:
    pending = [head]

    def read(size: int) -> bytes:
        return pending.pop() if pending else inp.read(size)

    splitter = ArraySplitter(read, block_bytes=_BLOCK_BYTES, max_element_bytes=max_record_bytes)
    try:
        for _offset, line, element in splitter:
            reason = _check_element(element, json_checked=True)
            if reason is None:
                chunker.add(line, element, element)
            else:
                chunker.rejects.append(LineReject(line, element, reason))
            if chunker.full():
                chunk = chunker.take(inp.bytes_read)
                if chunk is not None:
                    yield chunk
    except SplitError as exc:
        chunk = chunker.take(inp.bytes_read)
        if chunk is not None:
            yield chunk
        raise inp.error(str(exc), offset=exc.offset, line=exc.line) from None
    chunk = chunker.take(inp.bytes_read)
    if chunk is not None:
        yield chunk


def _lines(inp: _Input, head: bytes, max_record_bytes: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its line break, whether a line break ended it).

    A line over ``max_record_bytes`` is an ``ImportFileError``."""
    for first, lines, terminated in _line_blocks(inp, head, max_record_bytes):
        for number, line in enumerate(lines, first):
            yield number, line, terminated


def _line_blocks(inp: _Input, head: bytes,
                 max_record_bytes: int) -> Iterator[tuple[int, list[bytes], bool]]:
    """``_lines`` a read block at a time: (number of the first line, the lines without
    their line breaks, whether a line break ended the last of them). The lines before
    one over ``max_record_bytes`` are yielded, then it is an ``ImportFileError``."""
    number = 0
    rest = head.removeprefix(_BOM)
    while True:
        *complete, rest = rest.split(b"\n")
        if complete:
            if max(map(len, complete)) > max_record_bytes:
                long = next(i for i, line in enumerate(complete) if len(line) > max_record_bytes)
                if long:
                    yield number + 1, complete[:long], True
                raise inp.error(f"a line is longer than {max_record_bytes} bytes",
                                line=number + long + 1)
            yield number + 1, complete, True
            number += len(complete)
        if len(rest) > max_record_bytes:
            raise inp.error(f"a line is longer than {max_record_bytes} bytes", line=number + 1)
        block = inp.read(_BLOCK_BYTES)
        if not block:
            break
        rest += block
    if rest:
        yield number + 1, [rest], False


_decode_records = msgspec.json.Decoder(list[msgspec.Raw]).decode


def _records_if_clean(lines: list[bytes]) -> list[bytes] | None:
    """The records of ``lines`` when every one is non-blank, valid JSON, valid UTF-8
    and shallow enough (``_check_element``), all checked in one decode of their
    array; None when any is not (then each line is looked at alone)."""
    records = [line.strip(b" \t\r") for line in lines]
    if not all(records):
        return None
    joined = b"[" + b",".join(records) + b"]"
    try:
        elements = _decode_records(joined)  # RecursionError: one is nested too deeply
        if not joined.isascii():
            joined.decode("utf-8")
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    # Records hold no surrounding whitespace, so the elements are the records exactly
    # when their lengths agree one by one (``1,[2`` and ``3]`` are two elements too).
    if list(map(len, elements)) != list(map(len, records)):
        return None
    return records


def _jsonl_chunks(inp: _Input, head: bytes, chunker: _Chunker,
                  max_record_bytes: int) -> Iterator[Chunk]:
    for first, lines, terminated in _line_blocks(inp, head, max_record_bytes):
        start = 0
        while start < len(lines):
            # A group fills the open chunk to its limits, as adding line by line would.
            group = lines[start:start + max(1, chunker.chunk_events - len(chunker.elements))]
            records = _records_if_clean(group) if terminated else None
            if records is not None:
                room = chunker.chunk_bytes - chunker.size
                if sum(map(len, records)) + len(records) >= room:
                    fits = bisect.bisect_left(list(itertools.accumulate(
                        len(record) + 1 for record in records)), room) + 1
                    group, records = group[:fits], records[:fits]
                # strip() returns a line without surrounding whitespace itself
                sources = group if records == group else [line.rstrip(b"\r") for line in group]
                chunker.extend(range(first + start, first + start + len(group)), records,
                               sources)
                start += len(group)
                if chunker.full():
                    chunk = chunker.take(inp.bytes_read)
                    if chunk is not None:
                        yield chunk
                continue
            for offset, line in enumerate(group):
                number = first + start + offset
                record = line.strip(b" \t\r")
                if record:
                    reason = _check_element(record)
                    if reason is None:
                        chunker.add(number, record, line.rstrip(b"\r"))
                    elif not terminated and "truncated" in reason:
                        chunk = chunker.take(inp.bytes_read)
                        if chunk is not None:
                            yield chunk
                        raise inp.error("the file ends in the middle of a record", line=number)
                    else:
                        chunker.rejects.append(LineReject(number, line.rstrip(b"\r"), reason))
                if chunker.full():
                    chunk = chunker.take(inp.bytes_read)
                    if chunk is not None:
                        yield chunk
            start += len(group)
    chunk = chunker.take(inp.bytes_read)
    if chunk is not None:
        yield chunk


def _csv_chunks(inp: _Input, head: bytes, chunker: _Chunker,
                max_record_bytes: int) -> Iterator[Chunk]:
    records = CsvRecords(_lines(inp, head, max_record_bytes), max_record_bytes)
    try:
        for first_line, original, result in records:
            if isinstance(result, str):
                chunker.rejects.append(LineReject(first_line, original, result))
            else:
                chunker.add(first_line, result, original)
            if chunker.full():
                chunk = chunker.take(inp.bytes_read)
                if chunk is not None:
                    yield chunk
    except (csv.Error, RecordTooLong) as exc:  # csv.Error: a record cut off by the end
        chunk = chunker.take(inp.bytes_read)
        if chunk is not None:
            yield chunk
        message = (str(exc) if isinstance(exc, RecordTooLong)
                   else "the file ends in the middle of a CSV record")
        raise inp.error(message, line=records.record_line) from None
    chunk = chunker.take(inp.bytes_read)
    if chunk is not None:
        yield chunk
