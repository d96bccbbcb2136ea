"""The DuckDB event store: all-or-nothing appends, batch keys, compaction, retention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from seqscore.event_schema import EVENT_SCHEMA
from seqscore.storage.duckdb_events import (
    DuckDBEventStore,
    EventStoreBusy,
    delete_copies,
    find_copies,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)


def batch(ids: list[str], *, account: int = 1, day: dt.date = dt.date(2026, 11, 19),
          ingested_at: dt.datetime = T0) -> pa.Table:
    ts = dt.datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    rows = [{"account_id": account, "event_id": i, "message_id": None, "event": "delivered",
             "ts": ts, "day": day, "recipient": "r", "domain": "d", "provider": "p",
             "bounce_type": None, "bounce_class": None, "status": None, "machine_open": False,
             "ingested_at": ingested_at, "raw": None} for i in ids]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


@pytest.fixture
def store(tmp_path: Path):
    opened = DuckDBEventStore(tmp_path / "events.duckdb")
    yield opened
    opened.close()


def ids(store: DuckDBEventStore) -> list[str]:
    return [r[0] for r in store.sql("SELECT event_id FROM events ORDER BY event_id, ingested_at")]


def test_a_keyed_batch_is_stored_once_however_often_it_is_appended(store):
    first = store.append(batch(["a", "b"]), batch_key=b"k" * 16)
    again = store.append(batch(["a", "b"]), batch_key=b"k" * 16)
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert ids(store) == ["a", "b"]


def test_unkeyed_batches_are_stored_as_given(store):
    store.append(batch(["a"]))
    store.append(batch(["a"]))
    assert ids(store) == ["a", "a"]


def test_append_many_is_one_transaction_and_recognises_repeats_within_it(store):
    outcomes = store.append_many([(batch(["a"]), b"1" * 16), (batch(["b"]), b"2" * 16),
                                  (batch(["a"]), b"1" * 16), (batch(["c"]), None)])
    assert [(o.stored, o.duplicates) for o in outcomes] == [(1, 0), (1, 0), (0, 1), (1, 0)]
    assert ids(store) == ["a", "b", "c"]


def test_a_failing_group_stores_nothing_at_all(store):
    broken = batch(["x"]).set_column(1, "event_id", pa.array([None], pa.string()))
    with pytest.raises(Exception):
        store.append_many([(batch(["a"]), b"1" * 16), (broken, b"2" * 16)])
    assert ids(store) == []
    assert store.sql("SELECT count(*) FROM batches") == [(0,)]
    assert store.append(batch(["a"]), batch_key=b"1" * 16).stored == 1  # its key is free


def test_empty_batches_record_no_key(store):
    assert store.append(batch([]), batch_key=b"e" * 16).stored == 0
    assert store.sql("SELECT count(*) FROM batches") == [(0,)]


def test_forgotten_batch_keys_let_a_late_retry_in(store):
    old = T0 - dt.timedelta(days=8)
    store.append(batch(["a"], ingested_at=old), batch_key=b"1" * 16)
    store.append(batch(["b"]), batch_key=b"2" * 16)
    assert store.forget_batches_before(T0 - dt.timedelta(days=7)) == 1
    assert store.append(batch(["a"]), batch_key=b"1" * 16).stored == 1
    assert store.append(batch(["b"]), batch_key=b"2" * 16).duplicates == 1


def test_compaction_keeps_the_first_copy_of_each_event(store):
    early = T0 - dt.timedelta(hours=1)
    store.append(batch(["a", "b"], ingested_at=early))
    store.append(batch(["b", "c"]))
    store.append(batch(["b"], account=2))
    assert store.compact() == 1
    rows = store.sql("SELECT account_id, event_id, ingested_at FROM events "
                     "ORDER BY account_id, event_id")
    assert [(a, e) for a, e, _ in rows] == [(1, "a"), (1, "b"), (1, "c"), (2, "b")]
    assert rows[1][2] == early


def test_incremental_compaction_looks_only_at_days_that_received_events(store):
    old_day, new_day = dt.date(2026, 11, 1), dt.date(2026, 11, 19)
    long_ago = T0 - dt.timedelta(days=10)
    store.append(batch(["o", "o"], day=old_day, ingested_at=long_ago))
    store.append(batch(["n"], day=new_day, ingested_at=long_ago))
    store.append(batch(["n"], day=new_day))
    assert store.compact(ingested_since=T0 - dt.timedelta(hours=1)) == 1
    assert ids(store) == ["n", "o", "o"]  # the old day's copies wait for a full compaction
    assert store.compact() == 1
    assert ids(store) == ["n", "o"]


def test_copies_are_found_beside_the_writer_and_deleted_as_it(store):
    """The scheduler's pass looks for copies without holding the writer, so appends
    go on meanwhile; the deletion then sees every row of the copied events as of
    its own time, keeps the first-ingested one and leaves new copies of other
    events to the next pass."""
    early = T0 - dt.timedelta(hours=2)
    store.append(batch(["a", "b"], ingested_at=early))
    store.append(batch(["a"]))
    with store._cursor() as cur:  # the first phase of compact(), as it runs it
        copied = find_copies(cur, T0 - dt.timedelta(hours=1))
    assert copied.to_pylist() == [{"account_id": 1, "event_id": "a",
                                   "day": dt.date(2026, 11, 19)}]
    store.append(batch(["a", "b"], ingested_at=T0 + dt.timedelta(minutes=1)))  # meanwhile
    with store._write_lock, store._cursor() as cur:
        assert delete_copies(cur, copied) == 2  # both later copies of "a"
    assert ids(store) == ["a", "b", "b"]
    assert store.sql("SELECT ingested_at FROM events WHERE event_id = 'a'") == [(early,)]
    assert store.compact(ingested_since=T0 - dt.timedelta(hours=1)) == 1  # b's, next pass
    assert ids(store) == ["a", "b"]


def test_delete_before_removes_old_days(store):
    store.append(batch(["old"], day=dt.date(2026, 7, 1)))
    store.append(batch(["new"], day=dt.date(2026, 11, 19)))
    assert store.delete_before(dt.date(2026, 8, 1)) == 1
    assert ids(store) == ["new"]


def test_a_second_process_gets_event_store_busy_naming_the_holder(tmp_path: Path):
    import subprocess
    import sys

    path = tmp_path / "events.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from seqscore.storage.duckdb_events import DuckDBEventStore;"
         f"s = DuckDBEventStore({str(path)!r}); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(EventStoreBusy, match=rf"in use by process {holder.pid}"):
            DuckDBEventStore(path)
    finally:
        holder.kill()
        holder.wait()
    DuckDBEventStore(path).close()  # free again once the holder is gone
