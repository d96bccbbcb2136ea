"""Soak: webhook ingestion and API reads at the same time, for minutes, on one server.

    benchmarks/soak [--duration-s 300] [--quick] [--events-per-s 10000] [--reads-per-s 100]

Figures and how to read them: docs/performance.md ("Soak"). Everything runs on
127.0.0.1 and stops by itself after ``--warmup-s`` + ``--duration-s``.

1. Data dir: the demo's accounts (seqscore.demo, seed 11: a parent, 10 subusers
   and a customer account, one per sending profile), an ``events.write`` key per
   account (each account's webhook posts with its own, in HTTP Basic credentials,
   as SendGrid sends them) and a full-access key of the parent for the readers.
2. Events: the demo generator's stream of those accounts over the 7 days ending
   yesterday (real clock), at 8x volume, cut by the generator as SendGrid batches
   them (at most 768 KB and 2,500 events; some batches sent twice whole, some
   events twice or hours late). The stream is posted again and again; each round
   after the first rewrites every ``sg_event_id`` (``r<round>.<id>``), so every
   round is new mail. Every event is of a closed day: each batch marks the
   results it changes stale and queues their recomputation, and the readers' 202
   answers queue the days they ask for, so the worker computes throughout.
3. Server: a real ``seqscore serve`` (its in-process worker and scheduler on, the
   embedded SQLite + DuckDB, webhook parser processes as by default) on a free
   port; the rate limit is raised so readers never see 429, the event store is
   compacted every minute (default 60) so that compaction runs under load, and
   DuckDB is capped at 128 MB with a checkpoint every 16 MB of WAL (defaults 1 GB
   and 128 MB) so that its caches fill during the warm-up: with the defaults the
   process keeps growing while DuckDB caches blocks of the growing file up to its
   1 GB (+51 % in a 5-minute run), which is a cache, not a leak, and would hide
   one. ``--server-env NAME=VALUE`` overrides any of these.
4. Load, for ``--warmup-s`` (not in the figures; default a sixth of
   ``--duration-s``, at least 60 s) then ``--duration-s``:
   ``--senders`` threads post the bodies in stream order on a schedule of
   ``--events-per-s`` (keep-alive; a batch without a 2xx answer is retried, up to
   6 attempts, as SendGrid does; every failed attempt is an error);
   ``--readers`` threads at ``--reads-per-s`` in all, each cycling through
   GET /v3/engagementquality/scores (parent or a child by ``on-behalf-of``,
   1..30 days), GET /v3/engagementquality/subusers/scores, GET
   /api/v1/scores/{date} and the dashboard's overview page (logged in once,
   session cookie). 200 and 202 are answers; anything else is an error.
5. Every ``--sample-s``: the server's resident set and open file descriptors
   (/proc/PID/status, /proc/PID/fd), of the process and of its whole tree
   (the parser processes included).
6. Stops the server (SIGTERM), then checks in its files: the event store holds
   every acknowledged event (distinct (account, event id) = those of the
   acknowledged bodies; rows <= accepted, the rest removed by compaction), no job
   failed, the server logged no error.
7. Prints the table and the verdicts. Exit 1 on any error, lost event or growth
   (--quick too: these are correctness, not speed), except memory growth in a
   --quick run, which is printed but not enforced: its 30 s cannot tell a leak from
   caches growing with the store; 2 if the set-up failed.

Flat: after the warm-up, the smallest resident set of the last third of the
measured period is within +10 % of the first third's (the fd count within +10),
for the server process and for its tree; the largest are printed beside them.
Memory rises and falls with each checkpoint and computation (a median would
depend on where in that cycle a window falls); whatever is kept lifts the
troughs, while one spike in a short window lifts only a peak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from serving import (
    HOST,
    BenchError,
    Server,
    basic,
    benchmark_env,
    load_average,
    process_tree,
    tree_cpu_seconds,
)

PLAN_SEED = 11
ACCOUNTS = 12  # the parent, one subuser per special profile, a customer account
DAYS = 7
VOLUME_SCALE = 8.0
RATE_LIMIT = 100_000_000  # per key and minute: never reached, still counted
POST_ATTEMPTS = 6
POST_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 30.0
RSS_TOLERANCE = 0.10
FD_TOLERANCE = 10

INGEST = "POST /api/v1/events/sendgrid"
SCORES = "GET /v3/engagementquality/scores"
SUBUSERS = "GET /v3/engagementquality/subusers/scores"
EXPLAIN = "GET /api/v1/scores/{date}"
OVERVIEW = "GET / (dashboard overview)"
READS = [SCORES, SUBUSERS, EXPLAIN, OVERVIEW]
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def machine_line() -> str:
    from importlib.metadata import version

    names = ["seqscore", "uvicorn", "msgspec", "pyarrow", "duckdb", "sqlalchemy"]
    return (f"{platform.node()}: {os.cpu_count()} CPUs, load average {load_average()}; "
            f"Python {platform.python_version()}; "
            + ", ".join(f"{n} {version(n)}" for n in names))


# --------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Body:
    """One webhook POST of the stream: its account, JSON, event count and event ids."""

    account: str
    payload: bytes
    events: int
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reader:
    """What the readers need: the parent's key, the accounts, the last closed day."""

    parent_key: str
    children: tuple[tuple[str, str], ...]  # (username, on-behalf-of value)
    closed: dt.date


