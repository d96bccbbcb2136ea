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

import csv
import gzip
import os
import zlib
from collections.abc import Iterator
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
        self._stream: BinaryIO = (
            gzip.GzipFile(fileobj=file, mode="rb") if self.gzip else file)  # type: ignore[assignment]

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
        try:
            data = self._stream.read(size)
        except EOFError:
            raise self.error("the gzip stream is truncated (the file was cut short)") from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise self.error(f"corrupt gzip data ({exc})") from None
        except OSError as exc:
            raise self.error(f"read error ({exc.strerror or exc})") from None
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
        chunker = _Chunker(chunk_events, chunk_bytes)
        if fmt == "json":
            yield from _json_chunks(inp, head, chunker, max_record_bytes)
        elif fmt == "jsonl":
            yield from _jsonl_chunks(inp, head, chunker, max_record_bytes)
        else:
            yield from _csv_chunks(inp, head, chunker, max_record_bytes)


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
    number = 0
    rest = head.removeprefix(_BOM)
    while True:
        *complete, rest = rest.split(b"\n")
        for line in complete:
            number += 1
            if len(line) > max_record_bytes:
                raise inp.error(f"a line is longer than {max_record_bytes} bytes", line=number)
            yield number, line, True
        if len(rest) > max_record_bytes:
            raise inp.error(f"a line is longer than {max_record_bytes} bytes", line=number + 1)
        block = inp.read(_BLOCK_BYTES)
        if not block:
            break
        rest += block
    if rest:
        yield number + 1, rest, False


def _jsonl_chunks(inp: _Input, head: bytes, chunker: _Chunker,
                  max_record_bytes: int) -> Iterator[Chunk]:
    for number, line, terminated in _lines(inp, head, max_record_bytes):
        record = line.strip(b" \t\r")
        if not record:
            continue
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
