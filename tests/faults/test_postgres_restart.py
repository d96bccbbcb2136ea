"""PostgreSQL (the state store) stopped and started again under load.

``seqscore serve`` runs on a fresh PostgreSQL database while clients post events and
read /v3 scores. PostgreSQL is stopped for a few seconds, then started again. While
it is down every request fails cleanly: 503 in SendGrid's error shape, never 500 and
never a hang; once it is back the server answers again by itself, without a restart;
every acknowledged event is stored.

It once failed about one run in two: every 503 logged a three-line warning, the
server's stderr was a pipe nobody read, and once ~64 KiB of warnings had filled it
the event loop blocked in ``write`` (a stack dump of the stuck server showed it in
``logging``). The warnings are now throttled (``OutageLog``), which the test checks;
the server writes to a file here.

A second test: a "PostgreSQL" that accepts connections and never answers makes a
command fail within ``SEQSCORE_STATE_CONNECT_TIMEOUT_SECONDS``, not hang.

It stops the machine's PostgreSQL cluster (``pg_ctlcluster``, as root): it leaves it
running whatever happens, and waits for it to accept connections again. The suite
runs serially; run it alone if other PostgreSQL tests run beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from faults_support import CLOSED, Serve, body, event, post, request, sendgrid_error
from sqlalchemy.engine import make_url

from seqscore.cli import main
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore_testing import POSTGRES_URL, require_or_skip

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DOWN_S = 4.0
TIMEOUT_S = 15.0  # no request may take longer
EVENTS_PER_BATCH = 20


def cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    return [versions[-1], "main"] if versions else []


def pg_ctl(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster(), action],
                          capture_output=True, text=True, check=False, timeout=60)


def wait_for_postgres(admin: sa.Engine, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return
        except sa.exc.OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.2)


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database on the local cluster, which the test may stop and start."""
    require_or_skip(bool(POSTGRES_URL), "PostgreSQL not configured (SEQSCORE_TEST_POSTGRES_URL)")
    require_or_skip(bool(cluster()) and shutil.which("pg_ctlcluster") is not None
                    and os.geteuid() == 0,
                    "stopping PostgreSQL needs root and a local pg_ctlcluster cluster")
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"seqscore_fault_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        require_or_skip(False, f"PostgreSQL unreachable at {POSTGRES_URL}: {exc.orig}")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        pg_ctl("start")  # whatever happened: PostgreSQL is left running
        wait_for_postgres(admin)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_postgres_restart_under_load_answers_503_then_recovers(tmp_path: Path,
                                                               database: str) -> None:
    data = tmp_path / "data"
    serve_log = tmp_path / "serve.log"
    server = Serve(data, worker=False, log=serve_log, SEQSCORE_INGEST_PROCESSES="0",
                   SEQSCORE_AUTH_CACHE_SECONDS="0")  # every request asks PostgreSQL
    server.env["SEQSCORE_STATE_URL"] = database
    runner = CliRunner()
    assert runner.invoke(main, ["accounts", "create", "acme"], env=server.env).exit_code == 0
    created = runner.invoke(main, ["keys", "create", "acme"], env=server.env)
    key = json.loads(created.output)["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    scores = f"/v3/engagementquality/scores?from={CLOSED}&to={CLOSED}"

    lock = threading.Lock()
    log: list[tuple[float, str, int, float]] = []  # (when, what, status, seconds taken)
    unexpected: list[tuple[str, int, object]] = []
    acknowledged: set[int] = set()
    stop = threading.Event()

    def note(what: str, started: float, status: int, answer: object) -> None:
        took = time.monotonic() - started
        with lock:
            log.append((started, what, status, took))
            if status not in (200, 202, 503) or (status == 503 and not sendgrid_error(answer)):
                unexpected.append((what, status, answer))

    def sender() -> None:
        n = 0
        while not stop.is_set():
            payload = body(*[event(n * EVENTS_PER_BATCH + i)
                             for i in range(EVENTS_PER_BATCH)])
            started = time.monotonic()
            answer: object
            try:
                status, answer = post(server.url, payload, auth, TIMEOUT_S)
            except OSError as exc:
                status, answer = -1, str(exc)
            note("post", started, status, answer)
            if status == 200:
                with lock:
                    acknowledged.add(n)
                n += 1  # else the same batch again, as SendGrid retries
            time.sleep(0.02)

    def reader() -> None:
        while not stop.is_set():
            started = time.monotonic()
            answer: object
            try:
                status, answer, _ = request(server.url, "GET", scores, headers=auth,
                                            timeout_s=TIMEOUT_S)
            except OSError as exc:
                status, answer = -1, str(exc)
            note("read", started, status, answer)
            time.sleep(0.02)

    admin = sa.create_engine(POSTGRES_URL, poolclass=sa.NullPool)
    threads = [threading.Thread(target=sender), threading.Thread(target=reader)]
    try:
        server.start()
        for t in threads:
            t.start()
        time.sleep(1.5)
        stopped_at = time.monotonic()
        done = pg_ctl("stop")
        assert done.returncode == 0, done.stderr
        down_at = time.monotonic()
        time.sleep(DOWN_S)
        started_pg = time.monotonic()
        done = pg_ctl("start")
        assert done.returncode == 0, done.stderr
        wait_for_postgres(admin)
        up_at = time.monotonic()
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT_S + 5)
        pg_ctl("start")
        wait_for_postgres(admin)
        admin.dispose()
        server.stop()
        server.kill()

    assert not unexpected, unexpected[:5]
    # the outage is in the log, but not once per 503: at most one line per 10 s
    warnings = [line for line in serve_log.read_text(errors="replace").splitlines()
                if "WARNING seqscore.api: unavailable:" in line]
    outage_s = time.monotonic() - stopped_at
    assert 1 <= len(warnings) <= 1 + outage_s / 10, warnings
    assert all(status != -1 for _, _, status, _ in log), "a request got no answer"
    slowest = max(took for *_, took in log)
    assert slowest < TIMEOUT_S
    during = [(what, status) for when, what, status, took in log
              if when >= down_at and when + took <= started_pg]
    assert {"post", "read"} <= {what for what, status in during if status == 503}, during[:20]
    assert all(status == 503 for _, status in during)
    # recovered by itself: both kinds answered again after PostgreSQL was back
    recovered = {what: min((when + took for when, w, status, took in log
                            if w == what and status in (200, 202) and when >= stopped_at
                            and when + took >= started_pg), default=None)
                 for what in ("post", "read")}
    assert None not in recovered.values(), recovered
    before = sum(1 for when, *_ in log if when < stopped_at)
    print(f"\n{len(log)} requests ({before} before the stop); while PostgreSQL was down "
          f"{len(during)} answered 503 and none other; answers again "
          + ", ".join(f"{w} {t - started_pg:.2f} s" for w, t in recovered.items() if t)
          + f" after `pg_ctlcluster start` began ({up_at - started_pg:.2f} s until it accepted "
          f"connections); slowest request {slowest:.2f} s; "
          f"{len(acknowledged) * EVENTS_PER_BATCH} events acknowledged")

    store = DuckDBEventStore(data / "events.duckdb")
    try:
        stored = {e for (e,) in store.sql("SELECT DISTINCT event_id FROM events")}
    finally:
        store.close()
    expected = {f"ev-{n * EVENTS_PER_BATCH + i:07d}" for n in acknowledged
                for i in range(EVENTS_PER_BATCH)}
    assert expected <= stored and len(acknowledged) > 20


def test_a_postgresql_that_never_answers_fails_within_the_connect_timeout(tmp_path: Path
                                                                           ) -> None:
    """A listener that accepts and stays silent (a hung server, a half-open proxy):
    without a connect timeout psycopg would wait for ever, holding the event loop."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nobody ever answers
        port = silent.getsockname()[1]
        env = {**os.environ, "SEQSCORE_DATA_DIR": str(tmp_path / "data"),
               "SEQSCORE_STATE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x",
               "SEQSCORE_STATE_CONNECT_TIMEOUT_SECONDS": "2"}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "seqscore", "accounts", "list"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        took = time.monotonic() - started
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "state store unreachable" in done.stderr and "timeout" in done.stderr.lower(), \
        done.stderr
    assert took < 20, took  # 2 s per attempt plus the interpreter's start
