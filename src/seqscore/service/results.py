"""Results from stored events: count, score, hand out (``seqscore compute``, the worker).

The counts come from the window aggregation (``seqscore.compute``), through the
day-fact cache when the event store keeps one; each pass of days is one
aggregation kept as an Arrow table, unpacked and scored a chunk at a time.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pyarrow as pa

from seqscore.compute.aggregate import (
    WindowSpec,
    window_counts_in_chunks,
    window_counts_table,
)
from seqscore.compute.daycache import DayFactCache, cached_facts
from seqscore.scoring import ScoringModel, score_day, to_day_result
from seqscore.storage.events import EventStore
from seqscore.types import Account, Day, DayResult

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