def plans() -> list[Any]:
    from seqscore.demo import default_plans

    return default_plans(PLAN_SEED, accounts=ACCOUNTS, volume_scale=VOLUME_SCALE)


def stream(today: dt.date) -> list[Body]:
    from seqscore.demo import batch_body, generate

    bodies = []
    for batch in generate(plans(), days=DAYS, today=today):
        ids = tuple(str(e["sg_event_id"]) for e in batch.events)
        bodies.append(Body(batch.account, batch_body(batch.events), len(ids), ids))
    if not bodies:
        raise BenchError("the demo stream is empty")
    return bodies


def round_payload(body: Body, round_: int) -> bytes:
    """The body as posted in ``round_``: round 0 as generated, later ones with new ids."""
    if round_ == 0:
        return body.payload
    return body.payload.replace(b'"sg_event_id":"', b'"sg_event_id":"r%d.' % round_)


def seed(data_dir: Path) -> tuple[dict[str, str], Reader]:
    """The plans' accounts, a webhook key each, and the parent's full-access key."""
    from seqscore.service.accounts import parse_scopes
    from seqscore.service.seq import last_closed_day
    from seqscore.service.services import Services
    from seqscore.settings import Settings
    from seqscore.types import AccountKind

    services = Services.open(Settings(data_dir=data_dir, worker=False))
    try:
        accounts: dict[str, Any] = {}
        keys = {}
        children = []
        parent = None
        for plan in plans():  # the parent comes first
            account = services.accounts.create_account(
                plan.username, parent=accounts.get(plan.parent) if plan.parent else None,
                kind=plan.kind, open_tracking=plan.open_tracking, email=plan.email)
            accounts[plan.username] = account
            keys[plan.username] = services.accounts.create_key(
                account, name="webhook", scopes=frozenset({"events.write"})).api_key
            if plan.parent is None:
                parent = account
            else:
                children.append((plan.username, plan.username if plan.kind is AccountKind.SUBUSER
                                 else f"account-id {account.user_id}"))
        assert parent is not None
        parent_key = services.accounts.create_key(parent, name="reader",
                                                  scopes=parse_scopes(None)).api_key
        closed = last_closed_day(services.clock.now(), services.settings.settle_minutes)
        return keys, Reader(parent_key, tuple(children), closed)
    finally:
        services.close()


# -------------------------------------------------------------------- load


@dataclass
class Recorder:
    """Latencies, statuses and errors per endpoint, shared by every load thread."""

    measure_from: float  # perf_counter: requests sent before this are the warm-up
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    acked_events: int = 0
    measured_events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retried: int = 0
    unacknowledged: int = 0
    acked: dict[int, list[int]] = field(default_factory=dict)  # round -> body indexes
    last_ack: float = 0.0  # perf_counter of the last acknowledgement

    def answer(self, endpoint: str, sent: float, seconds: float, status: int) -> None:
        with self.lock:
            self.statuses.setdefault(endpoint, {}).setdefault(status, 0)
            self.statuses[endpoint][status] += 1
            if sent >= self.measure_from:
                self.latencies.setdefault(endpoint, []).append(seconds)

    def error(self, endpoint: str, message: str) -> None:
        with self.lock:
            self.errors.setdefault(endpoint, []).append(message)


