"""Speed of ingestion, end to end: the webhook receiver and `seqscore import`, one command.

    .venv/bin/python benchmarks/ingest.py [--quick] [--clients 8] [--processes 0,auto]

Figures and how to read them: docs/performance.md ("Ingest").

1. Events: the demo generator's realistic stream (seqscore.demo: 40 accounts, every
   event type, custom args, late and repeated events), cut per account into webhook
   bodies of at most 768 KB and 2,500 events, as SendGrid batches them.
2. Receiver: a real ``seqscore serve`` (its in-process worker on, idle: the day's
   scheduling is marked done) on a temp data dir. ``--clients`` threads post the
   bodies concurrently over loopback, each account with its own key in HTTP Basic
   credentials, as SendGrid sends them. events/s = events / (first send .. last
   answer); every answer must be 200 with accepted + duplicates + rejected = the
   batch. After the server stops, the event store must hold every accepted event
   (an answer is sent only once its batch is committed). Measured once per
   ``SEQSCORE_INGEST_PROCESSES`` value of ``--processes`` (``auto``: unset, the
   default: one parser process per core on a machine with more than one).
3. The straightforward receiver (benchmarks/straightforward_ingest.py: FastAPI,
   ``json.loads``, one SQLAlchemy INSERT per event into SQLite), same clients, a
   part of the same bodies; the ratio of the two rates is printed.
4. Import: a JSON Lines file of ``--import-events`` events (5 million; 300,000 with
   --quick) made from the same stream, imported with ``seqscore import FILE
   --account`` (parser processes: one per core); wall time, and the peak memory of
   the command with its worker processes (the sum of their proportional set sizes,
   polled from /proc every 50 ms).
5. Floors: what DuckDB alone does with the same file (benchmarks/ingest_floor.py),
   from reading it to storing its rows with the least work and with an exact
   normaliser's tests, each compared with the straightforward receiver and the
   import goal: the goals set against what this machine can do at all.
6. Prints the figures and whether each goal is met. --quick (CI) never fails on a
   goal; a full run exits 1 when one is missed; setup or correctness failures exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest_floor import measure_floors
from serving import (
    HOST,
    BenchError,
    Server,
    basic,
    benchmark_env,
    cpu_seconds_by_pid,
    tree_cpu_seconds,
    tree_memory_bytes,
)

HERE = Path(__file__).resolve().parent
NOW = "2026-11-20T12:00:00Z"  # the stream ends on the 19th: every event is of a closed day
END_DAY = dt.date(2026, 11, 19)
BATCH_BYTES = 768 * 1024
BATCH_EVENTS = 2_500
GOAL_HTTP = 100_000
GOAL_RATIO = 50.0
GOAL_IMPORT = 300_000
GOAL_MEMORY = 1 << 30


def machine_line() -> str:
    from importlib.metadata import version

    load = os.getloadavg()
    names = ["fastapi", "uvicorn", "msgspec", "pyarrow", "duckdb", "sqlalchemy"]
    return (f"{platform.node()}: {os.cpu_count()} CPUs, load average {load[0]:.2f} "
            f"{load[1]:.2f} {load[2]:.2f}; Python {platform.python_version()}; "
            + ", ".join(f"{n} {version(n)}" for n in names))


# --------------------------------------------------------------------- data


def stream(volume_scale: float, days: int) -> Iterator[tuple[str, bytes]]:
    """(account, one event's compact JSON), in arrival order, forever varying."""
    from seqscore.demo import default_plans, generate
    from seqscore.demo.webhook import encode_event

    for batch in generate(default_plans(7, volume_scale=volume_scale), days=days,
                          end_day=END_DAY):
        for event in batch.events:
            yield batch.account, encode_event(event)


def webhook_bodies(n_events: int) -> list[tuple[str, bytes, int]]:
    """Bodies of at most BATCH_BYTES / BATCH_EVENTS per account: (account, body, events)."""
    open_batches: dict[str, list[bytes]] = {}
    sizes: dict[str, int] = {}
    bodies: list[tuple[str, bytes, int]] = []
    total = 0
    for account, event in stream(volume_scale=6, days=30):
        batch = open_batches.setdefault(account, [])
        if batch and (len(batch) >= BATCH_EVENTS
                      or sizes[account] + len(event) + 1 > BATCH_BYTES):
            bodies.append((account, b"[" + b",".join(batch) + b"]", len(batch)))
            total += len(batch)
            batch.clear()
            sizes[account] = 2
            if total >= n_events:
                return bodies
        batch.append(event)
        sizes[account] = sizes.get(account, 2) + len(event) + 1
    raise BenchError("the demo stream ended before enough events were generated")


def write_jsonl(path: Path, n_events: int) -> int:
    """A JSON Lines file of ``n_events`` events: the demo stream's first half million,
    then again with other ``sg_event_id``s (same audiences, more mail)."""
    base = [event for _, event in zip(range(min(n_events, 500_000)),
                                      (e for _, e in stream(volume_scale=6, days=30)),
                                      strict=False)]
    written = 0
    with path.open("wb", buffering=8 << 20) as out:
        round_ = 0
        while written < n_events:
            part = base[: n_events - written]
            if round_:
                marker = b'"sg_event_id":"r%d.' % round_
                part = [e.replace(b'"sg_event_id":"', marker, 1) for e in part]
            out.write(b"\n".join(part) + b"\n")
            written += len(part)
            round_ += 1
    return written


def seed(data_dir: Path, accounts: list[str]) -> dict[str, str]:
    """Accounts with an events.write key each; the day's scheduling, retention and
    compaction are marked done, so the in-process worker stays idle."""
    from seqscore.clock import FrozenClock, parse_instant
    from seqscore.service.schedule import COMPACTED_AT, RETAINED_ON, SCHEDULED_THROUGH
    from seqscore.service.services import Services
    from seqscore.settings import Settings

    clock = FrozenClock(parse_instant(NOW))
    services = Services.open(Settings(data_dir=data_dir, worker=False), clock=clock)
    try:
        keys = {}
        for name in accounts:
            account = services.accounts.create_account(name, email=f"{name}@example.test")
            keys[name] = services.accounts.create_key(
                account, name="bench", scopes=frozenset({"events.write"})).api_key
        services.state.advance_counter(SCHEDULED_THROUGH, END_DAY.toordinal())
        services.state.advance_counter(RETAINED_ON, clock.now().date().toordinal())
        services.state.advance_counter(COMPACTED_AT, int(clock.now().timestamp()))
        return keys
    finally:
        services.close()


def post_all(port: int, bodies: list[tuple[str, bytes, int]], keys: dict[str, str],
             clients: int) -> tuple[float, dict[str, int]]:
    """Post every body from ``clients`` threads; (seconds first send .. last answer, totals)."""
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    totals = {"accepted": 0, "rejected": 0, "duplicates": 0, "events": 0}
    failures: list[str] = []
    ready = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=300)
        ready.wait()
        while not failures:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            account, payload, count = bodies[index]
            try:
                conn.request("POST", "/api/v1/events/sendgrid", body=payload,
                             headers={"Authorization": basic(keys[account]),
                                      "Content-Type": "application/json"})
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"POST failed: {exc}")
                return
            if response.status != 200:
                failures.append(f"HTTP {response.status}: {answer[:300]!r}")
                return
            data = json.loads(answer)
            if data["accepted"] + data["rejected"] + data.get("duplicates", 0) != count:
                failures.append(f"answer {data} does not add up to {count} events")
                return
            with lock:
                for name in ("accepted", "rejected", "duplicates"):
                    totals[name] += data.get(name, 0)
                totals["events"] += count

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise BenchError(failures[0])
    return elapsed, totals


