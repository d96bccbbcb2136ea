"""Scale-out speed: the window aggregation on DuckDB and on Spark over Parquet lakes of
growing size, and ingest throughput into a lake through 1, 2 and 4 API processes.

    .venv/bin/python benchmarks/scaleout.py [--quick] [--sizes 1000000,10000000,50000000]
                                            [--state-url URL] [--skip-spark] [--skip-ingest]

Figures and how to read them: docs/performance.md ("Scale-out").

1. Lakes: benchmarks/scaleout_lake.py writes each size once (DuckDB SQL, cached
   under benchmarks/out/lake-<events>/), 2,000 accounts over 100 days.
2. Compute, per lake and engine: the nightly pass (the last closed day, every
   account with events) and a 14-day backfill pass (what `seqscore compute
   --from --to` runs per pass). DuckDB reads the lake as the workers do
   (ParquetEventStore.reading); Spark runs in local mode on 2 cores
   (SparkLakeReader, the same Ibis expression). Both results must be identical,
   else the run aborts (exit 2). Printed: seconds, and the growth factor per 10x
   of data (time ratio scaled to a tenfold size step).
3. Ingest: 1, 2 and 4 `seqscore serve --no-worker` processes on one fresh lake
   each run, 500-event webhook bodies posted through their receivers by 8
   client threads; events per second until the last answer.

``--quick`` (CI): lakes of 100k and 300k events, Spark on the smaller's nightly pass, 20k
events ingested; prints the figures, never fails on speed. Exit 2 when
something cannot run or the engines disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scaleout_lake import LAST_DAY, make_lake  # noqa: E402

OUT = HERE / "out"
FULL_SIZES = (1_000_000, 10_000_000, 50_000_000)
QUICK_SIZES = (100_000, 300_000)
WORKLOADS = {"nightly (1 day)": [LAST_DAY],
             "backfill (14 days)": [LAST_DAY - dt.timedelta(days=i) for i in range(14)]}


class BenchError(Exception):
    """Setup or correctness failure (exit 2)."""


def lake_for(events: int) -> Path:
    root = OUT / f"lake-{events}"
    marker = root / "COMPLETE"
    if not marker.exists():
        started = time.monotonic()
        print(f"  writing a lake of {events:,} events to {root} ...", flush=True)
        count = make_lake(root, events)
        marker.write_text(str(count))
        print(f"  ... {count:,} events in {time.monotonic() - started:.0f} s", flush=True)
    return root


def timed(reader_store, days) -> tuple[float, list]:
    from seqscore.compute import compute_window_counts

    started = time.monotonic()
    with reader_store.reading() as events:
        counts = compute_window_counts(events, days)
    return time.monotonic() - started, counts


def _label(events: int) -> str:
    return f"{events / 1e6:.3g}M"


def growth(rows: list[tuple[int, float]]) -> list[str]:
    """Time growth per 10x of data between consecutive sizes."""
    out = []
    for (n0, t0), (n1, t1) in itertools.pairwise(rows):
        out.append(f"x{(t1 / t0) ** (1 / math.log10(n1 / n0)):.1f} per 10x "
                   f"({_label(n0)}->{_label(n1)})")
    return out


def bench_compute(sizes: tuple[int, ...], spark_sizes: set[int], spark_conf: dict, *,
                  spark_workloads: set[str] | None = None) -> dict:
    from seqscore.storage.parquet_events import ParquetEventStore

    session = reader = None
    if spark_sizes:
        from seqscore.compute.spark import SparkLakeReader, spark_session

        session = spark_session("local[2]", spark_conf)
        reader = SparkLakeReader(session)
    results: dict = {}
    try:
        for size in sizes:
            root = lake_for(size)
            lake = ParquetEventStore(str(root), memory_limit="6GB", threads=2)
            stored = lake.count()
            for name, days in WORKLOADS.items():
                seconds, on_duckdb = timed(lake, days)
                row = {"events": stored, "duckdb_s": round(seconds, 2),
                       "results": len(on_duckdb)}
                print(f"  {_label(size):>6} {name:<20} duckdb {seconds:7.1f} s", flush=True)
                if size in spark_sizes and (spark_workloads is None or name in spark_workloads):
                    seconds, on_spark = timed(lake.with_reader(reader), days)
                    if on_spark != on_duckdb:
                        raise BenchError(f"Spark and DuckDB disagree on {size:,} events, "
                                         f"{name}")
                    row["spark_s"] = round(seconds, 2)
                    print(f"  {_label(size):>6} {name:<20} spark  {seconds:7.1f} s "
                          "(identical results)", flush=True)
                results.setdefault(name, {})[size] = row
            lake.close()
    finally:
        if session is not None:
            session.stop()
    return results


def bench_ingest(events: int, state_url: str | None) -> list:
    import scaleout_ingest

    bodies = scaleout_ingest.demo_bodies(events)
    total = sum(len(json.loads(b)) for b in bodies)
    runs = []
    with tempfile.TemporaryDirectory(prefix="seqscore-ingest-") as tmp, \
            scaleout_ingest.state_database(state_url) as url:
        work = Path(tmp)
        url = url or f"sqlite:///{work / 'state.sqlite3'}"
        key = scaleout_ingest.prepare(work, url)
        for processes in (1, 2, 4):
            run = scaleout_ingest.run(work, url, key, bodies, processes)
            if run.events != total:
                raise BenchError(f"{processes} processes stored {run.events} of {total}")
            runs.append(run)
            print(f"  {processes} process(es): {run.events:,} events in {run.seconds:.1f} s "
                  f"= {run.events_per_s:,.0f} events/s ({run.files} files)", flush=True)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description="Scale-out speed: DuckDB vs Spark, ingest")
    parser.add_argument("--quick", action="store_true", help="tiny, for CI")
    parser.add_argument("--sizes", default=None, help="comma-separated lake sizes (events)")
    parser.add_argument("--spark-sizes", default=None,
                        help="sizes Spark runs on (default: all; quick: the smallest)")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-compute", action="store_true")
    parser.add_argument("--ingest-events", type=int, default=None)
    parser.add_argument("--state-url", default=os.environ.get("SEQSCORE_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server for the ingest servers' state store (a "
                             "temporary database is created on it and dropped; default: "
                             "$SEQSCORE_TEST_POSTGRES_URL, else a temp SQLite file)")
    parser.add_argument("--spark-driver-memory", default="6g")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (
        QUICK_SIZES if args.quick else FULL_SIZES)
    spark_sizes = set() if args.skip_spark else (
        {int(s) for s in args.spark_sizes.split(",")} if args.spark_sizes else
        ({min(sizes)} if args.quick else set(sizes)))
    print(f"scale-out benchmark on {platform.node()}: {os.cpu_count()} cores, "
          f"python {platform.python_version()}, lakes {', '.join(f'{s:,}' for s in sizes)}")
    OUT.mkdir(exist_ok=True)
    conf = {"spark.driver.memory": args.spark_driver_memory,
            "spark.sql.shuffle.partitions": "4" if args.quick else "16"}
    report: dict = {"sizes": sizes, "when": dt.datetime.now(dt.UTC).isoformat()}
    try:
        if not args.skip_compute:
            print("compute (seconds; identical results checked):")
            report["compute"] = bench_compute(
                sizes, spark_sizes, conf,
                spark_workloads={"nightly (1 day)"} if args.quick else None)
        for name, by_size in report.get("compute", {}).items():
            for engine in ("duckdb", "spark"):
                rows = [(s, by_size[s][f"{engine}_s"]) for s in sizes
                        if f"{engine}_s" in by_size[s]]
                if len(rows) > 1:
                    print(f"  growth {name:<20} {engine:<6} {'; '.join(growth(rows))}")
        if not args.skip_ingest:
            events = args.ingest_events or (20_000 if args.quick else 200_000)
            print(f"ingest into a lake through `serve --no-worker` processes "
                  f"({events:,} events, 500 per POST, 8 client threads, state: "
                  f"{'PostgreSQL' if args.state_url else 'SQLite'}):")
            report["ingest"] = [vars(r) | {"events_per_s": round(r.events_per_s)}
                                for r in bench_ingest(events, args.state_url)]
    except BenchError as exc:
        print(f"ABORTED: {exc}")
        return 2
    mode = "quick" if args.quick else ("ingest" if args.skip_compute else "full")
    (OUT / f"scaleout-{mode}.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"figures written to {OUT / f'scaleout-{mode}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