def request(conn: http.client.HTTPConnection, method: str, path: str,
            headers: dict[str, str], body: bytes | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    answer: dict[str, str] = {}
    for name, value in response.getheaders():  # repeated headers (Set-Cookie) joined
        key = name.lower()
        answer[key] = f"{answer[key]}, {value}" if key in answer else value
    return response.status, answer, data


def cookie(headers: dict[str, str], name: str) -> str:
    """The value ``name`` is set to by the Set-Cookie headers."""
    match = re.search(rf"(?:^|[,\s]){re.escape(name)}=([^;,\s]*)", headers.get("set-cookie", ""))
    if not match:
        raise BenchError(f"no {name} cookie in {headers.get('set-cookie')!r}")
    return match.group(1)


def log_in(port: int, api_key: str) -> str:
    """A dashboard session cookie, through the login form as a browser gets it."""
    conn = http.client.HTTPConnection(HOST, port, timeout=READ_TIMEOUT_S)
    try:
        status, headers, page = request(conn, "GET", "/login", {})
        token = _CSRF.search(page.decode())
        if status != 200 or not token:
            raise BenchError(f"GET /login: HTTP {status}, no form token")
        form = urlencode({"csrf_token": token.group(1), "api_key": api_key, "next": "/"})
        status, headers, _ = request(
            conn, "POST", "/login", {
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"seqscore_login={cookie(headers, 'seqscore_login')}"},
            form.encode())
        if status != 303:
            raise BenchError(f"POST /login: HTTP {status}, want 303")
        return cookie(headers, "seqscore_session")
    finally:
        conn.close()


class Senders:
    """SendGrid: bodies in stream order on a schedule of ``rate`` events/s, retried
    until acknowledged (``POST_ATTEMPTS`` attempts, backing off)."""

    def __init__(self, port: int, bodies: Sequence[Body], keys: dict[str, str], rate: float,
                 record: Recorder) -> None:
        self.port, self.bodies, self.keys, self.rate, self.record = (port, bodies, keys, rate,
                                                                     record)
        self.offsets = [0]  # events before each body within a round
        for body in bodies:
            self.offsets.append(self.offsets[-1] + body.events)
        self.lock = threading.Lock()
        self.next_index = 0

    def due(self, k: int) -> float:
        """Seconds after the start at which the k-th post (over all rounds) is due."""
        round_, i = divmod(k, len(self.bodies))
        return (round_ * self.offsets[-1] + self.offsets[i]) / self.rate

    def run(self, started: float, until: float) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=POST_TIMEOUT_S)
        try:
            while True:
                with self.lock:
                    k = self.next_index
                    due = started + self.due(k)
                    if due >= until or time.perf_counter() >= until:  # done, or behind
                        return
                    self.next_index += 1
                time.sleep(max(0.0, due - time.perf_counter()))
                conn = self.post(conn, k)
        finally:
            conn.close()

    def post(self, conn: http.client.HTTPConnection, k: int) -> http.client.HTTPConnection:
        round_, i = divmod(k, len(self.bodies))
        body = self.bodies[i]
        payload = round_payload(body, round_)
        headers = {"Authorization": basic(self.keys[body.account]),
                   "Content-Type": "application/json"}
        record = self.record
        for attempt in range(POST_ATTEMPTS):
            if attempt:
                with record.lock:
                    record.retried += 1
                time.sleep(min(2.0 ** (attempt - 1), 15.0))
            sent = time.perf_counter()
            try:
                status, _, answer = request(conn, "POST", "/api/v1/events/sendgrid", headers,
                                            payload)
            except (OSError, http.client.HTTPException) as exc:
                record.error(INGEST, f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=POST_TIMEOUT_S)
                continue
            record.answer(INGEST, sent, time.perf_counter() - sent, status)
            if status != 200:
                record.error(INGEST, f"HTTP {status}: {answer[:200]!r}")
                continue
            data = json.loads(answer)
            if data["accepted"] + data["rejected"] + data["duplicates"] != body.events:
                record.error(INGEST, f"answer {data} does not add up to {body.events} events")
            with record.lock:
                record.acked_events += body.events
                if sent >= record.measure_from:
                    record.measured_events += body.events
                record.accepted += data["accepted"]
                record.duplicates += data["duplicates"]
                record.rejected += data["rejected"]
                record.acked.setdefault(round_, []).append(i)
                record.last_ack = time.perf_counter()
            return conn
        with record.lock:
            record.unacknowledged += 1
        return conn


