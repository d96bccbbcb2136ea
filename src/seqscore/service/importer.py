"""``seqscore import``: event files into the event store, directly or through a server.

A file is read in chunks (``ingest.files.read_events``: JSON array, JSON Lines or
CSV, maybe gzip); each chunk is a webhook-shaped body handed to a sink:

- ``LocalSink`` stores it in this process (``IngestService``, whose parser
  processes parse while this one reads and stores);
- ``RemoteSink`` posts it to a running ``seqscore serve`` (its receiver), for
  when the server owns the event store.

Several chunks are in flight at once, and their answers are taken in file
order, so memory stays flat however large the file. A re-run stores nothing
twice: each chunk is recognised by its digest (``duplicates``). A file damaged in
the middle of a chunk stores that chunk's part before the damage;
``<file>.import-cuts.json`` remembers where, so that a re-run on the repaired file
sends that chunk in the same pieces and the part is recognised too. Rejected records
(not JSON, or invalid events) are written to ``<file>.rejected.jsonl``, one JSON
object per record: its line, the reason and the original text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import itertools
import json
import queue
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

import msgspec

from seqscore.errors import SeqscoreError, Unavailable
from seqscore.ingest.files import Chunk, ImportFileError, read_events
from seqscore.service.ingest import IngestReport, IngestService, ManyAppender, PreparedBatch
from seqscore.service.services import Services
from seqscore.storage.duckdb_events import ROW_GROUP_ROWS, EventStoreBusy
from seqscore.types import Account

#: Chunks sent before the first answer is awaited: enough to keep every parser busy.
IN_FLIGHT: Final = 8
#: Rows a local import stores per transaction, when it has that many; a transaction
#: never reaches a DuckDB row group (``duckdb_events.ROW_GROUP_ROWS`` says why).
BULK_ROWS: Final = 100_000
#: Chunks a local import keeps in flight: a group being stored, the next one parsing.
LOCAL_IN_FLIGHT: Final = 72
#: A local import's threads waiting on the parser processes.
PARSE_THREADS: Final = 4
#: The writer stores a smaller group once no chunk has come for this long.
GROUP_WAIT_S: Final = 0.05
#: Retries of a chunk the server could not take (5xx, connection lost).
REMOTE_ATTEMPTS: Final = 6

_encode = msgspec.json.Encoder().encode
Progress = Callable[[int, int], None]  # (bytes read of the file, events read so far)
_Parsing = tuple["Future[PreparedBatch]", "Future[IngestReport]"]


class ImportRefused(SeqscoreError):
    """The server refused a chunk (wrong key, scope, signature required, ...)."""


class Sink(Protocol):
    def submit(self, body: bytes) -> Future[IngestReport]:
        """Start storing one chunk body; the future gives its report."""
        ...

    def close(self) -> None:
        ...


@dataclass
class FileReport:
    """The outcome of one file: counts as in the receiver's answer, plus the
    records that never became an event (``rejected`` includes them)."""

    path: Path
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejected_path: Path | None = None
    error: str | None = None  # the file is cut short or corrupt after this point

    def as_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "records": self.records, "accepted": self.accepted,
                "rejected": self.rejected, "duplicates": self.duplicates,
                "rejected_file": None if self.rejected_path is None else str(self.rejected_path),
                "error": self.error}


@dataclass
class _Rejected:
    """``<file>.rejected.jsonl``, opened on the first reject (an old one is removed)."""

    path: Path
    file: IO[bytes] | None = None
    count: int = field(default=0)

    def write(self, line: int, reason: str, text: str) -> None:
        if self.file is None:
            self.file = self.path.open("wb")
        self.file.write(_encode({"line": line, "reason": reason, "record": text}) + b"\n")
        self.count += 1

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def import_file(path: Path, sink: Sink, *, in_flight: int | None = None,
                progress: Progress | None = None) -> FileReport:
    """Send every chunk of ``path`` to ``sink``; returns the file's counts.

    ``in_flight`` chunks (default: the sink's ``in_flight``, else ``IN_FLIGHT``)
    are sent before the first answer is awaited. A file cut
    short or corrupt stores the chunks before the damage and records the error
    in ``FileReport.error`` (``ImportFileError`` is not raised); other errors
    (a refusal by the server, the store unavailable) are raised.
    """
    if in_flight is None:
        in_flight = int(getattr(sink, "in_flight", IN_FLIGHT))
    report = FileReport(path)
    rejected = _Rejected(path.with_name(path.name + ".rejected.jsonl"))
    rejected.path.unlink(missing_ok=True)
    cuts = _Cuts.load(path.with_name(path.name + CUTS_SUFFIX))
    pending: deque[tuple[Chunk, Future[IngestReport]]] = deque()
    last: tuple[int, list[Chunk]] | None = None  # the last chunk sent, in its pieces
    ordinal = -1

    def settle(chunk: Chunk, outcome: IngestReport) -> None:
        report.accepted += outcome.accepted
        report.duplicates += outcome.duplicates
        report.rejected += outcome.rejected
        for index, reason in outcome.errors:
            rejected.write(chunk.lines[index], reason,
                           chunk.sources[index].decode("utf-8", "replace"))

    try:
        try:
            for ordinal, chunk in enumerate(read_events(path)):
                report.records += chunk.count + len(chunk.rejects)
                report.rejected += len(chunk.rejects)
                for line_reject in chunk.rejects:
                    rejected.write(line_reject.line, line_reject.reason, line_reject.text)
                if chunk.count:  # kept for its lines and sources; the sink has the body
                    pieces = cuts.pieces(ordinal, chunk)
                    for piece in pieces:
                        future = sink.submit(piece.body)
                        pending.append((dataclasses.replace(piece, body=b""), future))
                    last = (ordinal, pieces)
                while len(pending) > in_flight:
                    settle(*_result(pending.popleft()))
                if progress is not None:
                    progress(chunk.bytes_read, report.records)
        except ImportFileError as exc:
            report.error = str(exc)
            if last is not None:  # maybe stored in part: a re-run cuts it the same way
                cuts.remember(*last)
        while pending:
            settle(*_result(pending.popleft()))
    finally:
        for _, future in pending:
            future.cancel()
        rejected.close()
    cuts.save(reached=ordinal if report.error else None)
    report.rejected_path = rejected.path if rejected.count else None
    return report


#: Beside a file: the chunks a damaged import stored in part, and how they were cut.
CUTS_SUFFIX: Final = ".import-cuts.json"
_decode_elements = msgspec.json.Decoder(list[msgspec.Raw]).decode
_Piece = tuple[int, int, str]  # (first element, end, digest of its body)


def _body_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass
class _Cuts:
    """``<file>.import-cuts.json``: for each chunk (by its position in the file) sent
    in pieces, the pieces, so that every run sends it cut the same way.

    Stores recognise a chunk sent again by the digest of its body. When a file is
    damaged inside a chunk, the part before the damage is stored as a body of its
    own; the repaired file's chunk is longer, its digest new, and the part would be
    stored (and counted) twice. So the part is remembered here, and a re-run sends
    that chunk as the part (recognised: ``duplicates``) and the rest (new:
    ``accepted``), and remembers both pieces for later re-runs. A chunk whose
    start no longer matches (another file of the same name) is sent whole."""

    path: Path
    known: dict[int, list[_Piece]]
    used: dict[int, list[_Piece]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> _Cuts:
        try:
            data = json.loads(path.read_bytes())
            known = {int(k): [(int(a), int(b), str(d)) for a, b, d in v]
                     for k, v in data["chunks"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            known = {}
        return cls(path, known)

    def pieces(self, ordinal: int, chunk: Chunk) -> list[Chunk]:
        """``chunk`` as the pieces it was stored in before (itself when whole)."""
        known = self.known.get(ordinal)
        if not known or max(b for _, b, _ in known) > chunk.count:
            return [chunk]
        elements = [bytes(raw) for raw in _decode_elements(chunk.body)]
        bounds = [0, *sorted({b for _, b, _ in known} | {chunk.count})]
        if (_join(elements) != chunk.body
                or any(_body_digest(_join(elements[a:b])) != d for a, b, d in known)
                or {(a, b) for a, b, _ in known} - set(itertools.pairwise(bounds))):
            return [chunk]  # not the chunk that was cut: send it whole
        pieces = [dataclasses.replace(chunk, body=_join(elements[a:b]), lines=chunk.lines[a:b],
                                      sources=chunk.sources[a:b], rejects=())
                  for a, b in itertools.pairwise(bounds)]
        self.remember(ordinal, pieces)
        return pieces

    def remember(self, ordinal: int, pieces: list[Chunk]) -> None:
        starts = itertools.accumulate((p.count for p in pieces), initial=0)
        self.used[ordinal] = [(a, a + p.count, _body_digest(p.body))
                              for a, p in zip(starts, pieces, strict=False)]

    def save(self, *, reached: int | None) -> None:
        """Keep what this run used, and (``reached``: the last chunk read before the
        damage) what it did not reach; remove the file when there is nothing."""
        keep = {k: v for k, v in self.known.items() if reached is not None and k > reached}
        keep.update(self.used)
        with contextlib.suppress(OSError):  # only the counts of a later re-run suffer
            if not keep:
                self.path.unlink(missing_ok=True)
                return
            self.path.write_text(json.dumps({"chunks": {str(k): [list(p) for p in v]
                                                        for k, v in sorted(keep.items())}}))


def _join(elements: list[bytes]) -> bytes:
    return b"[" + b",".join(elements) + b"]"


def _result(item: tuple[Chunk, Future[IngestReport]]) -> tuple[Chunk, IngestReport]:
    return item[0], item[1].result()


# ------------------------------------------------------------------- local


class LocalSink:
    """Stores chunks in this process for ``account``. The parsing runs in the
    service's parser processes (``ingest_processes``), so that every core parses;
    one writer thread stores the parsed chunks in file order, ``bulk_rows`` and
    more per transaction of the event store (``append_many``, its only writer
    here), but fewer than ``max_rows`` (unless one chunk has more). A chunk's
    rejects are left to the file's ``.rejected.jsonl``."""

    #: Chunks ``import_file`` keeps in flight: a group being stored, the next parsing.
    in_flight = LOCAL_IN_FLIGHT

    def __init__(self, ingest: IngestService, account: Account, append_many: ManyAppender,
                 *, bulk_rows: int = BULK_ROWS,
                 max_rows: int = ROW_GROUP_ROWS) -> None:
        self._ingest = ingest
        self._account = account
        self._append_many = append_many
        self._bulk_rows = bulk_rows
        self._max_rows = max_rows
        self._parsers = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="seqscore-import")
        self._parsed: queue.SimpleQueue[_Parsing | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="seqscore-import-writer",
                                        daemon=True)
        self._writer.start()

    def submit(self, body: bytes) -> Future[IngestReport]:
        done: Future[IngestReport] = Future()
        self._parsed.put((self._parsers.submit(self._ingest.prepare, self._account, body), done))
        return done

    def _write(self) -> None:
        """Store the chunks in order, in groups of ``bulk_rows`` rows or more (but
        fewer than ``max_rows``), or what is there when no chunk has come for
        ``GROUP_WAIT_S`` (the reader waits for an answer, or the file has ended)."""
        group: list[tuple[PreparedBatch, Future[IngestReport]]] = []
        rows = 0
        while True:
            try:
                item = self._parsed.get(timeout=GROUP_WAIT_S) if group else self._parsed.get()
            except queue.Empty:
                self._store(group)
                group, rows = [], 0
                continue
            if item is None:
                self._store(group)
                return
            parsing, done = item
            if not done.set_running_or_notify_cancel():
                parsing.cancel()
                continue
            try:
                batch = parsing.result()
            except BaseException as exc:  # BodyError, Unavailable: that chunk's answer
                done.set_exception(exc)
                continue
            batch_rows = batch.parsed.table.num_rows
            if group and rows + batch_rows >= self._max_rows:
                self._store(group)
                group, rows = [], 0
            group.append((batch, done))
            rows += batch_rows
            if rows >= self._bulk_rows:
                self._store(group)
                group, rows = [], 0

    def _store(self, group: list[tuple[PreparedBatch, Future[IngestReport]]]) -> None:
        if not group:
            return
        try:
            reports = self._ingest.store_many(self._account, [batch for batch, _ in group],
                                              append_many=self._append_many, quarantine=False)
        except BaseException as exc:
            for _, done in group:
                done.set_exception(exc)
            return
        for (_, done), report in zip(group, reports, strict=True):
            done.set_result(report)

    def close(self) -> None:
        self._parsed.put(None)
        self._writer.join()
        self._parsers.shutdown(cancel_futures=True)


