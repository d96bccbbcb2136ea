"""Speed of the SEQ API (/v3): seqscore against the straightforward build, one command.

    .venv/bin/python benchmarks/api_seq.py [--duration S] [--quick] [--worker]

Figures and how to read them: docs/performance.md ("SEQ API (/v3)").

What it does, all on 127.0.0.1:

1. Prepares a temp data dir: a parent with 1,000 subusers, a result for every
   child for the day, 30 days of results for the parent, a full-access key; the
   clock is fixed (SEQSCORE_NOW) and the rate limit set high enough never to
   answer 429 while every request is still counted.
2. Starts two real servers, one uvicorn worker each (uvloop + httptools, checked
   in the process's memory map): ``seqscore serve`` and the straightforward build
   (benchmarks/straightforward_app.py: FastAPI + pydantic ``response_model``s,
   the same auth/rate-limit/validation calls, no answer cache).
3. Checks both return identical JSON (and rate-limit headers) for the two
   requests; aborts otherwise.
4. Measures the 1,000-entry page's cache-miss latency on seqscore (the first
   request of a fresh process, then misses forced by bumping the results
   generation, as a daily recompute does).
5. For each endpoint and build: ``wrk -t1 -c16`` for the maximum rate (closed
   loop), then benchmarks/openloop.py at half that rate for the p99 (open loop,
   latency from the intended send time; plain wrk cannot hold a rate and Debian
   has no wrk2), and for seqscore also at half the goal rate (the goal's p99).
   Without wrk, ``--quick`` measures the maximum rate with ``openloop.py
   --closed``; a full run needs wrk.
6. Prints the table, the ratios and whether each goal is met. ``--quick`` (a
   few seconds per measurement, for CI) never fails on goals; a full run exits 1
   when a goal is missed. Setup or correctness failures exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from serving import HOST, BenchError, Server, benchmark_env

HERE = Path(__file__).resolve().parent
NOW = "2026-11-20T12:00:00Z"  # Friday noon UTC: 2026-11-19 is the newest closed day
DAY = dt.date(2026, 11, 19)
FIRST_DAY = DAY - dt.timedelta(days=29)  # 30 days, both ends included
N_CHILDREN = 1000
PARENT_ID = 1
FIRST_CHILD_ID = 1001
RATE_LIMIT = 100_000_000  # never reached, still counted and sent in X-RateLimit-*
CONNECTIONS = 16

ENDPOINTS = {
    "page": f"/v3/engagementquality/subusers/scores?date={DAY.isoformat()}",
    "scores30": (f"/v3/engagementquality/scores?from={FIRST_DAY.isoformat()}"
                 f"&to={DAY.isoformat()}"),
}
LABELS = {"page": "/subusers/scores (1,000 entries)", "scores30": "/scores (30 days)"}
GOAL_RPS = {"page": 1500.0, "scores30": 3000.0}
GOAL_P99_MS = 40.0
GOAL_RATIO = 2.0


# ------------------------------------------------------------------ machine


def machine_line() -> str:
    load = os.getloadavg()
    return (f"{platform.node()}: {os.cpu_count()} CPUs, load average {load[0]:.2f} "
            f"{load[1]:.2f} {load[2]:.2f}; Python {platform.python_version()}; "
            f"{_versions()}; {_wrk_version()}")


def _versions() -> str:
    from importlib.metadata import version

    names = ["seqscore", "fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools",
             "orjson", "sqlalchemy"]
    out = []
    for name in names:
        try:
            out.append(f"{name} {version(name)}")
        except Exception:  # informative only
            out.append(f"{name} ?")
    return ", ".join(out)


def _wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "wrk not installed"
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk \S+", proc.stdout + proc.stderr)
    return match.group(0) if match else "wrk ?"


# --------------------------------------------------------------------- data


def seed(data_dir: Path) -> str:
    """Create the accounts, results and key; returns the parent's full-access key."""
    from seqscore.clock import FrozenClock, parse_instant
    from seqscore.service.accounts import parse_scopes
    from seqscore.service.services import Services
    from seqscore.settings import Settings
    from seqscore.types import METRIC_NAMES, AccountKind, DayResult, Eligibility

    clock = FrozenClock(parse_instant(NOW))
    services = Services.open(Settings(data_dir=data_dir, worker=False), clock=clock)
    try:
        accounts = services.accounts
        parent = accounts.create_account("bench-parent", user_id=PARENT_ID,
                                         email="parent@example.test")
        children = [
            accounts.create_account(
                f"bench-child-{i:04d}", parent=parent, user_id=FIRST_CHILD_ID + i,
                kind=AccountKind.CUSTOMER if i % 10 == 9 else AccountKind.SUBUSER,
                email=f"child{i}@example.test")
            for i in range(N_CHILDREN)
        ]

        def result(account_id: int, day: dt.date, i: int) -> DayResult:
            if i % 13 == 12:  # some accounts are not eligible: no score, no metrics
                return DayResult(account_id=account_id, day=day, score=None, metrics=None,
                                 eligibility=Eligibility.LOW_VOLUME, model_version="bench",
                                 computed_at=clock.now())
            metrics = {name: 1 + (i + k) % 5 for k, name in enumerate(METRIC_NAMES)}
            return DayResult(
                account_id=account_id, day=day, score=1 + i % 5, metrics=metrics,
                eligibility=Eligibility.ELIGIBLE, model_version="bench", computed_at=clock.now(),
                counts={"delivered_long": 10_000 + i, "processed_long": 10_500 + i},
                rates={"open_rate": (1_000 + i, 10_000 + i)},
                explanation={"note": "benchmark data", "i": i})

        results = [result(c.user_id, DAY, i) for i, c in enumerate(children)]
        results += [result(parent.user_id, FIRST_DAY + dt.timedelta(days=d), d)
                    for d in range(30)]
        services.state.upsert_results(results)
        # the day's scheduling and retention are done, so an in-process worker (--worker)
        # stays idle instead of recomputing every account from (absent) events
        from seqscore.service.schedule import RETAINED_ON, SCHEDULED_THROUGH

        services.state.advance_counter(SCHEDULED_THROUGH, DAY.toordinal())
        services.state.advance_counter(RETAINED_ON, clock.now().date().toordinal())
        return services.accounts.create_key(parent, name="bench",
                                            scopes=parse_scopes(None)).api_key
    finally:
        services.close()