class Readers:
    """API clients and a dashboard user: the four reads in turn, at ``rate`` in all."""

    def __init__(self, port: int, reader: Reader, rate: float, threads: int,
                 record: Recorder) -> None:
        self.port, self.reader, self.record = port, reader, record
        self.interval = threads / rate

    def path(self, endpoint: str, rng: random.Random) -> tuple[str, dict[str, str]]:
        """A request like the ones a client makes: recent days, the parent or a child."""
        reader = self.reader
        day = reader.closed - dt.timedelta(days=rng.randrange(DAYS))
        headers = {"Authorization": f"Bearer {reader.parent_key}"}
        if endpoint in (SCORES, EXPLAIN) and rng.random() < 0.7:
            headers["on-behalf-of"] = rng.choice(reader.children)[1]
        if endpoint == SCORES:
            first = day - dt.timedelta(days=rng.randrange(30))
            return (f"/v3/engagementquality/scores?from={first.isoformat()}"
                    f"&to={day.isoformat()}"), headers
        if endpoint == SUBUSERS:
            return f"/v3/engagementquality/subusers/scores?date={day.isoformat()}", headers
        if endpoint == EXPLAIN:
            return f"/api/v1/scores/{day.isoformat()}", headers
        return ("/" if rng.random() < 0.5 else f"/?date={day.isoformat()}"), {}

    def run(self, number: int, session: str, started: float, until: float) -> None:
        rng = random.Random(f"soak-reader-{number}")
        conn = http.client.HTTPConnection(HOST, self.port, timeout=READ_TIMEOUT_S)
        record = self.record
        n = 0
        try:
            while True:
                due = started + (n + number / len(READS)) * self.interval
                late = time.perf_counter() - due
                if late > self.interval:  # behind: skip the missed turns, never burst
                    n += int(late / self.interval)
                    continue
                if due >= until:
                    return
                time.sleep(max(0.0, due - time.perf_counter()))
                endpoint = READS[(number + n) % len(READS)]
                n += 1
                path, headers = self.path(endpoint, rng)
                if endpoint == OVERVIEW:
                    headers["Cookie"] = f"seqscore_session={session}"
                sent = time.perf_counter()
                try:
                    status, _, answer = request(conn, "GET", path, headers)
                except (OSError, http.client.HTTPException) as exc:
                    record.error(endpoint, f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=READ_TIMEOUT_S)
                    continue
                record.answer(endpoint, sent, time.perf_counter() - sent, status)
                ok = (200,) if endpoint == OVERVIEW else (200, 202)
                if status not in ok:
                    record.error(endpoint, f"{path}: HTTP {status}: {answer[:200]!r}")
        finally:
            conn.close()


# ---------------------------------------------------------------- sampling


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the measured period began (negative: warm-up)
    rss_main: int
    rss_tree: int
    fds_main: int
    fds_tree: int
    acked_events: int


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def store_mib(data_dir: Path) -> float:
    """The event store's file and write-ahead log, in MiB."""
    return sum(p.stat().st_size for p in data_dir.glob("events.duckdb*")) / 2**20


def sample(pid: int, t: float, acked: int) -> Sample:
    rss_tree = fds_tree = 0
    for member in process_tree(pid):
        try:
            rss_tree += rss_bytes(member)
            fds_tree += fd_count(member)
        except OSError:  # a process that just ended
            continue
    return Sample(t, rss_bytes(pid), rss_tree, fd_count(pid), fds_tree, acked)


@dataclass(frozen=True, slots=True)
class Growth:
    what: str
    memory: bool  # RSS (else open fds)
    flat: bool
    text: str