def local_sink(services: Services, username: str) -> LocalSink:
    """A ``LocalSink`` for the account ``username``. Raises ``NotFound``, and
    ``EventStoreBusy`` saying how to import through the server that holds the
    event store."""
    account = services.state.require_account(username)
    try:
        ingest = services.ingest
    except EventStoreBusy as exc:
        s = services.settings
        raise EventStoreBusy(f"{exc}. Import through it: seqscore import FILE... --url "
                             f"http://{s.host}:{s.port} --key KEY") from exc
    return LocalSink(ingest, account, services.events.append_many)


# ------------------------------------------------------------------ remote


class RemoteSink:
    """Posts chunks to a server's receiver with ``api_key`` (``on_behalf_of``: a
    child of the key's account). ``connections`` requests are in flight at once."""

    def __init__(self, base_url: str, api_key: str, *, on_behalf_of: str | None = None,
                 connections: int = 4, timeout_s: float = 120.0) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._url = url
        self._path = url.path.rstrip("/") + "/api/v1/events/sendgrid?errors=all"
        self._headers = {"Authorization": f"Bearer {api_key}",
                         "Content-Type": "application/json", "User-Agent": "seqscore-import"}
        if on_behalf_of:
            self._headers["on-behalf-of"] = on_behalf_of
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._threads = ThreadPoolExecutor(connections, thread_name_prefix="seqscore-post")

    def submit(self, body: bytes) -> Future[IngestReport]:
        return self._threads.submit(self._post, body)

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = (http.client.HTTPSConnection if self._url.scheme == "https"
                   else http.client.HTTPConnection)
            conn = cls(self._url.hostname or "", self._url.port, timeout=self._timeout_s)
            self._local.conn = conn
        return conn

    def _post(self, body: bytes) -> IngestReport:
        delay_s = 0.5
        for attempt in range(1, REMOTE_ATTEMPTS + 1):
            try:
                conn = self._connection()
                conn.request("POST", self._path, body=body, headers=self._headers)
                response = conn.getresponse()
                status, answer = response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._reset()
                failure = f"cannot reach {self._url.geturl()}: {exc}"
            else:
                if status == 200:
                    return _report(answer)
                failure = f"the server answered {status}: {_message(answer)}"
                if status < 500:
                    raise ImportRefused(failure)
            if attempt == REMOTE_ATTEMPTS:
                raise Unavailable(failure)
            time.sleep(delay_s)
            delay_s *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
            self._local.conn = None

    def close(self) -> None:
        self._threads.shutdown(cancel_futures=True)


def _report(answer: bytes) -> IngestReport:
    data = msgspec.json.decode(answer)
    return IngestReport(
        accepted=int(data["accepted"]), rejected=int(data["rejected"]),
        duplicates=int(data.get("duplicates", 0)),
        errors=tuple((int(e["index"]), str(e["message"])) for e in data.get("errors", ())))


def _message(answer: bytes) -> str:
    try:
        return "; ".join(str(e.get("message")) for e in msgspec.json.decode(answer)["errors"])
    except Exception:  # any body at all: show its start
        return answer[:200].decode("utf-8", "replace")

