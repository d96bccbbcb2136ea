"""Computing queued (account, day) jobs: claim, aggregate, score, store.

At-least-once: a job is marked done only after its result is written; a job
whose worker dies is taken over when its lease expires; a failing job is
retried with exponential backoff and parked as ``failed`` after
``job_max_attempts``, never dropped; a batch that fails is split until the job
that fails is alone, so it never takes healthy jobs with it. Results are
idempotent upserts, so a job done twice writes the same row.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pyarrow as pa

from seqscore.clock import Clock
from seqscore.compute.aggregate import (
    WindowSpec,
    window_counts_in_chunks,
    window_counts_table,
)
from seqscore.compute.daycache import DayFactCache, cached_facts
from seqscore.errors import Unavailable
from seqscore.scoring import ScoringModel, score_day, to_day_result
from seqscore.storage.events import EventStore
from seqscore.storage.state import StateStore
from seqscore.types import Account, Day, DayResult, Job

log = logging.getLogger("seqscore.jobs")

BACKOFF_FIRST = dt.timedelta(seconds=10)
BACKOFF_MAX = dt.timedelta(hours=1)


def backoff(attempts: int) -> dt.timedelta:
    """Delay before retry number ``attempts`` (1-based): 10 s, 20 s, 40 s, … at most 1 h."""
    delay: dt.timedelta = BACKOFF_FIRST * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


#: Results scored per chunk by ``iter_results``: what a caller holds at once.
RESULTS_PER_CHUNK = 10_000


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while counts are unpacked and results scored:
    each result allocates a few dozen small dicts, lists and strings (never a cycle),
    and the collector's passes over the growing heap cost more than the scoring
    itself (measured: 110 us per result with it, 44 us without). Reference counting
    still frees them; cyclic garbage made meanwhile (by any thread: the pause is
    process-wide) waits for the collector's next pass after the pause."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _count_days(events: EventStore, model: ScoringModel, account_ids: Sequence[int],
                days: Sequence[Day]) -> pa.Table | None:
    """The window counts of ``account_ids`` x ``days`` as one Arrow table (see
    ``window_counts_table``). A store that keeps derived tables (DuckDB) keeps the day
    facts: the days read are brought up to date, then the facts are read instead of
    the events."""
    spec = WindowSpec(model.short_window_days, model.long_window_days,
                      model.engagement_window_days, model.top_providers)
    derived = getattr(events, "derived_tables", None)
    if derived is None:
        with events.reading() as table:
            return window_counts_table(table, days, account_ids, spec)
    first = min(days) - dt.timedelta(days=model.engagement_window_days - 1)
    with derived() as cursor:
        DayFactCache(cursor).refresh(first, max(days))
    with derived(exclusive=False) as cursor:
        return window_counts_table(cached_facts(cursor), days, account_ids, spec)


def iter_results(
    events: EventStore,
    model: ScoringModel,
    accounts: Sequence[Account],
    days: Sequence[Day],
    *,
    computed_at: dt.datetime,
    chunk: int = RESULTS_PER_CHUNK,
    days_per_pass: int | None = None,
) -> Iterator[list[DayResult]]:
    """Results of every (account, day) pair asked for, from the stored events, in lists
    of at most ``chunk``.

    The days are counted in passes of ``days_per_pass`` days (default: all in one),
    each pass one aggregation whose counts are kept as an Arrow table; each list is
    unpacked and scored when the caller asks for it, so a backfill of many days
    holds one list of results (with their explanations) at a time. With several
    passes, the next pass is counted in a background thread while the caller takes
    the current pass's results (the aggregation leaves a core partly idle; scoring
    is Python on one). The cyclic garbage collector is paused from the first list
    to the last (``_gc_paused``), including while the caller handles each list."""
    if not accounts or not days:
        return
    by_id = {a.user_id: a for a in accounts}
    # paused from the first chunk to the last (or until the caller closes the
    # generator): resumed between chunks, the collector's first pass traversed each
    # chunk's fresh results, 3 s of a 14-day pass's 13 s of Python (50M store)
    with _gc_paused():
        for counted in count_in_passes(events, model, sorted(by_id), days,
                                       days_per_pass=days_per_pass):
            for counts in window_counts_in_chunks(counted, chunk):
                yield [
                    to_day_result(score_day(c, model,
                                            open_tracking=by_id[c.account_id].open_tracking),
                                  c.account_id, c.day, computed_at)
                    for c in counts
                ]


def count_in_passes(events: EventStore, model: ScoringModel, account_ids: Sequence[int],
                    days: Sequence[Day], *,
                    days_per_pass: int | None = None) -> Iterator[pa.Table | None]:
    """The window counts of ``account_ids`` x ``days``, one Arrow table per pass of
    ``days_per_pass`` days (default: one pass), in day order. With several passes the
    next one is counted in a background thread while the caller uses the current."""
    if not account_ids or not days:
        return
    ordered = sorted(set(days))
    size = max(days_per_pass or len(ordered), 1)
    passes = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    if len(passes) == 1:
        yield _count_days(events, model, account_ids, passes[0])
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqscore-count") as pool:
        pending = pool.submit(_count_days, events, model, account_ids, passes[0])
        for i in range(len(passes)):
            counted = pending.result()
            if i + 1 < len(passes):
                pending = pool.submit(_count_days, events, model, account_ids, passes[i + 1])
            yield counted


def compute_results(
    events: EventStore,
    model: ScoringModel,
    accounts: Sequence[Account],
    days: Sequence[Day],
    *,
    computed_at: dt.datetime,
) -> list[DayResult]:
    """Results of every (account, day) pair asked for, from the stored events (all at
    once: for many days, ``iter_results`` holds less)."""
    return [result for scored in iter_results(events, model, accounts, days,
                                              computed_at=computed_at)
            for result in scored]


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
    ) -> None:
        self._state = state
        self._events = events
        self._model = model
        self._clock = clock
        self._batch_size = batch_size
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
                                  [j.day for j in claimed], computed_at=self._clock.now())
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