def bump_results_generation(data_dir: Path, n: int) -> Iterator[None]:
    """Yields ``n`` times, each after rewriting one stored result unchanged.

    The rewrite bumps the results generation, exactly what a recompute does, so
    the server's next answer is a genuine cache miss (same data, new version).
    """
    from seqscore.settings import Settings
    from seqscore.storage.state import StateStore

    state = StateStore.open(Settings(data_dir=data_dir).resolved_state_url)
    try:
        one = state.get_results_for_accounts([FIRST_CHILD_ID], DAY)[FIRST_CHILD_ID]
        for _ in range(n):
            state.upsert_results([one])
            yield
    finally:
        state.close()


def get(port: int, path: str, api_key: str | None, *,
        timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# -------------------------------------------------------------- correctness


def verify_same_answers(servers: list[Server], api_key: str) -> dict[str, int]:
    """Both builds must give the same status, JSON and rate-limit header for both requests."""
    sizes = {}
    for ep, path in ENDPOINTS.items():
        answers = []
        for server in servers:
            status, headers, body = get(server.port, path, api_key)
            if status != 200:
                raise BenchError(f"{server.name} {path}: HTTP {status}: {body[:300]!r}")
            if not headers.get("content-type", "").startswith("application/json"):
                raise BenchError(f"{server.name} {path}: content-type "
                                 f"{headers.get('content-type')}")
            for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
                if name not in headers:
                    raise BenchError(f"{server.name} {path}: no {name} header")
            if headers["x-ratelimit-limit"] != str(RATE_LIMIT):
                raise BenchError(f"{server.name} {path}: X-RateLimit-Limit "
                                 f"{headers['x-ratelimit-limit']}, want {RATE_LIMIT}")
            answers.append((server.name, json.loads(body), len(body)))
        (name_a, json_a, size_a), (name_b, json_b, _) = answers
        if json_a != json_b:
            raise BenchError(f"{path}: {name_a} and {name_b} answer differently")
        result = json_a["result"]
        want = N_CHILDREN if ep == "page" else 30
        if len(result) != want or "_metadata" in json_a:
            raise BenchError(f"{path}: {len(result)} entries, want {want} and no _metadata")
        sizes[ep] = size_a
    return sizes


# ---------------------------------------------------------------- measuring


def run_wrk(port: int, path: str, api_key: str, duration: float) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(duration))}s", "--latency",
            "--timeout", "10s", "-s", str(HERE / "wrk_auth.lua"), f"http://{HOST}:{port}{path}"]
    env = {**os.environ, "SEQ_BENCH_API_KEY": api_key}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"WRK_JSON (\{.*\})", proc.stdout)
    if proc.returncode != 0 or not match:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    out: dict[str, Any] = json.loads(match.group(1))
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    bad = {k: out[k] for k in ("connect_errors", "read_errors", "write_errors",
                               "status_errors", "timeouts") if out[k]}
    if bad:
        raise BenchError(f"wrk {path}: errors {bad} (a 429 counts as a status error)")
    return out


