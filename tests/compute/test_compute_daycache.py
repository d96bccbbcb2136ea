"""The day-fact cache on a real DuckDB event store file: results from cached facts equal
the spec's reference counter and the aggregation over events, through late events,
compaction and retention; the compiled (parameter-table) form equals the plain one."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from test_compute_aggregate import DAY, SMALL, D, ev, events_table, random_rows, reference

from seqscore.compute import WindowSpec, compute_window_counts, window_counts_expr
from seqscore.compute.daycache import (
    DAYS_TABLE,
    ENCODED,
    FACT_TABLES,
    FORMAT,
    FORMAT_TABLE,
    KEYS_TABLES,
    DayFactCache,
    cached_facts,
)
from seqscore.event_schema import EVENT_SCHEMA
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore.types import WindowCounts

KW: dict[str, Any] = {"short_window_days": SMALL.short_days, "long_window_days": SMALL.long_days,
                      "engagement_window_days": SMALL.engagement_days,
                      "top_providers": SMALL.top_providers}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb", memory_limit="256MB", threads=1)
    yield opened
    opened.close()


def cached(store: DuckDBEventStore, days: list[dt.date], accounts: list[int] | None,
           **kwargs: Any) -> list[WindowCounts]:
    """What ``compute_results`` does: refresh the days read, then count from the facts."""
    back = kwargs.get("engagement_window_days", 90) - 1
    with store.derived_tables() as cur:
        DayFactCache(cur).refresh(min(days) - dt.timedelta(days=back), max(days))
    with store.derived_tables(exclusive=False) as cur:
        return compute_window_counts(cached_facts(cur), days, accounts, **kwargs)


def direct(store: DuckDBEventStore, days: list[dt.date], accounts: list[int] | None,
           **kwargs: Any) -> list[WindowCounts]:
    with store.reading() as table:
        return compute_window_counts(table, days, accounts, **kwargs)


def fact_days(store: DuckDBEventStore) -> list[dt.date]:
    return [dt.date(1970, 1, 1) + dt.timedelta(days=r[0])
            for r in store.sql(f"SELECT dn FROM {DAYS_TABLE} ORDER BY dn")]


@pytest.mark.parametrize("strategy", ["expand", "timeline"])
def test_cached_facts_equal_the_reference_and_the_events(store: DuckDBEventStore,
                                                         strategy: str) -> None:
    rng = random.Random(7)
    rows = random_rows(rng, 300, span_days=12)
    rows += [{**r, "ingested_at": r["ingested_at"] + DAY} for r in rows[:40]]  # copies
    store.append(events_table(rows))
    days = [D - k * DAY for k in (0, 1, 5)]
    for accounts in (None, [1, 3]):
        expected = reference(rows, days, accounts, SMALL)
        assert cached(store, days, accounts, strategy=strategy, **KW) == expected
        assert direct(store, days, accounts, strategy=strategy, **KW) == expected


def test_store_schema_with_not_null_columns_unions(store: DuckDBEventStore) -> None:
    """Events read from the store's own table (NOT NULL columns) or from an Arrow table
    of ``EVENT_SCHEMA`` (non-nullable fields) union with the zero rows of the spine."""
    rows = [ev("processed"), ev("delivered"), ev("open")]
    store.append(events_table(rows))
    expected = reference(rows, [D], [1, 2], WindowSpec())
    assert direct(store, [D], [1, 2]) == expected
    memtable = ibis.memtable(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA))
    for strategy in ("expand", "timeline"):
        assert compute_window_counts(memtable, [D], [1, 2], strategy=strategy) == expected


def test_late_event_rebuilds_only_its_day(store: DuckDBEventStore) -> None:
    rows = [ev("processed", D - k * DAY, recipient=f"r{k}") for k in range(5)]
    store.append(events_table(rows))
    with store.derived_tables() as cur:
        first = DayFactCache(cur).refresh(D - 4 * DAY, D)
        assert first.built == tuple(D - k * DAY for k in range(4, -1, -1))
        assert DayFactCache(cur).refresh(D - 4 * DAY, D).built == ()  # nothing changed
    late = [ev("processed", D - 3 * DAY, recipient="late"), ev("open", D - 3 * DAY,
                                                               recipient="late")]
    store.append(events_table(late))
    with store.derived_tables() as cur:
        assert DayFactCache(cur).refresh(D - 4 * DAY, D).built == (D - 3 * DAY,)
    days = [D - k * DAY for k in range(4)]
    assert cached(store, days, [1], **KW) == reference(rows + late, days, [1], SMALL)


def test_late_events_then_compaction_then_retention(store: DuckDBEventStore) -> None:
    rng = random.Random(11)
    rows = random_rows(rng, 200, span_days=12)
    store.append(events_table(rows))
    days = [D - k * DAY for k in range(0, 10, 3)]
    assert cached(store, days, None, **KW) == reference(rows, days, None, SMALL)
    # late events, some copies of stored ones, for days already cached
    late = random_rows(rng, 60, span_days=12)
    copies = [{**r, "ingested_at": r["ingested_at"] + 2 * DAY} for r in rows[:30]]
    store.append(events_table(late + copies))
    assert cached(store, days, None, **KW) == reference(rows + late, days, None, SMALL)
    assert store.compact() == 30
    assert cached(store, days, None, **KW) == reference(rows + late, days, None, SMALL)
    # retention drops whole days: their facts go with them
    cutoff = D - 5 * DAY
    store.delete_before(cutoff)
    kept = [r for r in rows + late if r["day"] >= cutoff]
    assert cached(store, [D], None, **KW) == reference(kept, [D], None, SMALL)
    assert min(fact_days(store)) >= cutoff
    for table in FACT_TABLES.values():
        assert store.sql(f"SELECT count(*) FROM {table} WHERE dn < ?",
                         [(cutoff - dt.date(1970, 1, 1)).days])[0][0] == 0
    # the dictionaries keep exactly the texts the remaining facts refer to
    for name, column in ENCODED.items():
        referenced = store.sql(f"SELECT count(DISTINCT {column}) FROM {FACT_TABLES[name]}")
        assert store.sql(f"SELECT count(*) FROM {KEYS_TABLES[column]}") == referenced


def test_encoded_keys_are_exact_and_stable(store: DuckDBEventStore) -> None:
    """Recipients and message ids are kept as dictionary ids: one id per text, never
    two texts on one id, and an id, once given, keeps its text across refreshes."""
    rng = random.Random(5)
    rows = random_rows(rng, 200, span_days=12)
    store.append(events_table(rows[:120]))
    cached(store, [D], None, **KW)
    first = {c: dict(store.sql(f"SELECT key, id FROM {t}")) for c, t in KEYS_TABLES.items()}
    store.append(events_table(rows[120:]))
    assert cached(store, [D], None, **KW) == reference(rows, [D], None, SMALL)
    for column, table in KEYS_TABLES.items():
        now = dict(store.sql(f"SELECT key, id FROM {table}"))
        assert len(set(now.values())) == len(now)  # one id per text
        assert all(now[k] == v for k, v in first[column].items())  # ids never move
    texts = {r["recipient"] for r in rows if r["recipient"] is not None
             and r["event"] in ("processed", "open", "click")}
    assert set(dict(store.sql(f"SELECT key, id FROM {KEYS_TABLES['recipient']}"))) <= texts


def test_a_cache_of_an_older_layout_is_rebuilt(store: DuckDBEventStore) -> None:
    """A data dir written by an earlier version (text keys, no format row) is dropped and
    rebuilt from the events, not misread."""
    rng = random.Random(8)
    rows = random_rows(rng, 150, span_days=12)
    store.append(events_table(rows))
    with store.derived_tables() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {FORMAT_TABLE}")
        cur.execute(f"DROP TABLE IF EXISTS {FACT_TABLES['recipients']}")
        cur.execute(f"CREATE TABLE {FACT_TABLES['recipients']} (account_id BIGINT, "
                    "recipient VARCHAR, dn BIGINT, sent BIGINT, engaged BIGINT)")
        cur.execute(f"INSERT INTO {FACT_TABLES['recipients']} VALUES (1, 'stale', 1, 1, 1)")
    assert cached(store, [D], None, **KW) == reference(rows, [D], None, SMALL)
    assert store.sql(f"SELECT format FROM {FORMAT_TABLE}") == [(FORMAT,)]
    assert store.sql("SELECT data_type FROM information_schema.columns WHERE table_name = ? "
                     "AND column_name = 'recipient'", [FACT_TABLES["recipients"]]) == [("BIGINT",)]


def test_compiled_form_equals_the_plain_expression(store: DuckDBEventStore) -> None:
    """On DuckDB the aggregation runs from SQL compiled once with parameter tables; the
    same definition with in-memory tables (as Spark runs it) gives the same rows."""
    rng = random.Random(3)
    rows = random_rows(rng, 150, span_days=12)
    store.append(events_table(rows))
    for days in ([D], [D - 2 * DAY, D], [D - k * DAY for k in range(6)]):
        for accounts in (None, [2, 1]):
            compiled = direct(store, days, accounts, **KW)
            spec = WindowSpec(SMALL.short_days, SMALL.long_days, SMALL.engagement_days,
                              SMALL.top_providers)
            with store.reading() as table:
                plain = window_counts_expr(table, days, accounts, spec).to_pyarrow()
            got = sorted((r["account_id"], r["day"]) for r in plain.to_pylist())
            assert got == [(c.account_id, c.day) for c in compiled]
            assert compiled == reference(rows, days, accounts, SMALL)
            # plain ints, as scoring's Fractions need (Decimal(3) == 3 would hide it)
            for c in compiled:
                values = [*astuple(c)[2:-1], *(v for p in c.providers for v in astuple(p)[1:])]
                assert {type(v) for v in values} <= {int}, c