# ---------------------------------------------------------------- measuring


def measure_seqscore(tmp: Path, bodies: list[tuple[str, bytes, int]], clients: int,
                     processes: str, env: dict[str, str]) -> dict[str, Any]:
    data_dir = tmp / f"serve-{processes}"
    if processes == "auto":
        cores = os.cpu_count() or 1
        processes = f"auto: {cores if cores > 1 else 0}"
    keys = seed(data_dir, sorted({a for a, _, _ in bodies}))
    server = Server(f"seqscore (ingest_processes={processes})",
                    [sys.executable, "-m", "seqscore", "serve", "--port", "{port}"],
                    {**env, "SEQSCORE_DATA_DIR": str(data_dir),
                     **({} if processes.startswith("auto") else
                        {"SEQSCORE_INGEST_PROCESSES": processes})},
                    tmp / f"serve-{processes}.log")
    server.start().wait_ready()
    try:
        assert server.proc is not None
        _, warm = post_all(server.port, bodies[:clients], keys, clients)  # connections, caches
        cpu0 = tree_cpu_seconds(server.proc.pid)
        elapsed, totals = post_all(server.port, bodies[clients:], keys, clients)
        cpu = tree_cpu_seconds(server.proc.pid) - cpu0
    finally:
        server.stop()
    from seqscore.storage.duckdb_events import DuckDBEventStore

    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        stored = store.count()
    finally:
        store.close()
    if stored != warm["accepted"] + totals["accepted"]:
        raise BenchError(f"{server.name}: {stored} events stored, "
                         f"{warm['accepted'] + totals['accepted']} accepted")
    return {"name": server.name, "events": totals["events"], "seconds": elapsed,
            "rate": totals["events"] / elapsed, "cpu_us": cpu / totals["events"] * 1e6,
            "accepted": totals["accepted"], "duplicates": totals["duplicates"],
            "rejected": totals["rejected"], "stored": stored - warm["accepted"]}


