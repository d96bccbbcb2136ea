"""Ingest throughput into a Parquet lake through N `seqscore serve --no-worker` processes.

Used by benchmarks/scaleout.py. Every process is a real server on 127.0.0.1 with
the lake as its event store and a shared state store; a client posts webhook
bodies (demo events, re-cut into batches of ``batch_events``) round robin over
the processes, ``connections`` at a time, each POST answered only once its
batch is durable in the lake (files written, synced, renamed).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

NOW = "2026-11-20T12:00:00+00:00"
LAST_DAY = dt.date(2026, 11, 19)


@dataclass(frozen=True)
class IngestRun:
    processes: int
    events: int  # posted and answered (stored, recognised as copies, or rejected)
    seconds: float
    files: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def demo_bodies(events: int, batch_events: int = 500) -> list[bytes]:
    """About ``events`` demo events (one account's stream) as webhook bodies."""
    from seqscore.demo.generate import generate
    from seqscore.demo.plans import default_plans

    # one account over 30 days gives about 10,000 events per unit of volume_scale
    plans = default_plans(3, accounts=1, customers=0, volume_scale=max(events / 9_000, 0.01))
    flat: list[dict] = []
    for batch in generate(plans, days=30, end_day=LAST_DAY):
        flat.extend(batch.events)
        if len(flat) >= events:
            break
    flat = flat[:events]
    return [json.dumps(flat[i:i + batch_events]).encode()
            for i in range(0, len(flat), batch_events)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, state_url: str, lake: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQSCORE_")}
    env.update({"SEQSCORE_DATA_DIR": str(data_dir), "SEQSCORE_STATE_URL": state_url,
                "SEQSCORE_EVENTS_URL": f"parquet://{lake}", "SEQSCORE_NOW": NOW,
                "SEQSCORE_LOG_LEVEL": "warning"})
    return env


@contextmanager
def state_database(server_url: str | None) -> Iterator[str | None]:
    """A fresh database on the PostgreSQL server of ``server_url``, dropped at the end
    (None: no server given)."""
    if not server_url:
        yield None
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"seqscore_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(work: Path, state_url: str) -> str:
    """An account with a key in the state store (``state_url`` must be empty or new)."""
    from seqscore.clock import clock_from_setting
    from seqscore.service.accounts import parse_scopes
    from seqscore.service.services import Services
    from seqscore.settings import Settings

    settings = Settings(data_dir=work / "data", state_url=state_url,
                        events_url=f"parquet://{work / 'unused-lake'}", worker=False)
    services = Services.open(settings, clock=clock_from_setting(NOW))
    try:
        account = services.state.get_account_by_username("bench") or \
            services.accounts.create_account("bench")
        return services.accounts.create_key(account, name="bench",
                                            scopes=parse_scopes(None)).api_key
    finally:
        services.close()


def run(work: Path, state_url: str, key: str, bodies: list[bytes], processes: int, *,
        connections: int = 8) -> IngestRun:
    """Start ``processes`` servers on a fresh lake, post every body, stop them."""
    lake = work / f"lake-{processes}"
    if lake.exists():
        shutil.rmtree(lake)
    env = _env(work / "data", state_url, lake)
    ports = [_free_port() for _ in range(processes)]
    procs = [subprocess.Popen([sys.executable, "-m", "seqscore", "serve", "--no-worker",
                               "--port", str(p)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for p in ports]
    auth = {"Authorization": "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode(),
            "Content-Type": "application/json"}
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server {url} did not start")
                time.sleep(0.2)
        clients = [httpx.Client(base_url=url, headers=auth, timeout=120) for url in urls]
        # warm-up: the first POST of each process opens the lake and its secrets
        for client in clients:
            client.post("/api/v1/events/sendgrid", content=b"[]")

        def post(item: tuple[int, bytes]) -> int:
            n, body = item
            answer = clients[n % processes].post("/api/v1/events/sendgrid", content=body)
            if answer.status_code != 200:
                raise RuntimeError(f"POST answered {answer.status_code}: {answer.text}")
            report = answer.json()  # every event posted is accounted for
            return int(report["accepted"] + report["duplicates"] + report["rejected"])

        started = time.monotonic()
        with ThreadPoolExecutor(connections) as pool:
            accepted = sum(pool.map(post, enumerate(bodies)))
        seconds = time.monotonic() - started
        for client in clients:
            client.close()
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    files = sum(1 for _ in (lake / "events").rglob("*.parquet"))
    return IngestRun(processes, accepted, seconds, files)
