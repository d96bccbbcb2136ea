"""How long the scheduler's compaction pass holds the event store's writer.

    .venv/bin/python benchmarks/compaction.py            # 10,000,000 events over 7 days
    .venv/bin/python benchmarks/compaction.py --quick    # 1,000,000, for CI (benchmarks/run-quick)

While the writer is held, the webhook receiver cannot commit a batch. The pass
(``DuckDBEventStore.compact(ingested_since=...)``) removes copies of events among
the days that received events since the last pass. Baseline: the pass as one
DELETE with a window over every row of those days, all of it holding the writer
(seqscore before session 6). seqscore: the copies are found beside the writer
(``find_copies``, a snapshot read) and only their deletion holds it
(``delete_copies``). Both run on copies of the same file, with the same DuckDB
settings as the server (1 GB memory limit); both must leave the same rows.

Prints the writer-held seconds of each and their ratio. Exit 1 if the two leave
different rows; a full run also exits 1 if the ratio is under 5x.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from seqscore.event_schema import EVENT_SCHEMA
from seqscore.storage.duckdb_events import (
    TABLE,
    DuckDBEventStore,
    delete_copies,
    find_copies,
)

UTC = dt.UTC
DAYS = 7
ACCOUNTS = 12
COPY_EVERY = 1000  # one event in 1,000 is stored twice, as retried batches leave them
GOAL_RATIO = 5.0
NOW = dt.datetime(2026, 11, 27, 12, tzinfo=UTC)


def build(path: Path, events: int) -> int:
    """A store of ``events`` events over DAYS days (plus one copy in COPY_EVERY, the
    copy ingested an hour later); returns the copies made."""
    store = DuckDBEventStore(path)
    first_day = NOW.date() - dt.timedelta(days=DAYS)
    chunk = 500_000
    copies = 0
    for start in range(0, events, chunk):
        n = min(chunk, events - start)
        ids = range(start, start + n)
        days = [first_day + dt.timedelta(days=i % DAYS) for i in ids]
        table = pa.table({
            "account_id": pa.array([i % ACCOUNTS for i in ids], pa.int64()),
            "event_id": pa.array([f"ev{i:012d}.{i % 97}" for i in ids], pa.string()),
            "message_id": pa.nulls(n, pa.string()),
            "event": pa.array(["delivered"] * n, pa.string()),
            "ts": pa.array([dt.datetime(d.year, d.month, d.day, 10, tzinfo=UTC) for d in days],
                           EVENT_SCHEMA.field("ts").type),
            "day": pa.array(days, pa.date32()),
            "recipient": pa.array([f"r{i % 50_000}" for i in ids], pa.string()),
            "domain": pa.array(["example.com"] * n, pa.string()),
            "provider": pa.array(["other"] * n, pa.string()),
            "bounce_type": pa.nulls(n, pa.string()),
            "bounce_class": pa.nulls(n, pa.string()),
            "status": pa.nulls(n, pa.string()),
            "machine_open": pa.array([False] * n, pa.bool_()),
            "ingested_at": pa.array([NOW - dt.timedelta(hours=2)] * n,
                                    EVENT_SCHEMA.field("ingested_at").type),
            "raw": pa.nulls(n, pa.string()),
        }).cast(EVENT_SCHEMA)
        store.append(table)
        copied = table.filter(pa.array([i % COPY_EVERY == 0 for i in ids]))
        copied = copied.set_column(
            copied.schema.get_field_index("ingested_at"), "ingested_at",
            pa.array([NOW - dt.timedelta(hours=1)] * copied.num_rows,
                     EVENT_SCHEMA.field("ingested_at").type))
        store.append(copied)
        copies += copied.num_rows
    store.close()
    return copies


def baseline(path: Path, since: dt.datetime) -> tuple[float, int]:
    """The old pass: one DELETE holding the writer throughout."""
    store = DuckDBEventStore(path)
    try:
        t0 = time.perf_counter()
        with store._write_lock, store._cursor() as cur:
            row = cur.execute(
                f"DELETE FROM {TABLE} WHERE rowid IN (SELECT rowid FROM ("
                "SELECT rowid, row_number() OVER (PARTITION BY account_id, event_id "
                "ORDER BY ingested_at, ts) AS copy "
                f"FROM {TABLE} WHERE day IN (SELECT DISTINCT day FROM {TABLE} "
                "WHERE ingested_at >= ?)) WHERE copy > 1)", [since]).fetchone()
        held = time.perf_counter() - t0
        return held, int(row[0]) if row else 0
    finally:
        store.close()


def two_phase(path: Path, since: dt.datetime) -> tuple[float, float, int]:
    """seqscore's pass: (seconds finding, beside the writer; seconds holding it; removed)."""
    store = DuckDBEventStore(path)
    try:
        t0 = time.perf_counter()
        with store._cursor() as cur:
            copied = find_copies(cur, since)
        t1 = time.perf_counter()
        with store._write_lock, store._cursor() as cur:
            removed = delete_copies(cur, copied)
        return t1 - t0, time.perf_counter() - t1, removed
    finally:
        store.close()


def digest(path: Path) -> tuple[int, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        count, h = con.execute(
            f"SELECT count(*), sum(hash(account_id, event_id, ingested_at)) FROM {TABLE}"
        ).fetchone()  # type: ignore[misc]
        return int(count), int(h)
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 events, for CI")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args()
    events = args.events or (1_000_000 if args.quick else 10_000_000)
    print(f"machine: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; duckdb {duckdb.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="seqscore-compaction-"))
    try:
        source = tmp / "source.duckdb"
        t0 = time.perf_counter()
        copies = build(source, events)
        print(f"store: {events:,} events over {DAYS} days, {ACCOUNTS} accounts, {copies:,} "
              f"copies ingested later ({time.perf_counter() - t0:.1f}s to build, "
              f"{source.stat().st_size / 2**20:,.0f} MiB)")
        since = NOW - dt.timedelta(hours=1, minutes=30)
        old_path, new_path = tmp / "baseline.duckdb", tmp / "seqscore.duckdb"
        shutil.copy(source, old_path)
        shutil.copy(source, new_path)
        held_old, removed_old = baseline(old_path, since)
        found_s, held_new, removed_new = two_phase(new_path, since)
        print(f"baseline (one DELETE, writer held throughout): {held_old:.2f}s held, "
              f"{removed_old:,} copies removed")
        print(f"seqscore (find beside the writer, then delete): {found_s:.2f}s finding, "
              f"{held_new:.3f}s held, {removed_new:,} copies removed")
        same = digest(old_path) == digest(new_path) and removed_old == removed_new == copies
        ratio = held_old / held_new if held_new else float("inf")
        print(f"ratio: the writer is held {ratio:.1f}x shorter (goal >= {GOAL_RATIO:g}x)")
        if not same:
            print("FAILED: the two passes left different rows")
            return 1
        print("same rows left by both")
        if not args.quick and ratio < GOAL_RATIO:
            print("goal missed")
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
