"""``compute_results`` on the embedded DuckDB store reads the day-fact cache: it builds
the facts of the days it reads, keeps them, and rebuilds a day when late events
arrive for it; its results always equal those computed straight from the events."""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compute"))
from test_compute_aggregate import DAY, D, ev, events_table, random_rows

from seqscore.compute.daycache import DAYS_TABLE, FACT_TABLES
from seqscore.scoring import DEFAULT_MODEL
from seqscore.service.results import compute_results, iter_results
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore.types import Account, AccountKind, DayResult

NOW = dt.datetime(2026, 7, 2, tzinfo=dt.UTC)
ACCOUNTS = [Account(i, f"a{i}", f"a{i}@example.com", None, AccountKind.SUBUSER, True, False,
                    NOW) for i in (1, 2, 3)]


class EventsOnly:
    """The same store seen without its derived tables: results straight from events."""

    def __init__(self, store: DuckDBEventStore) -> None:
        self._store = store

    def reading(self) -> AbstractContextManager[Any]:
        return self._store.reading()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb", memory_limit="256MB", threads=1)
    yield opened
    opened.close()


def results(events: Any, days: list[dt.date]) -> list[DayResult]:
    return compute_results(events, DEFAULT_MODEL, ACCOUNTS, days, computed_at=NOW)


def cached_days(store: DuckDBEventStore) -> int:
    return int(store.sql(f"SELECT count(*) FROM {DAYS_TABLE}")[0][0])


def test_results_from_the_cache_follow_late_events(store: DuckDBEventStore) -> None:
    rng = random.Random(5)
    store.append(events_table(random_rows(rng, 400, span_days=40)))
    first = results(store, [D])
    assert first == results(EventsOnly(store), [D])
    assert cached_days(store) == 40
    assert all(store.sql(f"SELECT count(*) FROM {t}")[0][0] > 0 for t in FACT_TABLES.values())
    # a late delivery and open for an older day, and a new account's first events
    late = [ev("processed", D - 3 * DAY, account=1, recipient="late"),
            ev("delivered", D - 3 * DAY, account=1, recipient="late"),
            ev("open", D - 3 * DAY, account=1, recipient="late", message="late-m"),
            ev("processed", D - 10 * DAY, account=3, recipient="new")]
    store.append(events_table(late))
    again = results(store, [D])
    assert again == results(EventsOnly(store), [D])
    by_account = {r.account_id: r for r in again}
    before = {r.account_id: r for r in first}
    assert by_account[1].counts["processed_long"] == before[1].counts["processed_long"] + 1
    assert by_account[3].counts["processed_long"] == before[3].counts["processed_long"] + 1
    # a backfill of several days reads the same cache
    days = [D - k * DAY for k in range(6)]
    assert results(store, days) == results(EventsOnly(store), days)


def test_iter_results_hands_out_bounded_chunks_of_the_same_results(
        store: DuckDBEventStore) -> None:
    """What ``seqscore compute`` writes: the results of a backfill in lists of at most
    ``chunk``, together exactly ``compute_results``'; the collector is paused while
    they are handed out and resumed when the generator ends or is closed."""
    import gc

    rng = random.Random(9)
    store.append(events_table(random_rows(rng, 300, span_days=20)))
    days = [D - k * DAY for k in range(5)]
    whole = results(store, days)
    chunks = list(iter_results(store, DEFAULT_MODEL, ACCOUNTS, days, computed_at=NOW, chunk=4))
    assert [len(c) for c in chunks] == [4] * (len(whole) // 4) + (
        [len(whole) % 4] if len(whole) % 4 else [])
    assert [r for c in chunks for r in c] == whole
    assert gc.isenabled()
    gen = iter_results(store, DEFAULT_MODEL, ACCOUNTS, days, computed_at=NOW, chunk=4)
    next(gen)
    assert not gc.isenabled()  # paused from the first chunk to the last ...
    gen.close()
    assert gc.isenabled()  # ... and resumed when the caller stops early
    assert list(iter_results(store, DEFAULT_MODEL, [], days, computed_at=NOW)) == []


def test_iter_results_in_passes_counts_ahead_and_gives_the_same_results(
        store: DuckDBEventStore) -> None:
    """``seqscore compute --days-per-pass``: the days counted a few at a time (the next
    pass in a background thread) give the results of one pass over all of them; a
    failure while counting ahead reaches the caller."""
    rng = random.Random(10)
    store.append(events_table(random_rows(rng, 300, span_days=20)))
    days = [D - k * DAY for k in range(7)]
    whole = sorted(results(store, days), key=lambda r: (r.account_id, r.day))
    in_passes = [r for c in iter_results(store, DEFAULT_MODEL, ACCOUNTS, days, computed_at=NOW,
                                         chunk=5, days_per_pass=2) for r in c]
    assert sorted(in_passes, key=lambda r: (r.account_id, r.day)) == whole
    # pass by pass: every day of a pass comes before any day of the next
    firsts = [sorted(days)[i:i + 2] for i in range(0, 7, 2)]
    assert [next(k for k, p in enumerate(firsts) if r.day in p) for r in in_passes] == sorted(
        next(k for k, p in enumerate(firsts) if r.day in p) for r in in_passes)

    class Broken(EventsOnly):
        def reading(self) -> AbstractContextManager[Any]:
            raise RuntimeError("the events are gone")

    with pytest.raises(RuntimeError, match="the events are gone"):
        list(iter_results(Broken(store), DEFAULT_MODEL, ACCOUNTS, days, computed_at=NOW,
                          days_per_pass=3))


def test_a_backfill_in_account_groups_gives_the_results_of_one_pass(
        store: DuckDBEventStore) -> None:
    """A backfill's accounts are counted in groups of a bounded number of facts, each its
    own aggregation; the results are those of one pass over every account. The nightly
    (at most EXPAND_MAX_DAYS days) stays one pass whatever the budget."""
    from seqscore.compute.aggregate import EXPAND_MAX_DAYS
    from seqscore.service.results import count_in_passes

    rng = random.Random(12)
    store.append(events_table(random_rows(rng, 400, span_days=20)))
    store.append(events_table([ev("processed", D - k * DAY, account=3, recipient=f"x{k}")
                               for k in range(10)]))
    days = [D - k * DAY for k in range(EXPAND_MAX_DAYS + 3)]
    ids = [a.user_id for a in ACCOUNTS]
    whole = count_in_passes(store, DEFAULT_MODEL, ids, days, facts_per_pass=None)
    assert len(list(whole)) == 1
    grouped = list(count_in_passes(store, DEFAULT_MODEL, ids, days, facts_per_pass=1))
    assert len(grouped) == len(ids)  # every account over a budget of one fact: alone
    assert [t.column("account_id").unique().to_pylist() for t in grouped] == [[i] for i in ids]
    in_groups = [r for c in iter_results(store, DEFAULT_MODEL, ACCOUNTS, days, computed_at=NOW,
                                         facts_per_pass=1) for r in c]
    assert in_groups == sorted(results(store, days), key=lambda r: (r.account_id, r.day))
    assert in_groups == results(EventsOnly(store), days)
    nightly = list(count_in_passes(store, DEFAULT_MODEL, ids, days[:EXPAND_MAX_DAYS],
                                   facts_per_pass=1))
    assert len(nightly) == 1
