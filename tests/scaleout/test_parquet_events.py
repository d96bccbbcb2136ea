"""The Parquet event lake: the event-store contract on every engine, then what only the
lake promises (many writers, atomic files, compaction beside readers, retention)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from seqscore.compute import compute_window_counts
from seqscore.event_schema import EVENT_SCHEMA
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore.storage.events import open_event_store
from seqscore.storage.parquet_events import FILE_SCHEMA, ParquetEventStore, copy_events
from seqscore_testing import TEST_NOW

DAY = dt.date(2026, 11, 18)


def table(n: int, *, day: dt.date = DAY, account: int = 1, first: int = 0,
          ingested: dt.datetime = TEST_NOW) -> pa.Table:
    """``n`` delivered events of ``account`` on ``day``, event ids ``e<first>``..."""
    ts = dt.datetime.combine(day, dt.time(12), dt.UTC)
    rows = [{
        "account_id": account, "event_id": f"e{first + i}", "message_id": f"m{first + i}",
        "event": "delivered", "ts": ts, "day": day, "recipient": f"r{i % 7}",
        "domain": "gmail.com", "provider": "gmail", "bounce_type": None,
        "bounce_class": None, "status": None, "machine_open": False, "ingested_at": ingested,
        "raw": None} for i in range(n)]
    return pa.Table.from_pylist(rows, EVENT_SCHEMA)


def rows_of(store) -> list[tuple]:
    with store.reading() as events:
        t = events.select("account_id", "event_id", "day").to_pyarrow()
    return sorted(zip(*(t[c].to_pylist() for c in t.column_names), strict=True))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["duckdb", "parquet", "parquet-object-store"])
def store(request, tmp_path):
    """An empty event store of each kind: "parquet-object-store" drives the lake through
    a non-local pyarrow filesystem (no rename, no fsync, DuckDB reads via Arrow)."""
    if request.param == "duckdb":
        opened = DuckDBEventStore(tmp_path / "events.duckdb")
    elif request.param == "parquet":
        opened = ParquetEventStore(str(tmp_path / "lake"))
    else:
        (tmp_path / "bucket").mkdir()
        remote = pafs.SubTreeFileSystem(str(tmp_path / "bucket"), pafs.LocalFileSystem())
        opened = ParquetEventStore("lake", filesystem=remote)
        assert not opened.local
    yield opened
    opened.close()


# -- the contract, on every engine ------------------------------------------------------------

def test_appended_events_are_read_back(store):
    assert store.append(table(3)).stored == 3
    assert store.append(table(2, day=DAY - dt.timedelta(days=1), first=10)).stored == 2
    assert store.count() == 5
    assert rows_of(store) == sorted(
        [(1, f"e{i}", DAY) for i in range(3)]
        + [(1, f"e{10 + i}", DAY - dt.timedelta(days=1)) for i in range(2)])


def test_a_retried_batch_is_recognised_by_its_key(store):
    assert store.append(table(3), batch_key=b"k" * 16).stored == 3
    again = store.append(table(3), batch_key=b"k" * 16)
    assert (again.stored, again.duplicates) == (0, 3)
    group = store.append_many([(table(2, first=5), b"n" * 16), (table(2, first=5), b"n" * 16)])
    assert [(o.stored, o.duplicates) for o in group] == [(2, 0), (0, 2)]
    assert store.count() == 5


def test_forgotten_batch_keys_let_a_retry_in_and_reads_count_it_once(store):
    store.append(table(3), batch_key=b"k" * 16)
    assert store.forget_batches_before(TEST_NOW + dt.timedelta(days=2)) == 1
    assert store.append(table(3), batch_key=b"k" * 16).stored == 3
    assert store.count() == 6
    with store.reading() as events:
        counts = compute_window_counts(events, [DAY], [1])
    assert counts[0].delivered_long == 3


def test_days_with_events_and_retention(store):
    for back in (0, 1, 5):
        store.append(table(2, day=DAY - dt.timedelta(days=back), first=10 * back))
    assert store.days_with_events(1) == [DAY - dt.timedelta(days=d) for d in (5, 1, 0)]
    assert store.days_with_events(2) == []
    assert store.delete_before(DAY - dt.timedelta(days=1)) == 2
    assert store.days_with_events(1) == [DAY - dt.timedelta(days=1), DAY]


def test_compaction_keeps_one_copy_of_each_event_and_no_result_changes(store):
    store.append(table(4))
    store.append(table(4, ingested=TEST_NOW + dt.timedelta(hours=1)))  # a retry, other key
    store.append(table(2, first=4))
    with store.reading() as events:
        before = compute_window_counts(events, [DAY], [1])
    assert store.compact() == 4
    assert store.count() == 6
    with store.reading() as events:
        assert compute_window_counts(events, [DAY], [1]) == before
    assert before[0].delivered_long == 6


def test_an_empty_store_reads_as_an_empty_table(store):
    with store.reading() as events:
        assert events.count().to_pyarrow().as_py() == 0
        assert compute_window_counts(events, [DAY], [1])[0].delivered_long == 0


# -- what only the lake promises ----------------------------------------------------------------

def test_lake_files_are_partitioned_by_day_without_the_day_column(tmp_path):
    lake = ParquetEventStore(str(tmp_path / "lake"))
    lake.append(pa.concat_tables([table(2), table(1, day=DAY - dt.timedelta(days=3),
                                                   first=9)]))
    files = sorted(Path(tmp_path / "lake" / "events").rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["day=2026-11-15", "day=2026-11-18"]
    assert all(f.name.startswith("part-") for f in files)
    assert pq.read_schema(files[0]).names == FILE_SCHEMA.names
    assert not list(Path(tmp_path / "lake").rglob("*.tmp"))


def _writer(root: str, writer: int, batches: int) -> None:
    lake = ParquetEventStore(root)
    for b in range(batches):
        lake.append(table(50, account=writer, first=b * 50,
                          day=DAY - dt.timedelta(days=b % 3)),
                    batch_key=f"{writer}-{b}".encode().ljust(16, b"."))
    lake.close()


def test_many_processes_append_at_once_and_every_file_is_whole(tmp_path):
    root = str(tmp_path / "lake")
    ParquetEventStore(root).close()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(root, w, 12)) for w in range(1, 5)]
    for w in writers:
        w.start()
    reader = ParquetEventStore(root)
    seen = 0
    while any(w.is_alive() for w in writers):  # readers during the writes see whole files
        seen = max(seen, reader.count())
    for w in writers:
        w.join(timeout=60)
        assert w.exitcode == 0
    for path in Path(root).rglob("*.parquet"):
        assert pq.read_metadata(path).num_rows == 50
    assert reader.count() == 4 * 12 * 50 >= seen
    assert len({r for r in rows_of(reader)}) == 4 * 12 * 50
    assert not list(Path(root).rglob("*.tmp"))


def test_a_reader_that_listed_before_compaction_still_reads_until_the_grace_passes(tmp_path):
    clock = Clock(TEST_NOW.timestamp())
    lake = ParquetEventStore(str(tmp_path / "lake"), grace_seconds=600, wall_clock=clock)
    for i in range(3):
        lake.append(table(5, first=5 * i))
    lake.append(table(5))  # copies of the first batch
    with lake.reading() as listed_before:
        assert lake.compact(ingested_since=TEST_NOW - dt.timedelta(hours=1)) == 5
        # the merged inputs are still on disk: the old listing reads them all
        assert listed_before.count().to_pyarrow().as_py() == 20
    assert len(lake.data_files()) == 1 and lake.count() == 15
    inputs = list((tmp_path / "lake" / "events" / "day=2026-11-18").glob("part-*.parquet"))
    assert len(inputs) == 4
    clock.t += 599
    lake.compact(ingested_since=TEST_NOW + dt.timedelta(days=1))
    assert all(p.exists() for p in inputs)
    clock.t += 2
    lake.compact(ingested_since=TEST_NOW + dt.timedelta(days=1))
    assert not any(p.exists() for p in inputs)
    assert not list((tmp_path / "lake" / "events").rglob("_merged-*"))
    assert lake.count() == 15


def test_the_frequent_pass_merges_small_files_of_recent_days_only(tmp_path):
    lake = ParquetEventStore(str(tmp_path / "lake"))
    old, new = DAY - dt.timedelta(days=10), DAY
    lake.append(table(3, day=old, ingested=TEST_NOW - dt.timedelta(days=2)))
    lake.append(table(3, day=old, first=3, ingested=TEST_NOW - dt.timedelta(days=2)))
    for i in range(3):
        lake.append(table(3, day=new, first=10 + 3 * i))
    # file names carry the time they were written (here: the wall clock)
    assert lake.compact(ingested_since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)) == 0
    assert len(lake.data_files()) == 2  # both days' files are recent: each day merged once
    assert lake.compact(ingested_since=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)) == 0
    assert len(lake.data_files()) == 2


def test_torn_temporary_files_are_never_read_and_are_cleaned_up(tmp_path):
    clock = Clock(TEST_NOW.timestamp())
    lake = ParquetEventStore(str(tmp_path / "lake"), grace_seconds=60, wall_clock=clock)
    lake.append(table(2))
    folder = tmp_path / "lake" / "events" / "day=2026-11-18"
    torn = folder / ".part-0000000000000-deadbeef.parquet.1234.tmp"
    torn.write_bytes(b"PAR1 half a file")
    assert lake.count() == 2 and rows_of(lake)
    os.utime(torn, (clock.t - 120, clock.t - 120))
    lake.compact()
    assert not torn.exists()


def test_compaction_splits_large_days_into_files_of_the_target_size(tmp_path):
    lake = ParquetEventStore(str(tmp_path / "lake"), target_file_bytes=64 * 1024)
    for i in range(6):
        lake.append(table(4000, first=4000 * i))
    assert lake.compact() == 0
    files = lake.data_files()
    assert len(files) > 1 and lake.count() == 24_000
    assert len({r for r in rows_of(lake)}) == 24_000


def test_events_urls_open_the_right_store(tmp_path):
    lake = open_event_store(f"parquet://{tmp_path}/a")
    assert isinstance(lake, ParquetEventStore) and lake.root == f"{tmp_path}/a"
    assert isinstance(open_event_store(f"file://{tmp_path}/b"), ParquetEventStore)
    with pytest.raises(ValueError, match="absolute"):
        open_event_store("parquet://relative/lake")
    with pytest.raises(ValueError, match="unsupported"):
        open_event_store("ftp://host/lake")


def test_events_are_copied_from_duckdb_into_an_empty_lake(tmp_path):
    duck = DuckDBEventStore(tmp_path / "events.duckdb")
    duck.append(table(3))
    duck.append(table(3))  # copies travel too; readers count them once
    duck.append(table(2, day=DAY - dt.timedelta(days=40), first=7))
    lake = ParquetEventStore(str(tmp_path / "lake"))
    assert copy_events(duck, lake, chunk_rows=2) == 8
    assert rows_of(lake) == rows_of(duck)
    with pytest.raises(ValueError, match="not empty"):
        copy_events(duck, lake)
    duck.close()
