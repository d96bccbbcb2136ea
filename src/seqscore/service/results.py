"""Results from stored events: count, score, hand out (``seqscore compute``, the worker).

The counts come from the window aggregation (``seqscore.compute``), through the
day-fact cache when the event store keeps one; each pass (a run of days, and for
a backfill a group of accounts: ``seqscore.compute.passes``) is one aggregation
kept as an Arrow table, unpacked and scored a chunk at a time.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pyarrow as pa

from seqscore.compute.aggregate import (
    EXPAND_MAX_DAYS,
    WindowSpec,
    window_counts_in_chunks,
    window_counts_table,
)
from seqscore.compute.daycache import DayFactCache, cached_facts
from seqscore.compute.passes import backfill_groups, day_runs
from seqscore.scoring import ScoringModel, score_day, to_day_result
from seqscore.storage.events import EventStore
from seqscore.types import Account, Day, DayResult

#: Results scored per chunk by ``iter_results``: what a caller holds at once.
RESULTS_PER_CHUNK = 10_000
#: Recipient-day facts one aggregation pass reads at most, by default (setting
#: ``compute_facts_per_pass``; ``seqscore.compute.passes`` says why passes).
FACTS_PER_PASS = 2_500_000


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


def _pass_plans(events: EventStore, model: ScoringModel, account_ids: Sequence[int],
                days: Sequence[Day], days_per_pass: int | None,
                facts_per_pass: int | None) -> Iterator[Callable[[], pa.Table | None]]:
    """One callable per pass of ``account_ids`` x ``days``, in order, each returning that
    pass's window counts as an Arrow table (see ``window_counts_table``): runs of
    days, each cut into account groups (``seqscore.compute.passes``). A store that
    keeps derived tables (DuckDB) keeps the day facts: when the plan reaches a run,
    the run's days are brought up to date, and its passes read the facts instead of
    the events. A run of more than ``EXPAND_MAX_DAYS`` days (the ``timeline``
    strategy, a backfill) is cut into groups of about ``facts_per_pass`` facts; a
    shorter run (the nightly day) is one pass: its ``expand`` strategy held the 50M
    store's one day in 1.2 GB without spilling, and cutting it into 8 passes cost
    0.7 s more. Other stores count each run in one pass."""
    spec = WindowSpec(model.short_window_days, model.long_window_days,
                      model.engagement_window_days, model.top_providers)
    derived = getattr(events, "derived_tables", None)
    for run in day_runs(days, days_per_pass):
        if derived is None:
            yield functools.partial(_count_events, events, run, account_ids, spec)
            continue
        first = min(run) - dt.timedelta(days=model.engagement_window_days - 1)
        groups = [list(account_ids)]
        with derived() as cursor:
            cache = DayFactCache(cursor)
            cache.refresh(first, max(run))
            if len(run) > EXPAND_MAX_DAYS and facts_per_pass:
                volumes = cache.volumes(first, max(run))
                # each account-day asked is a row out, facts or not
                weights = {a: volumes.get(a, 0) + len(run) for a in account_ids}
                groups = backfill_groups(account_ids, weights, facts_per_pass)
        for group in groups:
            yield functools.partial(_count_cached, derived, run, group, spec)


def _count_events(events: EventStore, days: Sequence[Day], account_ids: Sequence[int],
                  spec: WindowSpec) -> pa.Table | None:
    with events.reading() as table:
        return window_counts_table(table, days, account_ids, spec)


def _count_cached(derived: Callable[..., AbstractContextManager[Any]], days: Sequence[Day],
                  account_ids: Sequence[int], spec: WindowSpec) -> pa.Table | None:
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
    facts_per_pass: int | None = FACTS_PER_PASS,
) -> Iterator[list[DayResult]]:
    """Results of every (account, day) pair asked for, from the stored events, in lists
    of at most ``chunk``.

    The counts come in passes (``count_in_passes``: runs of ``days_per_pass`` days,
    default all in one, cut into account groups of about ``facts_per_pass`` facts),
    each pass one aggregation whose counts are kept as an Arrow table; each list is
    unpacked and scored when the caller asks for it, so a backfill of many days
    holds one list of results (with their explanations) at a time. The next pass is
    counted in a background thread while the caller takes the current pass's
    results (scoring is Python on one core, the aggregation DuckDB's). The cyclic
    garbage collector is paused from the first list to the last (``_gc_paused``),
    including while the caller handles each list."""
    if not accounts or not days:
        return
    by_id = {a.user_id: a for a in accounts}
    # paused from the first chunk to the last (or until the caller closes the
    # generator): resumed between chunks, the collector's first pass traversed each
    # chunk's fresh results, 3 s of a 14-day pass's 13 s of Python (50M store)
    with _gc_paused():
        for counted in count_in_passes(events, model, sorted(by_id), days,
                                       days_per_pass=days_per_pass,
                                       facts_per_pass=facts_per_pass):
            for counts in window_counts_in_chunks(counted, chunk):
                yield [
                    to_day_result(score_day(c, model,
                                            open_tracking=by_id[c.account_id].open_tracking),
                                  c.account_id, c.day, computed_at)
                    for c in counts
                ]


def count_in_passes(events: EventStore, model: ScoringModel, account_ids: Sequence[int],
                    days: Sequence[Day], *, days_per_pass: int | None = None,
                    facts_per_pass: int | None = FACTS_PER_PASS) -> Iterator[pa.Table | None]:
    """The window counts of ``account_ids`` x ``days``, one Arrow table per pass: runs of
    ``days_per_pass`` days (default: all days in one run), a backfill's runs cut into
    groups of accounts holding at most about ``facts_per_pass`` recipient-day facts
    (None or 0: one group; see ``_pass_plans``), in (run, account) order. With several
    passes each is counted in a background thread, the next one while the caller uses
    the current; a single pass (the worker's usual batch) is counted in the calling
    thread, which needs none."""
    if not account_ids or not days:
        return
    plans = _pass_plans(events, model, sorted(set(account_ids)), days, days_per_pass,
                        facts_per_pass)
    first = next(plans, None)
    if first is None:
        return
    upcoming = next(plans, None)
    if upcoming is None:
        yield first()
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqscore-count") as pool:
        pending = pool.submit(first)
        for plan in itertools.chain([upcoming], plans):
            counted = pending.result()
            pending = pool.submit(plan)
            yield counted
        yield pending.result()


def compute_results(
    events: EventStore,
    model: ScoringModel,
    accounts: Sequence[Account],
    days: Sequence[Day],
    *,
    computed_at: dt.datetime,
    facts_per_pass: int | None = FACTS_PER_PASS,
) -> list[DayResult]:
    """Results of every (account, day) pair asked for, from the stored events (all at
    once: for many days, ``iter_results`` holds less)."""
    return [result for scored in iter_results(events, model, accounts, days,
                                              computed_at=computed_at,
                                              facts_per_pass=facts_per_pass)
            for result in scored]
