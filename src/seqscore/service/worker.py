"""The worker loop: scheduler ticks and job batches, in a thread, until stopped.

A worker that dies (SIGKILL, OOM, power loss) leaves its claimed jobs running;
their lease (``job_lease_seconds``) hands them to another worker eventually. A
worker that can tell a claimant is dead releases its jobs at once instead
(``release_dead_claims``, on its first round and every ``SWEEP_SECONDS``), so
a restarted ``seqscore serve`` resumes the jobs its killed predecessor held.
Dead for certain: its process is gone from this host (same host name and pid
namespace), or it named this process's pid but is none of its workers (a
container restarted under the same pid), or the event store can be written by
one process only and this is that process (the embedded DuckDB file: no other
process can be computing). Anything else waits for the lease.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Collection
from typing import Final

from seqscore.errors import SeqscoreError
from seqscore.service.jobs import JobRunner
from seqscore.service.schedule import Retention, Scheduler
from seqscore.service.services import Services

log = logging.getLogger("seqscore.worker")


#: How often a worker looks for jobs held by dead workers.
SWEEP_SECONDS: Final = 60.0
#: The ids of this process's workers (alive as long as the process is).
_OWN_IDS: set[str] = set()


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return "0"


def worker_id() -> str:
    """``host:pid:namespace.token``: unique per worker, and telling which host and
    process held a job."""
    return f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}.{uuid.uuid4().hex[:12]}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead too
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def claimant_is_dead(claimant: str, *, exclusive_store: bool,
                     own_ids: Collection[str] = _OWN_IDS) -> bool:
    """Whether the worker ``claimant`` (a ``worker_id``) certainly no longer runs
    (see the module doc). Ids of another shape are never judged dead."""
    parts = claimant.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid, token = parts[0], int(parts[1]), parts[2]
    if pid == os.getpid():
        return claimant not in own_ids
    if exclusive_store:
        return True
    same_place = host == socket.gethostname() and token.split(".")[0] == _pid_namespace()
    return same_place and not _process_exists(pid)


class Worker:
    def __init__(self, services: Services) -> None:
        s = services.settings
        self.services = services
        self.runner = JobRunner(
            services.state, services.events, services.model, services.clock,
            batch_size=s.worker_batch_size, max_attempts=s.job_max_attempts,
            lease=dt.timedelta(seconds=s.job_lease_seconds),
            facts_per_pass=s.compute_facts_per_pass)
        self.scheduler = Scheduler(
            services.state, services.events, services.clock,
            settle_minutes=s.settle_minutes,
            retention=Retention(s.results_retention_days, s.events_retention_days,
                                s.quarantine_retention_days, s.batch_keys_retention_days),
            compact_minutes=s.events_compact_minutes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.id = worker_id()
        _OWN_IDS.add(self.id)
        self._next_sweep = 0.0

    def step(self) -> int:
        """One round: scheduler tick, then one batch of jobs. Returns jobs computed.

        A failing tick (retention, compaction) is logged and does not keep jobs from
        being computed."""
        try:
            self.scheduler.tick()
        except Exception:
            log.exception("scheduler tick failed")
        if time.monotonic() >= self._next_sweep:
            self.release_dead_claims()
        return self.runner.run_once(self.id)

    def release_dead_claims(self) -> int:
        """Put the jobs of workers that certainly died back in the queue (see the
        module doc); returns how many. Failures are logged and retried next round."""
        try:
            try:
                exclusive = self.services.events.single_process
            except SeqscoreError:  # held by another process: it may be computing
                exclusive = False
            state = self.services.state
            dead = [c for c in state.running_claimants()
                    if claimant_is_dead(c, exclusive_store=exclusive)]
            released = state.release_claims(dead, now=self.services.clock.now())
        except Exception:
            log.exception("looking for jobs of dead workers failed")
            return 0
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        if released:
            log.warning("%d job(s) of %d dead worker(s) back in the queue: %s", released,
                        len(dead), ", ".join(sorted(dead)))
        return released

    def run(self) -> None:
        poll = self.services.settings.worker_poll_seconds
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("worker round failed")
                busy = 0
            if not busy:
                self._stop.wait(poll)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="seqscore-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
