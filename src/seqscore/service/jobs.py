"""Computing queued (account, day) jobs: claim, compute (``service.results``), store.

At-least-once: a job is marked done only after its result is written; a job
whose worker dies is taken over when its lease expires; a failing job is
retried with exponential backoff and parked as ``failed`` after
``job_max_attempts``, never dropped; a batch that fails is split until the job
that fails is alone, so it never takes healthy jobs with it. Results are
idempotent upserts, so a job done twice writes the same row.
"""

from __future__ import annotations

import datetime as dt
import logging

from seqscore.clock import Clock
from seqscore.errors import Unavailable
from seqscore.scoring import ScoringModel
from seqscore.service.results import FACTS_PER_PASS, compute_results
from seqscore.storage.events import EventStore
from seqscore.storage.state import StateStore
from seqscore.types import Job

log = logging.getLogger("seqscore.jobs")

BACKOFF_FIRST = dt.timedelta(seconds=10)
BACKOFF_MAX = dt.timedelta(hours=1)


def backoff(attempts: int) -> dt.timedelta:
    """Delay before retry number ``attempts`` (1-based): 10 s, 20 s, 40 s, … at most 1 h."""
    delay: dt.timedelta = BACKOFF_FIRST * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


class JobRunner:
    def __init__(
        self,
        state: StateStore,
        events: EventStore,
        model: ScoringModel,
        clock: Clock,
        *,
        batch_size: int,
        max_attempts: int,
        lease: dt.timedelta,
        facts_per_pass: int | None = FACTS_PER_PASS,
    ) -> None:
        self._state = state
        self._events = events
        self._model = model
        self._clock = clock
        self._batch_size = batch_size
        self._facts_per_pass = facts_per_pass
        self._max_attempts = max_attempts
        self._lease = lease

    def run_once(self, worker_id: str) -> int:
        """Claim one batch of due jobs and compute it; returns how many jobs were claimed."""
        claimed = self._state.claim_jobs(worker_id, self._batch_size, now=self._clock.now(),
                                         lease=self._lease)
        if not claimed:
            return 0
        self._compute_isolating(claimed)
        return len(claimed)

    def _compute_isolating(self, claimed: list[Job]) -> None:
        """Compute ``claimed``; when that fails, each half again, down to single jobs, so
        that a job that cannot be computed fails alone and never takes its batch with it.
        An unreachable store (``Unavailable``) fails the whole batch at once: every part
        would fail the same way."""
        try:
            self._compute(claimed)
        except Exception as exc:
            if len(claimed) == 1 or isinstance(exc, Unavailable):
                first = claimed[0]
                log.exception("computing %d job(s) failed, first %s (account %s, %s)",
                              len(claimed), first.job_id, first.account_id, first.day)
                self._fail(claimed, exc)
                return
            log.warning("computing %d jobs together failed (%s: %s); splitting the batch",
                        len(claimed), type(exc).__name__, exc)
            half = len(claimed) // 2
            self._compute_isolating(claimed[:half])
            self._compute_isolating(claimed[half:])

    def run_until_idle(self, worker_id: str, *, max_batches: int = 1_000_000) -> int:
        """Compute due jobs until none is left; returns how many were claimed."""
        total = 0
        for _ in range(max_batches):
            done = self.run_once(worker_id)
            if done == 0:
                break
            total += done
        return total

    def _compute(self, claimed: list[Job]) -> None:
        accounts = [a for a in (self._state.get_account(i) for i in {j.account_id for j in claimed})
                    if a is not None]
        wanted = {(j.account_id, j.day) for j in claimed}
        results = compute_results(self._events, self._model, accounts,
                                  [j.day for j in claimed], computed_at=self._clock.now(),
                                  facts_per_pass=self._facts_per_pass)
        self._state.upsert_results([r for r in results if (r.account_id, r.day) in wanted])
        self._state.complete_jobs([j.job_id for j in claimed], now=self._clock.now())

    def _fail(self, claimed: list[Job], exc: Exception) -> None:
        now = self._clock.now()
        for job in claimed:
            retry_at = now + backoff(job.attempts) if job.attempts < self._max_attempts else None
            if retry_at is None:
                log.error("job %s (account %s, %s) failed %d times; parked as failed: %s",
                          job.job_id, job.account_id, job.day, job.attempts, exc)
            try:
                self._state.fail_job(job.job_id, f"{type(exc).__name__}: {exc}", now=now,
                                     retry_at=retry_at)
            except Exception:
                # the others must still be recorded; this one stays running and is taken
                # over when its lease expires, so it is retried, not lost
                log.exception("recording the failure of job %s failed", job.job_id)

