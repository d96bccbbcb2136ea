"""Group commit: one writer thread appends every queued batch to the event store.

The event store takes one write transaction at a time, and each commit is a
synced write. Under concurrent posts the batches that queue up while one
transaction commits go into the next transaction together, so the commit count
grows with the load far slower than the batch count does. Each caller still
waits until its own batch is durable, and a transaction that fails fails every
batch in it (each caller answers 503 and its sender retries): all or nothing
per batch holds.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Final

import pyarrow as pa

from seqscore.errors import SeqscoreError, Unavailable
from seqscore.storage.events import AppendOutcome, EventStore

log = logging.getLogger("seqscore.ingest")

#: A transaction takes batches from the queue until it holds this many rows.
DEFAULT_GROUP_ROWS: Final = 50_000

_Item = tuple[pa.Table, bytes | None, "Future[AppendOutcome]"]


class GroupCommitter:
    """``append`` from any thread; one thread of its own writes (see the module doc)."""

    def __init__(self, events: EventStore, *, group_rows: int = DEFAULT_GROUP_ROWS) -> None:
        self._events = events
        self._group_rows = group_rows
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: transactions committed, and batches in them (for tests and benchmarks)
        self.commits = 0
        self.batches = 0

    def append(self, table: pa.Table, batch_key: bytes | None = None) -> AppendOutcome:
        """Append one batch; returns once it is durably committed (or raises)."""
        done: Future[AppendOutcome] = Future()
        with self._lock:
            if self._closed:
                raise Unavailable("the event store is shutting down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="seqscore-committer",
                                                daemon=True)
                self._thread.start()
            self._queue.put((table, batch_key, done))
        return done.result()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            rows = first[0].num_rows
            while rows < self._group_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
                rows += item[0].num_rows
            self._commit(group)

    def _commit(self, group: list[_Item]) -> None:
        try:
            outcomes = self._events.append_many([(table, key) for table, key, _ in group])
        except Exception as exc:
            log.error("appending %d batches failed: %s", len(group), exc)
            failure = exc if isinstance(exc, SeqscoreError) else _unavailable(exc)
            for _, _, done in group:
                done.set_exception(failure)
            return
        self.commits += 1
        self.batches += len(group)
        for (_, _, done), outcome in zip(group, outcomes, strict=True):
            done.set_result(outcome)


def _unavailable(exc: Exception) -> Unavailable:
    """The store's own failure (disk full, I/O error): the sender should retry later."""
    failure = Unavailable(f"the event store failed: {exc}")
    failure.__cause__ = exc
    return failure
