"""The worker loop: scheduler ticks and job batches, in a thread, until stopped."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading

from seqscore.service.jobs import JobRunner
from seqscore.service.schedule import Retention, Scheduler
from seqscore.service.services import Services

log = logging.getLogger("seqscore.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Worker:
    def __init__(self, services: Services) -> None:
        s = services.settings
        self.services = services
        self.runner = JobRunner(
            services.state, services.events, services.model, services.clock,
            batch_size=s.worker_batch_size, max_attempts=s.job_max_attempts,
            lease=dt.timedelta(seconds=s.job_lease_seconds))
        self.scheduler = Scheduler(
            services.state, services.events, services.clock,
            settle_minutes=s.settle_minutes,
            retention=Retention(s.results_retention_days, s.events_retention_days,
                                s.quarantine_retention_days, s.batch_keys_retention_days),
            compact_minutes=s.events_compact_minutes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.id = worker_id()

    def step(self) -> int:
        """One round: scheduler tick, then one batch of jobs. Returns jobs computed.

        A failing tick (retention, compaction) is logged and does not keep jobs from
        being computed."""
        try:
            self.scheduler.tick()
        except Exception:
            log.exception("scheduler tick failed")
        return self.runner.run_once(self.id)

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
