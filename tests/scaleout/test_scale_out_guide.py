"""docs/scale-out.md, "Moving an embedded installation": its three command blocks run
as printed (paths, database name and ports swapped for temporary ones) and move an
embedded installation onto PostgreSQL and a Parquet lake without losing anything."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from scaleout_support import (
    LAST_CLOSED,
    demo_batches,
    demo_plans,
    free_port,
    java_available,
)
from sqlalchemy.engine import make_url

from seqscore.service.accounts import parse_scopes
from seqscore.service.results import compute_results
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.storage.state import StateStore
from seqscore.storage.state_schema import metadata
from seqscore.types import AccountKind
from seqscore_testing import POSTGRES_URL, TEST_NOW, require_or_skip

pytestmark = [pytest.mark.postgres, pytest.mark.spark, pytest.mark.slow]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
GUIDE_DATA, GUIDE_LAKE = "/srv/seqscore-data", "/srv/seqscore/lake"
GUIDE_SERVER, GUIDE_DB = "postgres@127.0.0.1:5432", "seqscore"


def guide_blocks() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("## Moving an embedded installation"):]
    section = section[:section.index("\n## ", 5)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def as_here(block: str, data: Path, lake: Path, server: str, db: str, host: str, user: str,
            port: int) -> str:
    block = block.replace(GUIDE_DATA, str(data)).replace(GUIDE_LAKE, str(lake))
    block = block.replace(f"{GUIDE_SERVER}/{GUIDE_DB}", f"{server}/{db}")
    return block.replace(f"createdb -h 127.0.0.1 -U postgres {GUIDE_DB}",
                         f"createdb -h {host} -p {port} -U {user} {db}")


def run(block: str, env: dict[str, str]) -> dict:
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{block}\n{out.stdout}\n{out.stderr[-3000:]}"
    return json.loads(out.stdout[out.stdout.rindex("\n{") + 1:] if "\n{" in out.stdout
                      else out.stdout)


@pytest.fixture
def embedded(tmp_path: Path):
    """An embedded installation with accounts, keys, ingested events, results, jobs."""
    settings = Settings(data_dir=tmp_path / "data", now=TEST_NOW.isoformat(), worker=False)
    services = Services.open(settings)
    plans = demo_plans(accounts=3, volume_scale=0.02)
    accounts, keys = [], {}
    for plan in plans:
        parent = services.state.get_account_by_username(plan.parent) if plan.parent else None
        account = services.accounts.create_account(plan.username, parent=parent,
                                                   kind=AccountKind(plan.kind))
        accounts.append(account)
        keys[account.user_id] = services.accounts.create_key(
            account, name="k", scopes=parse_scopes(None)).api_key
    by_name = {a.username: a for a in accounts}
    for batch in demo_batches(plans):
        services.ingest.ingest(by_name[batch.account], json.dumps(batch.events).encode())
    days = [LAST_CLOSED - dt.timedelta(days=i) for i in range(3)]
    services.state.upsert_results(compute_results(services.events, services.model, accounts,
                                                  days, computed_at=TEST_NOW))
    services.state.enqueue_jobs([(accounts[0].user_id, LAST_CLOSED)], now=TEST_NOW)
    services.close()
    return settings, accounts, keys


def _plain(value: object) -> str:
    """A stored value as text, the same on SQLite and PostgreSQL."""
    if isinstance(value, dt.datetime):
        value = (value.replace(tzinfo=dt.UTC) if value.tzinfo is None
                 else value.astimezone(dt.UTC))
    if isinstance(value, bytes | memoryview):
        value = bytes(value).hex()
    return str(value)


def rows(url: str) -> dict[str, list]:
    """Every row of every state table, as text."""
    store = StateStore.open(url)
    try:
        with store.engine.connect() as conn:
            return {t.name: sorted(tuple(_plain(v) for v in r) for r in conn.execute(
                sa.select(t))) for t in metadata.sorted_tables}
    finally:
        store.close()


def test_the_guide_moves_an_embedded_installation_onto_postgresql_and_a_lake(
        embedded, tmp_path: Path):
    require_or_skip(bool(POSTGRES_URL), "PostgreSQL not configured (SEQSCORE_TEST_POSTGRES_URL)")
    require_or_skip(java_available() and importlib.util.find_spec("pyspark") is not None,
                    "Spark (Java and PySpark) not available")
    settings, accounts, keys = embedded
    server = make_url(POSTGRES_URL)
    db = f"seqscore_guide_{uuid.uuid4().hex[:8]}"
    target = server.set(database=db).render_as_string(hide_password=False)
    where = f"{server.username}@{server.host}:{server.port or 5432}"
    lake = tmp_path / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQSCORE_")}
    env.update({"PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
                "SEQSCORE_NOW": TEST_NOW.isoformat(), "SEQSCORE_LOG_LEVEL": "warning"})
    if server.password:
        env["PGPASSWORD"] = server.password
    migrate, start, after = (
        as_here(b, settings.data_dir, lake, where, db, server.host or "127.0.0.1",
                server.username or "postgres", server.port or 5432) for b in guide_blocks())
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        moved = run(migrate, env)
        before = rows(settings.resolved_state_url)
        assert rows(target) == before
        assert moved["state"] == {name: len(r) for name, r in before.items()}
        assert moved["state"]["results"] == 9 and moved["state"]["jobs"] == 1
        assert {Path(p).name for p in moved["secrets"]} >= {"recipient-key", "quarantine-key"}

        from seqscore.storage.duckdb_events import DuckDBEventStore
        from seqscore.storage.parquet_events import ParquetEventStore

        duck = DuckDBEventStore(settings.data_dir / "events.duckdb")
        new_lake = ParquetEventStore(str(lake))
        assert moved["events"] == duck.count() == new_lake.count() > 3000
        with duck.reading() as a, new_lake.reading() as b:
            columns = ["account_id", "event_id", "day", "recipient", "ts"]
            assert (a.select(*columns).order_by(columns).to_pyarrow()
                    == b.select(*columns).order_by(columns).to_pyarrow())
        duck.close()

        # the processes, on free ports; the migrated keys read the migrated results
        ports = [free_port(), free_port()]
        start = start.replace("--port 8001", f"--port {ports[0]}").replace(
            "--port 8002", f"--port {ports[1]}")
        group = subprocess.Popen(["bash", "-c", start + "\nwait"], env=env,
                                 start_new_session=True, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            parent = accounts[0]
            for port in ports:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        answer = httpx.get(
                            f"http://127.0.0.1:{port}/v3/engagementquality/scores",
                            params={"from": str(LAST_CLOSED - dt.timedelta(days=2)),
                                    "to": str(LAST_CLOSED)},
                            headers={"Authorization": f"Bearer {keys[parent.user_id]}"},
                            timeout=5)
                        break
                    except httpx.HTTPError:
                        assert group.poll() is None, group.stderr.read().decode()
                        assert time.monotonic() < deadline, "the guide's servers did not start"
                        time.sleep(0.3)
                assert answer.status_code == 200, answer.text
                assert len(answer.json()["result"]) == 3
        finally:
            # SIGTERM: processes a non-interactive shell starts with & ignore SIGINT
            os.killpg(group.pid, signal.SIGTERM)
            group.wait(timeout=30)
            time.sleep(1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group.pid, signal.SIGKILL)

        # compaction, then the nightly pass on Spark: the same results as before
        results_before = rows(target)["results"]
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", after], env=env,
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
        compacted, computed = (json.loads(m) for m in re.findall(
            r"^\{.*?^\}", out.stdout, re.S | re.M))
        assert compacted["files_after"] <= compacted["files_before"]
        assert computed == {"results": 3, "accounts": 3, "from": str(LAST_CLOSED),
                            "to": str(LAST_CLOSED), "engine": "spark"}
        store = StateStore.open(target)
        for account in accounts:
            old = {r[1]: r for r in results_before if r[0] == str(account.user_id)}
            new = store.get_results(account.user_id, LAST_CLOSED, LAST_CLOSED)[LAST_CLOSED]
            assert str(new.score) == old[str(LAST_CLOSED)][2]
        store.close()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
