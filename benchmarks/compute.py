"""Compute speed: results of one day and of every day, for every account, from a DuckDB
event store of 50 million events (60 days, 10,000 accounts); pandas on a 5-million-event
subset of it (every 10th account) as the baseline; how time grows with events and accounts.

    .venv/bin/python benchmarks/compute.py            # full run (goals checked, exit 1 if missed)
    .venv/bin/python benchmarks/compute.py --quick    # CI: 200,000 events, 300 accounts

Figures and how to read them: docs/performance.md ("Compute").

Stores are made once by benchmarks/compute_store.py (cached under
benchmarks/out/compute-<events>-a<accounts>-d60-s<seed>/; a re-run skips that).
Every measurement runs in a child process of its own (``--phase``), so its peak
RSS is its own, through the product's path: ``DuckDBEventStore`` with the default
settings (memory_limit 1GB, a thread per core) and ``seqscore.service.results.
compute_results`` (facts refreshed, aggregation, scoring; writing results to the
state store is not timed):

* ``nightly`` (the goal): one day, every account, after the previous days were
  computed: the facts of every earlier day are in the day-fact cache, the day just
  closed is not (it is built in the run). This is what the worker does each night.
* ``nightly, again``: the same day again (nothing to rebuild). The nightly process
  first computes the day before (untimed), as the long-running worker did the night
  before: DuckDB's SQL of the aggregation is compiled once per process.
* ``nightly_worker``: the same day the way ``seqscore serve``'s worker computes it:
  jobs queued for every account in a SQLite state store, claimed in batches of
  ``SEQSCORE_WORKER_BATCH_SIZE`` by the ``JobRunner``, results (with their
  explanations) written to the state store; timed from queue to last result.
* ``nightly, cold``: one day in a fresh process with an empty cache (it builds the
  facts of 90 days and compiles the SQL).
* ``backfill``: every day of the store, every account, as ``seqscore compute`` runs
  it (one 60-day run counted in passes of ``SEQSCORE_COMPUTE_FACTS_PER_PASS``
  facts), results taken a chunk at a time (``iter_results``, as the command writes
  them), from an empty cache. "Empty" includes the dictionaries of recipients and
  message ids, as right after an import (before 2026-11-26 they were kept: about
  8 s less).
* ``counts_all_days``: the backfill's counts without scoring (the rest of
  ``backfill`` is ``seqscore.scoring`` in Python, per result).
* ``events, no cache``: one day straight from the events (the aggregation over
  ``events``, as on Spark); its counts must equal the cached run's.

The pandas baseline (benchmarks/compute_pandas.py) computes the counts of every
day for every account of the 5M subset (every 10th account of the 50M store, 4.8M
events, 999 accounts); seqscore computes the same counts (cold cache,
no scoring); both must be identical (exit 2 otherwise) and the ratio is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compute_store import LAST_DAY  # noqa: E402

OUT = HERE / "out"
DAYS = 60
#: `seqscore compute --days-per-pass`'s default.
PASS_DAYS = 60
GOALS = {"nightly_s": 5.0, "backfill_s": 90.0, "peak_gb": 2.0, "pandas_ratio": 10.0}


class BenchError(Exception):
    """Setup or correctness failure (exit 2)."""


def store_for(events: int, accounts: int, seed: int) -> Path:
    folder = OUT / f"compute-{events}-a{accounts}-d{DAYS}-s{seed}"
    path = folder / "events.duckdb"
    marker = folder / "COMPLETE"
    if not marker.exists():
        print(f"generating {events:,} events for {accounts:,} accounts into {path} ...",
              flush=True)
        started = time.monotonic()
        # in a process of its own: generating takes GBs, and a phase started from a
        # process that had grown so large inherits its peak RSS (Linux keeps ru_maxrss
        # across fork and exec)
        subprocess.run([sys.executable, str(HERE / "compute_store.py"), str(events), str(path),
                        "--accounts", str(accounts), "--days", str(DAYS), "--seed", str(seed)],
                       check=True)
        n = _stored_events(path)
        marker.write_text(json.dumps({"events": n}))
        print(f"  {n:,} events in {time.monotonic() - started:.0f} s", flush=True)
    return path


def subset_for(source: Path, every: int) -> Path:
    """The events of every ``every``-th account of the store at ``source`` (cached)."""
    folder = source.parent.with_name(source.parent.name + f"-every{every}")
    path = folder / "events.duckdb"
    marker = folder / "COMPLETE"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"copying every {every}th account of {source} into {path} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "compute_store.py"), "0", str(path),
                        "--subset-of", str(source), "--every", str(every)], check=True)
        marker.write_text(json.dumps({"events": _stored_events(path)}))
    return path


def _stored_events(path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def _load() -> str:
    return os.getloadavg().__repr__()


# -- phases: each runs in its own process --------------------------------------------------

def _accounts(ids: Sequence[int]) -> list[Any]:
    from seqscore.types import Account, AccountKind

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [Account(i, f"a{i}", f"a{i}@example.com", None, AccountKind.SUBUSER, True, False, at)
            for i in ids]


def _facts_per_pass() -> int | None:
    """``SEQSCORE_COMPUTE_FACTS_PER_PASS``, as ``seqscore compute`` reads it."""
    from seqscore.settings import Settings

    return Settings().compute_facts_per_pass or None


def _drop_cache(store: Any, keep_all_but_last: bool) -> None:
    """Forget the facts of the last day (``keep_all_but_last``: the nightly's state) or
    the whole cache, the dictionaries of recipients and message ids included (a
    backfill right after an import starts from nothing)."""
    from seqscore.compute.daycache import DAYS_TABLE, FACT_TABLES, KEYS_TABLES

    last = (LAST_DAY - dt.date(1970, 1, 1)).days
    with store.derived_tables() as cur:
        if not keep_all_but_last:
            for table in KEYS_TABLES.values():
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        for table in (*FACT_TABLES.values(), DAYS_TABLE):
            exists = cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                                 [table]).fetchone()[0]
            if not exists:
                continue
            if keep_all_but_last:
                cur.execute(f"DELETE FROM {table} WHERE dn = ?", [last])
            else:
                cur.execute(f"DROP TABLE {table}")


def _digest_line(c: Any) -> str:
    return json.dumps([c.account_id, c.day.isoformat(), *[getattr(c, f.name) for f in
                       dataclasses.fields(c)[2:-1]],
                       [list(dataclasses.astuple(p)) for p in c.providers]])


def _write_digest(path: Path, results: Iterable[Any]) -> None:
    """The counts as JSON lines, in the order given (compared line by line)."""
    with path.open("w") as out:
        for c in results:
            out.write(_digest_line(c) + "\n")


def phase(name: str, path: Path, out: Path) -> None:
    """Run one measurement; write its figures (and what to compare) as JSON to ``out``."""
    from seqscore.clock import SystemClock
    from seqscore.compute.aggregate import compute_window_counts, window_counts_in_chunks
    from seqscore.compute.daycache import DayFactCache, cached_facts
    from seqscore.scoring.model import DEFAULT_MODEL
    from seqscore.service.jobs import JobRunner
    from seqscore.service.results import compute_results, count_in_passes, iter_results
    from seqscore.storage.duckdb_events import DuckDBEventStore

    store = DuckDBEventStore(path)
    ids = [r[0] for r in store.sql("SELECT DISTINCT account_id FROM events ORDER BY 1")]
    accounts = _accounts(ids)
    first = LAST_DAY - dt.timedelta(days=DAYS - 1)
    every_day = [first + dt.timedelta(days=i) for i in range(DAYS)]
    now = dt.datetime.now(dt.UTC)
    result: dict[str, Any] = {"load_before": _load(), "accounts": len(ids)}
    digest = out.with_suffix(".digest.jsonl")
    digest.unlink(missing_ok=True)
    if name in ("nightly_cold", "backfill", "counts_all_days"):
        _drop_cache(store, keep_all_but_last=False)
    elif name == "nightly":
        # the worker's steady state: it computed yesterday (its SQL is compiled, the
        # facts of every earlier day are cached); today's facts are not built yet
        _drop_cache(store, keep_all_but_last=True)
        yesterday = LAST_DAY - dt.timedelta(days=1)
        compute_results(store, DEFAULT_MODEL, accounts, [yesterday], computed_at=now)
        result["load_before"] = _load()
    started = time.monotonic()
    if name in ("nightly", "nightly_cold"):
        results = compute_results(store, DEFAULT_MODEL, accounts, [LAST_DAY], computed_at=now)
        result["results"] = len(results)
        if name == "nightly":
            result["first_seconds"] = time.monotonic() - started
            again = time.monotonic()
            compute_results(store, DEFAULT_MODEL, accounts, [LAST_DAY], computed_at=now)
            result["nochange_seconds"] = time.monotonic() - again
    elif name == "backfill":
        total = 0
        # as `seqscore compute` does
        for scored in iter_results(store, DEFAULT_MODEL, accounts, every_day, computed_at=now,
                                   days_per_pass=PASS_DAYS, facts_per_pass=_facts_per_pass()):
            total += len(scored)
        result["results"] = total
    elif name == "nightly_worker":
        # what `seqscore serve`'s worker does at night: the scheduler has queued the day
        # just closed for every account; the JobRunner claims batches of
        # worker_batch_size jobs, computes them and writes the results (with their
        # explanations) to a SQLite state store. The previous day was computed the
        # same way (untimed), as the night before.
        from seqscore.settings import Settings
        from seqscore.storage.migrate import upgrade_to_head
        from seqscore.storage.state import StateStore, create_state_engine

        state_path = path.parent / "worker-state.sqlite3"
        for leftover in state_path.parent.glob("worker-state.sqlite3*"):
            leftover.unlink()
        engine = create_state_engine(f"sqlite:///{state_path}")
        upgrade_to_head(engine)
        state = StateStore(engine)
        for i in ids:
            state.create_account(f"a{i}", user_id=i, now=now)
        _drop_cache(store, keep_all_but_last=True)
        runner = JobRunner(state, store, DEFAULT_MODEL, SystemClock(),
                           batch_size=Settings().worker_batch_size, max_attempts=3,
                           lease=dt.timedelta(minutes=10))

        def night(day: dt.date) -> int:
            state.enqueue_jobs([(i, day) for i in ids], now=now)
            done = 0
            while claimed := runner.run_once("bench"):
                done += claimed
            return done

        night(LAST_DAY - dt.timedelta(days=1))
        result["load_before"] = _load()
        started = time.monotonic()
        result["results"] = night(LAST_DAY)
        result["batch_size"] = Settings().worker_batch_size
        engine.dispose()
    elif name == "events_nocache":
        with store.reading() as table:
            counts = compute_window_counts(table, [LAST_DAY], ids)
        result["results"] = len(counts)
        _write_digest(digest, counts)
    elif name == "cached_counts":
        with store.derived_tables() as cur:
            DayFactCache(cur).refresh(LAST_DAY - dt.timedelta(days=89), LAST_DAY)
        with store.derived_tables(exclusive=False) as cur:
            counts = compute_window_counts(cached_facts(cur), [LAST_DAY], ids)
        result["results"] = len(counts)
        _write_digest(digest, counts)
    elif name == "counts_all_days":
        # the backfill's path without scoring (iter_results' counting): counts of a
        # pass as one Arrow table, the next pass counted meanwhile, unpacked a chunk at
        # a time with the collector paused; each chunk is written to the digest and dropped
        total = 0
        gc.disable()
        with digest.open("w") as lines:
            for table in count_in_passes(store, DEFAULT_MODEL, ids, every_day,
                                         days_per_pass=PASS_DAYS,
                                         facts_per_pass=_facts_per_pass()):
                for chunk in window_counts_in_chunks(table):
                    total += len(chunk)
                    writing = time.monotonic()
                    lines.writelines(_digest_line(c) + "\n" for c in chunk)
                    started += time.monotonic() - writing  # the digest is not timed
        gc.enable()
        result["results"] = total
    elif name == "pandas":
        import compute_pandas

        store.close()  # one configuration per file and process: pandas opens it read-only
        frame = compute_pandas.load_events(path, first - dt.timedelta(days=89), LAST_DAY)
        counts = compute_pandas.window_counts(frame, every_day, ids)
        result["results"] = len(counts)
        result["seconds"] = time.monotonic() - started
        # in the order counts_all_days writes: pass by pass, then (account_id, day)
        _write_digest(digest, sorted(counts, key=lambda c: (
            (c.day - first).days // PASS_DAYS, c.account_id, c.day)))
    else:
        raise BenchError(f"unknown phase {name}")
    result.setdefault("seconds", time.monotonic() - started)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load_after"] = _load()
    if name != "pandas":
        store.close()
    out.write_text(json.dumps(result))


def run_phase(name: str, path: Path) -> dict[str, Any]:
    out = path.parent / f"phase-{name}.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, __file__, "--phase", name, "--store", str(path)],
                          check=False)
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"phase {name} on {path} failed (exit {proc.returncode})")
    figures: dict[str, Any] = json.loads(out.read_text())
    digest = out.with_suffix(".digest.jsonl")
    if digest.exists():
        figures["digest"] = digest
    if "first_seconds" in figures:  # nightly: the day just closed, then the same again
        figures["seconds"] = figures["first_seconds"]
    print(f"  {name:<17} {figures['seconds']:8.2f} s  peak {figures['peak_rss_mb']:7.0f} MB  "
          f"{figures['results']:>9,} results  load {figures['load_before']}", flush=True)
    if "nochange_seconds" in figures:
        print(f"  {'nightly, again':<17} {figures['nochange_seconds']:8.2f} s  (nothing to "
              "rebuild)", flush=True)
    return figures


def same(a: dict[str, Any], b: dict[str, Any], what: str) -> int:
    """Compare two digests line by line (both written in the same order)."""
    checked = 0
    with a["digest"].open() as left, b["digest"].open() as right:
        for x, y in itertools.zip_longest(left, right):
            if x != y:
                raise BenchError(f"{what}: results differ at row {checked}: {x!r} vs {y!r}")
            checked += 1
    return checked


# -- the run -------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phase")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.store, args.store.parent / f"phase-{args.phase}.json")
        return 0
    try:
        return run(args)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    import duckdb

    if args.quick:
        main_size, main_accounts = 200_000, 300
        scaling = [(100_000, 300)]
        accounts_scaling = [(200_000, 50)]
    else:
        main_size, main_accounts = 50_000_000, 10_000
        scaling = [(5_000_000, 10_000), (20_000_000, 10_000)]
        accounts_scaling = [(20_000_000, 1_000)]
    print(f"compute benchmark ({'quick' if args.quick else 'full'}) on {platform.node()}: "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"DuckDB {duckdb.__version__}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    path = store_for(main_size, main_accounts, args.seed)
    print(f"\n{main_size:,} events, {main_accounts:,} accounts, {DAYS} days: {path}")
    figures = {name: run_phase(name, path) for name in (
        "backfill", "counts_all_days", "nightly", "nightly_worker", "nightly_cold",
        "cached_counts", "events_nocache")}
    checked = same(figures["cached_counts"], figures["events_nocache"],
                   "cached facts vs events")
    print(f"  cached facts = events, no cache: identical on {checked:,} account-days")
    ratio = None
    if not args.skip_pandas:
        # a subset of the main store: every 10th account (~5M of the 50M events, the
        # same per-account volumes); the quick store is small enough to take whole
        subset = path if args.quick else subset_for(path, 10)
        print(f"\npandas baseline: every day, every account of {subset}")
        ours = run_phase("counts_all_days", subset)
        theirs = run_phase("pandas", subset)
        checked = same(ours, theirs, "seqscore vs pandas")
        ratio = theirs["seconds"] / ours["seconds"]
        print(f"  identical on {checked:,} account-days; pandas / seqscore = {ratio:.1f}x")
    rows = [(main_size, main_accounts, figures)]
    if not args.skip_scaling:
        print("\nscaling (nightly = one day after the previous days; backfill = every day)")
        for size, accounts in [*scaling, *accounts_scaling]:
            p = store_for(size, accounts, args.seed)
            print(f" {size:,} events, {accounts:,} accounts")
            rows.append((size, accounts, {n: run_phase(n, p)
                                          for n in ("backfill", "nightly", "nightly_cold")}))
    print("\n| events | accounts | nightly s | nightly cold s | backfill s | peak MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, accounts, f in sorted(rows, key=lambda r: (r[1], r[0])):
        peak = max(x["peak_rss_mb"] for x in f.values())
        print(f"| {size:,} | {accounts:,} | {f['nightly']['seconds']:.2f} | "
              f"{f['nightly_cold']['seconds']:.1f} | {f['backfill']['seconds']:.1f} | "
              f"{peak:.0f} |")
    peak_gb = max(x["peak_rss_mb"] for x in figures.values()) / 1024
    checks = [
        ("one day, every account (nightly)", figures["nightly"]["seconds"], "s", "nightly_s"),
        ("backfill, every day and account", figures["backfill"]["seconds"], "s", "backfill_s"),
        ("peak memory of any phase", peak_gb, "GB", "peak_gb"),
    ]
    print(f"\ngoals ({main_size:,} events, {main_accounts:,} accounts; "
          f"load now {_load()}):")
    missed = 0
    for label, value, unit, key in checks:
        ok = value < GOALS[key]
        missed += not ok
        print(f"  {'goal met   ' if ok else 'goal missed'} {label}: {value:.2f} {unit} "
              f"(goal < {GOALS[key]:g} {unit})")
    worker = figures["nightly_worker"]
    print(f"  (the same day through `seqscore serve`'s worker, batches of "
          f"{worker['batch_size']:,} jobs, results written to SQLite: {worker['seconds']:.2f} s)")
    if ratio is not None:
        ok = ratio >= GOALS["pandas_ratio"]
        missed += not ok
        print(f"  {'goal met   ' if ok else 'goal missed'} speed vs pandas: {ratio:.1f}x "
              f"(goal >= {GOALS['pandas_ratio']:g}x)")
    if args.quick:
        print("quick run: goals are printed, never enforced (they are set for 50M events and "
              "10,000 accounts; the quick store is far smaller)")
        return 0
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
