"""``seqscore import``: event files into the event store, directly or through a server.

A file is read in chunks (``ingest.files.read_events``: JSON array, JSON Lines or
CSV, maybe gzip); each chunk is a webhook-shaped body handed to a sink:

- ``LocalSink`` stores it in this process (``IngestService``, whose parser
  processes parse while this one reads and stores);
- ``RemoteSink`` posts it to a running ``seqscore serve`` (its receiver), for
  when the server owns the event store.

Several chunks are in flight at once, and their answers are taken in file
order, so memory stays flat however large the file. A re-run stores nothing
twice: each chunk is recognised by its digest (``duplicates``). Rejected records
(not JSON, or invalid events) are written to ``<file>.rejected.jsonl``, one JSON
object per record: its line, the reason and the original text.
"""

from __future__ import annotations

import contextlib
import http.client
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
from seqscore.service.ingest import IngestReport, IngestService
from seqscore.service.services import Services
from seqscore.storage.duckdb_events import EventStoreBusy
from seqscore.types import Account

#: Chunks sent before the first answer is awaited: enough to keep every parser busy.
IN_FLIGHT: Final = 8
#: Retries of a chunk the server could not take (5xx, connection lost).
REMOTE_ATTEMPTS: Final = 6

_encode = msgspec.json.Encoder().encode
Progress = Callable[[int, int], None]  # (bytes read of the file, events read so far)


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


def import_file(path: Path, sink: Sink, *, in_flight: int = IN_FLIGHT,
                progress: Progress | None = None) -> FileReport:
    """Send every chunk of ``path`` to ``sink``; returns the file's counts.

    ``in_flight`` chunks are sent before the first answer is awaited. A file cut
    short or corrupt stores the chunks before the damage and records the error
    in ``FileReport.error`` (``ImportFileError`` is not raised); other errors
    (a refusal by the server, the store unavailable) are raised.
    """
    report = FileReport(path)
    rejected = _Rejected(path.with_name(path.name + ".rejected.jsonl"))
    rejected.path.unlink(missing_ok=True)
    pending: deque[tuple[Chunk, Future[IngestReport]]] = deque()

    def settle(chunk: Chunk, outcome: IngestReport) -> None:
        report.accepted += outcome.accepted
        report.duplicates += outcome.duplicates
        report.rejected += outcome.rejected
        for index, reason in outcome.errors:
            rejected.write(chunk.lines[index], reason,
                           chunk.sources[index].decode("utf-8", "replace"))

    try:
        try:
            for chunk in read_events(path):
                report.records += chunk.count + len(chunk.rejects)
                report.rejected += len(chunk.rejects)
                for line_reject in chunk.rejects:
                    rejected.write(line_reject.line, line_reject.reason, line_reject.text)
                if chunk.count:
                    pending.append((chunk, sink.submit(chunk.body)))
                while len(pending) > in_flight:
                    settle(*_result(pending.popleft()))
                if progress is not None:
                    progress(chunk.bytes_read, report.records)
        except ImportFileError as exc:
            report.error = str(exc)
        while pending:
            settle(*_result(pending.popleft()))
    finally:
        for _, future in pending:
            future.cancel()
        rejected.close()
    report.rejected_path = rejected.path if rejected.count else None
    return report


def _result(item: tuple[Chunk, Future[IngestReport]]) -> tuple[Chunk, IngestReport]:
    return item[0], item[1].result()


# ------------------------------------------------------------------- local


class LocalSink:
    """Stores chunks in this process for ``account``, several at once: the parsing
    runs in the service's parser processes (``ingest_processes``), so that every
    core parses. A chunk's rejects are left to the file's ``.rejected.jsonl``."""

    def __init__(self, ingest: IngestService, account: Account) -> None:
        self._ingest = ingest
        self._account = account
        self._threads = ThreadPoolExecutor(IN_FLIGHT + 1, thread_name_prefix="seqscore-import")

    def submit(self, body: bytes) -> Future[IngestReport]:
        return self._threads.submit(self._ingest.ingest, self._account, body, quarantine=False)

    def close(self) -> None:
        self._threads.shutdown(cancel_futures=True)


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
    return LocalSink(ingest, account)


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