def growth(samples: list[Sample], duration: float) -> list[Growth]:
    """First vs last third of the measured period: RSS flat when its troughs (smallest
    samples) are within +RSS_TOLERANCE, fds the same within +FD_TOLERANCE; peaks
    (largest) are printed beside them. Memory rises and falls with the event store's
    checkpoints and the worker's computations, and a window's median depends on where
    in that cycle it falls. Whatever is kept (a leak, or a cache filling) lifts the
    troughs, while one spike in a short window (the quick run's thirds are 10 s)
    lifts only a peak, and a peak can hide retained memory: the answer cache that
    filled with dead answers lifted the troughs 17% and the peaks only 8.7%."""
    window = duration / 3
    first = [s for s in samples if 0 <= s.t < window]
    last = [s for s in samples if duration - window <= s.t <= duration]
    if not first or not last:
        raise BenchError("too few resource samples for the growth check")
    out = []
    for what, name in (("RSS, server process", "rss_main"),
                       ("RSS, server + parser processes", "rss_tree")):
        peaks, troughs, flat = _extremes(first, last, name,
                                         lambda a, b: b <= a * (1 + RSS_TOLERANCE))
        out.append(Growth(what, True, flat,
                          f"peaks {_mib_change(*peaks)}, troughs {_mib_change(*troughs)}; "
                          f"limit +{RSS_TOLERANCE:.0%} on the troughs"))
    for what, name in (("open fds, server process", "fds_main"),
                       ("open fds, server + parser processes", "fds_tree")):
        peaks, troughs, flat = _extremes(first, last, name,
                                         lambda a, b: b <= a + FD_TOLERANCE)
        out.append(Growth(what, False, flat,
                          f"peaks {peaks[0]:.0f} -> {peaks[1]:.0f} ({peaks[1] - peaks[0]:+.0f}), "
                          f"troughs {troughs[0]:.0f} -> {troughs[1]:.0f} "
                          f"({troughs[1] - troughs[0]:+.0f}); "
                          f"limit +{FD_TOLERANCE} on the troughs"))
    return out


def _extremes(first: list[Sample], last: list[Sample], name: str,
              within: Callable[[float, float], bool],
              ) -> tuple[tuple[float, float], tuple[float, float], bool]:
    """(first peak, last peak), (first trough, last trough) of the samples' ``name``, and
    whether the troughs stay ``within`` the limit."""
    peaks = (max(getattr(s, name) for s in first), max(getattr(s, name) for s in last))
    troughs = (min(getattr(s, name) for s in first), min(getattr(s, name) for s in last))
    return peaks, troughs, within(*troughs)


def _mib_change(before: float, after: float) -> str:
    return f"{before / 2**20:,.0f} -> {after / 2**20:,.0f} MiB ({after / before - 1:+.1%})"


# ------------------------------------------------------------------ checks


@dataclass
class StoreCheck:
    rows: int
    distinct: int
    expected_distinct: int
    per_account: dict[str, tuple[int, int]]  # username -> (expected, stored) distinct


def check_store(data_dir: Path, bodies: Sequence[Body], acked: dict[int, list[int]],
                user_ids: dict[str, int]) -> StoreCheck:
    """Distinct (account, event id) of the acknowledged bodies, against the event store."""
    from seqscore.storage.duckdb_events import DuckDBEventStore

    expected: dict[str, int] = {}
    for _round, indexes in sorted(acked.items()):
        seen: dict[str, set[str]] = {}
        for i in indexes:
            seen.setdefault(bodies[i].account, set()).update(bodies[i].ids)
        for account, ids in seen.items():
            expected[account] = expected.get(account, 0) + len(ids)
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        rows = store.count()
        stored = {int(a): int(n) for a, n in store.sql(
            "SELECT account_id, count(DISTINCT event_id) FROM events GROUP BY account_id")}
    finally:
        store.close()
    per_account = {name: (expected.get(name, 0), stored.get(uid, 0))
                   for name, uid in user_ids.items()}
    return StoreCheck(rows, sum(stored.values()), sum(expected.values()), per_account)


@dataclass(frozen=True, slots=True)
class StateFigures:
    jobs: dict[str, int]  # by state
    failed_attempts: int  # jobs with an attempt that failed
    job_errors: list[str]  # the first few
    results: int
    stale: int
    user_ids: dict[str, int]  # by username