def measure_straightforward(tmp: Path, bodies: list[tuple[str, bytes, int]], clients: int,
                            env: dict[str, str]) -> dict[str, Any]:
    key = "SG.straightforward"
    server = Server("straightforward", [sys.executable, str(HERE / "straightforward_ingest.py"),
                                        "--db", str(tmp / "straightforward.sqlite3"),
                                        "--key", key, "--port", "{port}"],
                    env, tmp / "straightforward.log")
    server.start().wait_ready()
    try:
        keys = {a: key for a, _, _ in bodies}
        post_all(server.port, bodies[:2], keys, 2)
        elapsed, totals = post_all(server.port, bodies[2:], keys, clients)
    finally:
        server.stop()
    return {"name": server.name, "events": totals["events"], "seconds": elapsed,
            "rate": totals["events"] / elapsed}


def measure_import(tmp: Path, n_events: int, env: dict[str, str]) -> dict[str, Any]:
    """``seqscore import`` of a JSON Lines file of ``n_events`` events, made in ``tmp``
    and left there (``path`` in the result) for the floors."""
    path = tmp / "history.jsonl"
    t0 = time.perf_counter()
    lines = write_jsonl(path, n_events)
    made = time.perf_counter() - t0
    data_dir = tmp / "import"
    seed(data_dir, ["history"])
    run_env = {**env, "SEQSCORE_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "seqscore", "import", str(path),
                             "--account", "history"], env=run_env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    peak = 0
    cpu: dict[int, float] = {}  # the last figure seen of every process of the tree
    while proc.poll() is None:
        peak = max(peak, tree_memory_bytes(proc.pid))
        cpu.update(cpu_seconds_by_pid(proc.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    output = proc.stdout.read() if proc.stdout else b""
    if proc.returncode != 0:
        raise BenchError(f"seqscore import failed ({proc.returncode}): {output[-2000:]!r}")
    counts = json.loads(output)
    if counts["accepted"] + counts["rejected"] + counts["duplicates"] != lines:
        raise BenchError(f"import counts {counts} do not add up to {lines} lines")
    return {"path": path, "events": lines, "bytes": path.stat().st_size, "seconds": elapsed,
            "rate": lines / elapsed, "peak_memory": peak, "made_s": made, "counts": counts,
            "cpu_us": sum(cpu.values()) / lines * 1e6}


# --------------------------------------------------------------------- main


def verdict(met: bool) -> str:
    return "goal met" if met else "goal missed"


def main() -> int:
    parser = argparse.ArgumentParser(description="Ingest speed: receiver and import")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, for CI: never fails on goals")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--http-events", type=int, default=None,
                        help="events posted to seqscore (default 1,000,000; 150,000 --quick)")
    parser.add_argument("--import-events", type=int, default=None,
                        help="events in the imported file (default 5,000,000; 300,000 --quick)")
    parser.add_argument("--processes", default=None,
                        help="comma-separated SEQSCORE_INGEST_PROCESSES values to measure, "
                             "auto for unset (default 0,auto; auto with --quick)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    http_events = args.http_events or (150_000 if args.quick else 1_000_000)
    import_events = args.import_events or (300_000 if args.quick else 5_000_000)
    processes = (args.processes or ("auto" if args.quick else "0,auto")).split(",")

    print(f"machine: {machine_line()}")
    print(f"mode: {'quick' if args.quick else 'full'}; {args.clients} clients; "
          f"{http_events:,} events over HTTP; import of {import_events:,} events")
    tmp = Path(tempfile.mkdtemp(prefix="seqscore-ingest-bench-"))
    env = benchmark_env()
    env.update({"SEQSCORE_NOW": NOW, "SEQSCORE_LOG_LEVEL": "warning", "SEQSCORE_HOST": HOST})
    try:
        t0 = time.perf_counter()
        bodies = webhook_bodies(http_events + args.clients * BATCH_EVENTS)
        size = sum(len(b) for _, b, _ in bodies) / len(bodies)
        events = sum(n for _, _, n in bodies) / len(bodies)
        print(f"data: {len(bodies)} bodies of {size / 1024:.0f} KB and {events:,.0f} events on "
              f"average, {len({a for a, _, _ in bodies})} accounts "
              f"({time.perf_counter() - t0:.1f}s to generate)")
        results = [measure_seqscore(tmp, bodies, args.clients, p, env) for p in processes]
        for r in results:
            print(f"{r['name']}: {r['events']:,} events in {r['seconds']:.2f}s = "
                  f"{r['rate']:,.0f} events/s; server CPU {r['cpu_us']:.1f} µs/event; "
                  f"accepted {r['accepted']:,}, duplicates {r['duplicates']:,}, rejected "
                  f"{r['rejected']:,}; {r['stored']:,} rows stored and durable")
        plain_bodies = bodies[: (6 if args.quick else 24) + 2]
        plain = measure_straightforward(tmp, plain_bodies, args.clients, env)
        print(f"straightforward: {plain['events']:,} events in {plain['seconds']:.2f}s = "
              f"{plain['rate']:,.0f} events/s")
        best = max(results, key=lambda r: r["rate"])
        ratio = best["rate"] / plain["rate"]
        imported = measure_import(tmp, import_events, env)
        print(f"import: {imported['events']:,} events, {imported['bytes'] / 2**20:,.0f} MiB of "
              f"JSON Lines (made in {imported['made_s']:.1f}s) in {imported['seconds']:.1f}s = "
              f"{imported['rate']:,.0f} events/s; peak memory "
              f"{imported['peak_memory'] / 2**20:,.0f} MiB (PSS, command + parser processes); "
              f"CPU {imported['cpu_us']:.1f} µs/event (all of them)")
        floors = measure_floors(imported["path"], imported["events"], tmp)
        for floor in floors:
            print(f"floor, DuckDB alone, {floor['name']}: {floor['rows']:,} lines in "
                  f"{floor['seconds']:.1f}s = {floor['rate']:,.0f} events/s, CPU "
                  f"{floor['cpu_us']:.1f} µs/event; {floor['rate'] / plain['rate']:.0f}x the "
                  f"straightforward receiver, {floor['rate'] / GOAL_IMPORT:.2f} of the import goal"
                  + ("" if floor["plain"] is None else
                     f"; {floor['plain'] / floor['rows']:.1%} of lines plain"))
    except BenchError as exc:
        print(f"ingest.py: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    goals = [
        (f"HTTP >= {GOAL_HTTP:,} events/s", best["rate"] >= GOAL_HTTP, f"{best['rate']:,.0f}"),
        (f">= {GOAL_RATIO:.0f}x the straightforward receiver", ratio >= GOAL_RATIO,
         f"{ratio:.0f}x"),
        (f"import >= {GOAL_IMPORT:,} events/s", imported["rate"] >= GOAL_IMPORT,
         f"{imported['rate']:,.0f}"),
        ("import memory < 1 GiB", imported["peak_memory"] < GOAL_MEMORY,
         f"{imported['peak_memory'] / 2**20:,.0f} MiB"),
    ]
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, met, figure in goals:
        print(f"{label}: {figure}: {verdict(met)}")
    if args.quick:
        return 0
    return 0 if all(met for _, met, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
