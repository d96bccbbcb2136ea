"""Parsing in worker processes, so that every core parses.

The parser is pure Python work under the interpreter's lock: in one process,
threads take turns at it. A ``ParserPool`` runs ``processes`` worker processes,
each with its own ``EventParser`` for the installation; a body goes to a worker
and comes back as its ``ParsedBatch`` (the Arrow table travels in Arrow's IPC
format). Workers are forked from a fork server that has imported only this
module: they share nothing with the parent (no store connection, no lock, not
the command line's imports) but the arguments of the parser.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from seqscore.errors import Unavailable
from seqscore.ingest.webhook import EventParser, ParsedBatch

log = logging.getLogger("seqscore.ingest")
_parser: EventParser | None = None
_OWNER_POLL_S = 1.0


def _start(recipient_key: bytes, raw_cap_bytes: int, providers: dict[str, str],
           owner_pid: int) -> None:
    global _parser  # one parser per worker process, built once
    _parser = EventParser(recipient_key, providers=providers, raw_cap_bytes=raw_cap_bytes)
    use_system_allocator()
    threading.Thread(target=_exit_with, args=(owner_pid,), name="seqscore-owner-watch",
                     daemon=True).start()


def _exit_with(owner_pid: int) -> None:
    """End this worker once the process that owns the pool is gone. A pool's workers
    wait on a queue whose other end they hold too, so they would outlive an owner
    killed without warning (SIGKILL, the OOM killer) for ever."""
    while True:
        time.sleep(_OWNER_POLL_S)
        try:
            os.kill(owner_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # the pid is someone else's now: the owner is gone
            os._exit(0)


def use_system_allocator() -> None:
    """Arrow buffers from the C library's allocator in this process. Arrow's default
    (mimalloc) keeps what a thread freed for that thread: with many threads handing
    tables on, a long import held ~200 MB more than it used."""
    pa.set_memory_pool(pa.system_memory_pool())


def _parse(body: bytes, account_id: int, ingested_at: dt.datetime) -> ParsedBatch:
    assert _parser is not None, "not a ParserPool worker"
    return _parser.parse(body, account_id=account_id, ingested_at=ingested_at)


class ParserPool:
    """``EventParser.parse`` in ``processes`` worker processes (started on first use).

    ``providers`` is the installation's domain -> mailbox provider table, as for
    ``EventParser`` (a mapping: it is sent to the workers). A worker that dies (the
    OOM killer, a crash in native code) breaks the executor; the pool then starts
    new workers and parses the body once more.
    """

    def __init__(self, processes: int, *, recipient_key: bytes, raw_cap_bytes: int,
                 providers: Mapping[str, str]) -> None:
        if processes < 1:
            raise ValueError("a ParserPool needs at least one process")
        use_system_allocator()  # tables arrive here on many threads
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([__name__])
        self._processes = processes
        self._initargs = (recipient_key, raw_cap_bytes, dict(providers), os.getpid())
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self._processes, mp_context=self._context,
                                   initializer=_start, initargs=self._initargs)

    def parse(self, body: bytes, *, account_id: int, ingested_at: dt.datetime) -> ParsedBatch:
        """Like ``EventParser.parse`` (``BodyError`` included), in a worker; blocks
        the calling thread. Raises ``Unavailable`` if new workers break too."""
        for attempt in (1, 2):
            executor = self._executor
            try:
                return executor.submit(_parse, body, account_id, ingested_at).result()
            except BrokenProcessPool:
                if attempt == 2:
                    raise Unavailable("the parser processes keep stopping") from None
                self._replace(executor)
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:  # not yet replaced by another thread
                log.warning("a parser process stopped; starting new ones")
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()

    def close(self) -> None:
        self._executor.shutdown(cancel_futures=True)