def state_figures(data_dir: Path) -> StateFigures:
    """Jobs, results and accounts, from the state store's file (the server stopped)."""
    con = sqlite3.connect(data_dir / "state.sqlite3")
    try:
        jobs = dict(con.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        failed_attempts = con.execute(
            "SELECT count(*) FROM jobs WHERE last_error IS NOT NULL").fetchone()[0]
        job_errors = [r[0] for r in con.execute(
            "SELECT last_error FROM jobs WHERE last_error IS NOT NULL LIMIT 3")]
        results, stale = con.execute(
            "SELECT count(*), coalesce(sum(stale), 0) FROM results").fetchone()
        users = dict(con.execute("SELECT username, user_id FROM accounts").fetchall())
    finally:
        con.close()
    return StateFigures(jobs, failed_attempts, job_errors, results, stale, users)


def log_errors(log: Path) -> tuple[list[str], int]:
    """The server log's ERROR/CRITICAL lines and exceptions, and its WARNING count."""
    errors, warnings = [], 0
    in_traceback = False
    for line in log.read_text(errors="replace").splitlines():
        if in_traceback and line and not line[0].isspace():  # the exception itself
            errors.append(f"- - {line}")
            in_traceback = False
        if " ERROR " in line or " CRITICAL " in line:
            errors.append(line)
        elif line.startswith("Traceback"):
            in_traceback = True
        elif " WARNING " in line:
            warnings += 1
    return errors, warnings


# -------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def print_table(record: Recorder, duration: float) -> None:
    head = (f"{'endpoint':<38} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'202':>6} {'errors':>6}")
    print(head)
    print("-" * len(head))
    for endpoint in [INGEST, *READS]:
        lat = record.latencies.get(endpoint, [])
        statuses = record.statuses.get(endpoint, {})
        errors = len(record.errors.get(endpoint, []))
        if not lat:
            print(f"{endpoint:<38} {0:>7} {'-':>7} {'-':>8} {'-':>8} {'-':>8} "
                  f"{statuses.get(202, 0):>6} {errors:>6}")
            continue
        print(f"{endpoint:<38} {len(lat):>7,} {len(lat) / duration:>7.1f} "
              f"{percentile(lat, 0.50) * 1e3:>8.1f} {percentile(lat, 0.99) * 1e3:>8.1f} "
              f"{max(lat) * 1e3:>8.1f} {statuses.get(202, 0):>6} {errors:>6}")


# ---------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description="Soak: ingestion and reads at once")
    parser.add_argument("--duration-s", type=float, default=None,
                        help="measured seconds (default 300; 30 with --quick)")
    parser.add_argument("--warmup-s", type=float, default=None,
                        help="seconds of the same load before (default a sixth of the "
                             "measured time, at least 60; 20 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="20 s warm-up + 30 s, for CI: the same checks but memory growth")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--events-per-s", type=float, default=10_000.0)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--reads-per-s", type=float, default=100.0)
    parser.add_argument("--sample-s", type=float, default=None,
                        help="seconds between resource samples (default 2; 1 with --quick)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the server (e.g. SEQSCORE_EVENTS_MEMORY_LIMIT=1GB); "
                             "repeatable")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    duration = args.duration_s or (30.0 if args.quick else 300.0)
    # DuckDB's 128 MB fill while the store grows past them: a long run's first minutes
    # would otherwise count as growth (a 30-minute run: +10.6% troughs, all before 5 min)
    warmup = args.warmup_s if args.warmup_s is not None else (
        20.0 if args.quick else max(60.0, duration / 6))
    every = args.sample_s or (1.0 if args.quick else 2.0)

    print(f"machine: {machine_line()}")
    print(f"load average at the start: {load_average()}")
    print(f"mode: {'quick' if args.quick else 'full'}; {warmup:g} s warm-up + {duration:g} s "
          f"measured; {args.senders} senders at {args.events_per_s:,.0f} events/s, "
          f"{args.readers} readers at {args.reads_per_s:g} req/s; the load generator "
          f"(this process) shares the {os.cpu_count()} cores with the server")
    tmp = Path(tempfile.mkdtemp(prefix="seqscore-soak-"))
    server: Server | None = None
    try:
        data_dir = tmp / "data"
        t0 = time.perf_counter()
        today = dt.datetime.now(dt.UTC).date()
        bodies = stream(today)
        events = sum(b.events for b in bodies)
        print(f"data: {len(bodies)} bodies of {events:,} events "
              f"({sum(len(b.payload) for b in bodies) / len(bodies) / 1024:,.0f} KB and "
              f"{events / len(bodies):,.0f} events on average, largest "
              f"{max(len(b.payload) for b in bodies) / 1024:,.0f} KB), {ACCOUNTS} accounts, "
              f"{DAYS} days to {today - dt.timedelta(days=1)}; posted in rounds, each with "
              f"new event ids ({time.perf_counter() - t0:.1f}s to generate)")
        keys, reader = seed(data_dir)

        env = benchmark_env()
        env.update({"SEQSCORE_DATA_DIR": str(data_dir), "SEQSCORE_HOST": HOST,
                    "SEQSCORE_LOG_LEVEL": "warning",
                    "SEQSCORE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
                    "SEQSCORE_EVENTS_COMPACT_MINUTES": "1",
                    "SEQSCORE_EVENTS_MEMORY_LIMIT": "128MB", "SEQSCORE_EVENTS_WAL_MB": "16"})
        env.update(dict(item.split("=", 1) for item in args.server_env))
        if args.server_env:
            print(f"server settings: {' '.join(args.server_env)}")
        server = Server("seqscore", [sys.executable, "-m", "seqscore", "serve",
                                     "--port", "{port}"], env, tmp / "serve.log")
        server.start().wait_ready()
        assert server.proc is not None
        pid = server.proc.pid
        print(f"server: seqscore serve (in-process worker, SQLite + DuckDB) on "
              f"{HOST}:{server.port}, pid {pid}; {len(process_tree(pid)) - 1} child processes")
        sessions = [log_in(server.port, reader.parent_key) for _ in range(args.readers)]

        started = time.perf_counter()
        measure_from = started + warmup
        until = measure_from + duration
        record = Recorder(measure_from)
        senders = Senders(server.port, bodies, keys, args.events_per_s, record)
        readers = Readers(server.port, reader, args.reads_per_s, args.readers, record)
        threads = [threading.Thread(target=senders.run, args=(started, until), daemon=True)
                   for _ in range(args.senders)]
        threads += [threading.Thread(target=readers.run, args=(n, sessions[n], started, until),
                                     daemon=True) for n in range(args.readers)]
        samples: list[Sample] = []
        cpu_server = cpu_self = 0.0
        for thread in threads:
            thread.start()
        next_sample = started
        next_print = measure_from
        while any(t.is_alive() for t in threads):
            now = time.perf_counter()
            if now >= next_sample:
                if now >= measure_from and cpu_server == 0.0:
                    cpu_server, cpu_self = tree_cpu_seconds(pid), time.process_time()
                with record.lock:
                    acked = record.acked_events
                samples.append(sample(pid, now - measure_from, acked))
                next_sample += every
                if now >= next_print:
                    s = samples[-1]
                    print(f"  t={s.t:5.0f}s  RSS {s.rss_main / 2**20:6,.0f} MiB (tree "
                          f"{s.rss_tree / 2**20:6,.0f})  fds {s.fds_main:3d} (tree "
                          f"{s.fds_tree:3d})  events acknowledged {s.acked_events:>10,}  "
                          f"store {store_mib(data_dir):5,.0f} MiB  "
                          f"errors {sum(len(v) for v in record.errors.values())}", flush=True)
                    next_print += 30.0 if duration >= 120 else 10.0
            if server.proc.poll() is not None:
                raise BenchError(f"the server exited ({server.proc.returncode}) during the "
                                 "soak; log:\n" + server.log.read_text(errors="replace")[-3000:])
            time.sleep(min(0.2, max(0.0, next_sample - time.perf_counter())))
        # the last posts may be answered after `until`: rates of events are per this span
        span = max(duration, record.last_ack - measure_from)
        cpu_server = tree_cpu_seconds(pid) - cpu_server
        cpu_self = time.process_time() - cpu_self
        load_end = load_average()
        exit_code = server.stop()
        server = None

        state = state_figures(data_dir)
        store = check_store(data_dir, bodies, record.acked, {a: state.user_ids[a] for a in keys})
        logged, warnings = log_errors(tmp / "serve.log")
        grown = growth(samples, duration)
    except BenchError as exc:
        print(f"soak: aborted: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print_table(record, duration)
    print()
    rounds = max(record.acked, default=0) + 1
    print(f"events acknowledged: {record.acked_events:,}; {record.measured_events:,} of them "
          f"posted in the measured {duration:g} s and acknowledged {span:.1f} s after its "
          f"start = {record.measured_events / span:,.0f} events/s (target "
          f"{args.events_per_s:,.0f}); {rounds} rounds of the stream; accepted "
          f"{record.accepted:,}, duplicates {record.duplicates:,}, rejected {record.rejected:,}; "
          f"retried posts {record.retried}, never acknowledged {record.unacknowledged}")
    print(f"event store after the stop: {store.rows:,} rows, {store.distinct:,} distinct "
          f"(account, event id); acknowledged distinct {store.expected_distinct:,}; "
          f"{record.accepted - store.rows:,} copies removed by compaction")
    print(f"jobs: {', '.join(f'{k} {v:,}' for k, v in sorted(state.jobs.items()))}; "
          f"with a failed attempt {state.failed_attempts}; results {state.results:,} "
          f"({state.stale:,} stale at the stop)")
    print(f"CPU over the measured period: server + parser processes {cpu_server / span:.0%} "
          f"of a core, load generator {cpu_self / span:.0%} of a core")
    print(f"server: exit code {exit_code} after SIGTERM; log: {len(logged)} errors, "
          f"{warnings} warnings")
    print(f"load average at the end: {load_end}")
    print()

    failures = []
    errors = sum(len(v) for v in record.errors.values())
    if errors:
        first = next(f"{k}: {v[0]}" for k, v in record.errors.items() if v)
        failures.append(f"{errors} request errors (first: {first})")
    if record.unacknowledged:
        failures.append(f"{record.unacknowledged} batches never acknowledged")
    if record.rejected:
        failures.append(f"{record.rejected} demo events rejected (all are valid)")
    if store.distinct != store.expected_distinct:
        lost = {a: v for a, v in store.per_account.items() if v[0] != v[1]}
        failures.append(f"event store holds {store.distinct:,} distinct events, "
                        f"{store.expected_distinct:,} acknowledged (expected, stored: {lost})")
    if store.rows > record.accepted or store.rows < store.distinct:
        failures.append(f"event store rows {store.rows:,} outside [{store.distinct:,}, "
                        f"{record.accepted:,}]")
    if state.jobs.get("failed", 0) or state.failed_attempts:
        failures.append(f"{state.failed_attempts} jobs had a failed attempt, "
                        f"{state.jobs.get('failed', 0)} failed for good "
                        f"(first: {state.job_errors[:1]})")
    if logged:
        failures.append(f"the server logged {len(logged)} errors (first: {logged[0]})")
    if exit_code not in (0, -signal.SIGTERM):  # uvicorn re-raises SIGTERM once it has shut down
        failures.append(f"the server exited with {exit_code} after SIGTERM")
    if record.acked_events == 0 or not record.latencies.get(OVERVIEW):
        failures.append("no load was applied")
    for g in grown:
        # 30 s cannot tell a leak from caches growing with the store (docs/performance.md)
        reported_only = args.quick and g.memory
        verdict = "flat " if g.flat else "grows" if reported_only else "GROWS"
        print(f"{verdict}  {g.what}: {g.text}"
              + (" (quick run: reported, not enforced)" if reported_only and not g.flat else ""))
        if not g.flat and not reported_only:
            failures.append(f"{g.what} grew: {g.text}")
    no_errors = errors == 0 and not record.unacknowledged
    print(f"{'ok    ' if no_errors else 'FAILED'} errors: {errors}")
    print(f"{'ok    ' if store.distinct == store.expected_distinct else 'FAILED'} every "
          f"acknowledged event is in the store")
    for endpoint, messages in record.errors.items():
        for message in messages[:3]:
            print(f"soak: error: {endpoint}: {message}", file=sys.stderr)
    distinct = dict.fromkeys(line.split(" ", 2)[-1] for line in logged)  # less the time
    for line in list(distinct)[:5]:
        print(f"soak: server log: {line[:500]}", file=sys.stderr)
    for failure in failures:
        print(f"soak: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