def run_max(port: int, path: str, api_key: str, duration: float,
            use_wrk: bool) -> dict[str, Any]:
    """The maximum rate: wrk, or (quick mode without wrk) openloop.py in closed loop."""
    if use_wrk:
        return run_wrk(port, path, api_key, duration)
    out = run_openloop(port, path, api_key, None, duration)
    out["rps"] = out["achieved_rate"]
    out["requests"] = out["completed"]
    out["duration_us"] = out["completed"] / out["achieved_rate"] * 1e6
    return out


def run_openloop(port: int, path: str, api_key: str, rate: float | None,
                 duration: float) -> dict[str, Any]:
    """openloop.py at ``rate`` per second (None: closed loop, as fast as answered)."""
    argv = [sys.executable, str(HERE / "openloop.py"), "--port", str(port), "--path", path,
            *(["--closed"] if rate is None else ["--rate", f"{rate:.1f}"]),
            "--duration", str(duration), "--connections", str(CONNECTIONS)]
    env = {**os.environ, "SEQ_BENCH_API_KEY": api_key}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"OPENLOOP_JSON (\{.*\})", proc.stdout)
    if proc.returncode != 0 or not match:
        raise BenchError(f"openloop failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    out: dict[str, Any] = json.loads(match.group(1))
    bad = {k: out[k] for k in ("non_2xx", "protocol_errors", "lost_connections", "unanswered")
           if out[k]}
    if bad:
        raise BenchError(f"openloop {path}: errors {bad}")
    return out


def measure_misses(server: Server, data_dir: Path, api_key: str, n: int) -> dict[str, float]:
    """Latency of the 1,000-entry page when the answer cache cannot help (ms)."""
    path = ENDPOINTS["page"]
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    headers = {"Authorization": f"Bearer {api_key}"}

    def one() -> float:
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        elapsed = time.perf_counter() - start
        if resp.status != 200:
            raise BenchError(f"cache-miss run: HTTP {resp.status}")
        return elapsed * 1e3

    try:
        first = one()  # the first request of a fresh process (health checks aside)
        misses = [one() for _ in bump_results_generation(data_dir, n)]
        hits = [one() for _ in range(n)]
    finally:
        conn.close()
    misses.sort()
    return {"first_ms": first, "miss_p50_ms": statistics.median(misses),
            "miss_max_ms": misses[-1], "hit_p50_ms": statistics.median(hits), "n": n}


# ------------------------------------------------------------------- report


def fmt_ms(us: float) -> str:
    return f"{us / 1e3:.1f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    """Max rate (wrk): req/s, p50, p99. Open loop: p99 at half the max rate and, for
    seqscore, at half the goal rate. CPU: server CPU time per request at max rate."""
    head = (f"{'endpoint':<33} {'build':<15} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'1/2 max req/s':>13} {'p99 ms':>7}{'goal/2 req/s':>13} {'p99 ms':>7} "
            f"{'CPU us/req':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        goal = (f"{r['goal_rate']:>12.0f} {fmt_ms(r['goal_p99_us']):>7}" if "goal_rate" in r
                else f"{'-':>12} {'-':>7}")
        print(f"{LABELS[r['endpoint']]:<33} {r['build']:<15} {r['rps']:>7.0f} "
              f"{fmt_ms(r['p50_us']):>7} {fmt_ms(r['p99_us']):>7} "
              f"{r['half_rate']:>13.0f} {fmt_ms(r['half_p99_us']):>7}"
              f"{' ' if r['half_held'] else '*'}{goal} {r['cpu_us']:>10.0f}")
    if not all(r["half_held"] for r in rows):
        print("* the open-loop run fell behind its schedule (server and load generator "
              "together could not hold that rate on this machine at this load)")


def main() -> int:
    parser = argparse.ArgumentParser(description="SEQ API speed: seqscore vs straightforward")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per measurement (default 10; 3 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds per measurement, for CI: never fails on goals")
    parser.add_argument("--worker", action="store_true",
                        help="run seqscore with its in-process worker (the default of "
                             "`seqscore serve`; idle here); the straightforward build cannot "
                             "share the event store's single-writer file and runs without")
    parser.add_argument("--misses", type=int, default=None,
                        help="cache-miss requests to time (default 30; 5 with --quick)")
    args = parser.parse_args()
    # a SIGTERM (e.g. a CI timeout) unwinds through the finally below: servers are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    duration = args.duration or (3.0 if args.quick else 10.0)
    n_misses = args.misses or (5 if args.quick else 30)
    warmup = 1.0 if args.quick else 2.0

    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        print("api_seq.py: `wrk` is not installed. It is in Debian/Ubuntu: "
              "`apt-get install -y wrk` (macOS: `brew install wrk`).", file=sys.stderr)
        if not args.quick:
            print("api_seq.py: a full run needs wrk; install it and run again.", file=sys.stderr)
            return 2
        print("api_seq.py: --quick goes on with benchmarks/openloop.py --closed for the "
              "maximum rate (a Python client: lower figures than wrk's).", file=sys.stderr)

    print(f"machine: {machine_line()}")
    max_tool = f"wrk -t1 -c{CONNECTIONS}" if use_wrk else f"openloop.py --closed -c{CONNECTIONS}"
    print(f"mode: {'quick' if args.quick else 'full'}, {duration:g}s per measurement, "
          f"{max_tool} (max rate), openloop.py at half that rate (p99); seqscore "
          f"{'with its in-process worker' if args.worker else 'serve --no-worker'}")
    tmp = Path(tempfile.mkdtemp(prefix="seqscore-bench-"))
    servers: list[Server] = []
    try:
        data_dir = tmp / "data"
        t0 = time.perf_counter()
        api_key = seed(data_dir)
        print(f"data: parent + {N_CHILDREN} children with results for {DAY}, 30 days for the "
              f"parent ({time.perf_counter() - t0:.1f}s to seed {data_dir})")

        # only our settings: none of the caller's SEQSCORE_* (a state URL, a model...)
        env = benchmark_env()
        env.update({"SEQSCORE_DATA_DIR": str(data_dir), "SEQSCORE_NOW": NOW,
                    "SEQSCORE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
                    "SEQSCORE_WORKER": "false", "SEQSCORE_LOG_LEVEL": "warning",
                    "SEQSCORE_HOST": HOST,
                    # no webhook parser processes: this benchmark ingests nothing, and
                    # the one-process check below counts child processes
                    "SEQSCORE_INGEST_PROCESSES": "0"})
        seqscore = Server("seqscore", [sys.executable, "-m", "seqscore", "serve",
                                       *([] if args.worker else ["--no-worker"]),
                                       "--host", HOST, "--port", "{port}"],
                          {**env, "SEQSCORE_WORKER": "true" if args.worker else "false"},
                          tmp / "seqscore.log")
        plain = Server("straightforward", [sys.executable, str(HERE / "straightforward_app.py"),
                                           "--data-dir", str(data_dir), "--port", "{port}"],
                       env, tmp / "straightforward.log")
        servers = [seqscore, plain]
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
            print(f"server {server.name}: 127.0.0.1:{server.port}, "
                  f"{server.check_loop_and_parser()}")

        misses = measure_misses(seqscore, data_dir, api_key, n_misses)
        sizes = verify_same_answers(servers, api_key)
        print(f"correctness: both builds give identical JSON and X-RateLimit-* headers "
              f"(page {sizes['page']:,} bytes, 30-day answer {sizes['scores30']:,} bytes)")
        print(f"cache miss, 1,000-entry page (seqscore): first request of the process "
              f"{misses['first_ms']:.1f} ms; after a results change {misses['miss_p50_ms']:.1f} ms "
              f"median, {misses['miss_max_ms']:.1f} ms max ({misses['n']} misses); "
              f"cached {misses['hit_p50_ms']:.2f} ms median (one client, sequential)")
        print()

        rows = []
        for ep, path in ENDPOINTS.items():
            for server in servers:
                run_max(server.port, path, api_key, warmup, use_wrk)
                cpu0 = server.cpu_seconds()
                peak = run_max(server.port, path, api_key, duration, use_wrk)
                cpu_s = server.cpu_seconds() - cpu0
                cpu = cpu_s / (peak["duration_us"] / 1e6)
                half = run_openloop(server.port, path, api_key, peak["rps"] / 2, duration)
                row = {"endpoint": ep, "build": server.name, "rps": peak["rps"],
                       "p50_us": peak["p50_us"], "p99_us": peak["p99_us"],
                       "half_rate": half["achieved_rate"], "half_p99_us": half["p99_us"],
                       "half_held": half["achieved_rate"] >= 0.97 * half["target_rate"],
                       "server_cpu": cpu, "cpu_us": cpu_s / peak["requests"] * 1e6}
                rows.append(row)
                print(f"  {ep:<8} {server.name:<15} {peak['rps']:8.0f} req/s "
                      f"(server busy {cpu:.0%} of a core, {row['cpu_us']:.0f} us CPU "
                      f"per request); at half that, {half['achieved_rate']:.0f} req/s: "
                      f"p50 {fmt_ms(half['p50_us'])} ms, p99 {fmt_ms(half['p99_us'])} ms, "
                      f"max {fmt_ms(half['max_us'])} ms", flush=True)
                if server is seqscore:  # the goal's own rate: half the req/s goal
                    at_goal = run_openloop(server.port, path, api_key, GOAL_RPS[ep] / 2,
                                           duration)
                    row["goal_rate"] = at_goal["achieved_rate"]
                    row["goal_p99_us"] = at_goal["p99_us"]
                    print(f"  {'':<8} {'':<15} at the goal's half rate, "
                          f"{at_goal['achieved_rate']:.0f} req/s: "
                          f"p50 {fmt_ms(at_goal['p50_us'])} ms, "
                          f"p99 {fmt_ms(at_goal['p99_us'])} ms, "
                          f"max {fmt_ms(at_goal['max_us'])} ms", flush=True)
        print()
        print(f"load after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print()
        print_table(rows)
        print()

        by = {(r["endpoint"], r["build"]): r for r in rows}
        all_met = True
        for ep in ENDPOINTS:
            ours, theirs = by[(ep, "seqscore")], by[(ep, "straightforward")]
            ratio = ours["rps"] / theirs["rps"]
            checks = [
                (f"req/s {ours['rps']:.0f} >= {GOAL_RPS[ep]:.0f}", ours["rps"] >= GOAL_RPS[ep]),
                (f"p99 {fmt_ms(ours['goal_p99_us'])} ms < {GOAL_P99_MS:.0f} ms at "
                 f"{ours['goal_rate']:.0f} req/s (half the goal's {GOAL_RPS[ep]:.0f})",
                 ours["goal_p99_us"] / 1e3 < GOAL_P99_MS
                 and ours["goal_rate"] >= 0.98 * GOAL_RPS[ep] / 2),
                (f"{ratio:.1f}x the straightforward build (>= {GOAL_RATIO:.0f}x)",
                 ratio >= GOAL_RATIO),
            ]
            print(f"{LABELS[ep]}: seqscore/straightforward = {ratio:.1f}x")
            for text, met in checks:
                all_met &= met
                print(f"  {'goal met   ' if met else 'goal missed'}  {text}")
        if args.quick:
            return 0
        return 0 if all_met else 1
    except BenchError as exc:
        print(f"api_seq.py: aborted: {exc}", file=sys.stderr)
        return 2
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
