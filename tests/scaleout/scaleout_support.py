"""Helpers of the scale-out tests: demo events, real processes on loopback ports."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa

from seqscore.demo.generate import Batch, generate
from seqscore.demo.plans import AccountPlan, default_plans
from seqscore.ingest.webhook import EventParser
from seqscore_testing import TEST_NOW

#: The last closed day at the tests' frozen clock (2026-11-20 12:00 UTC).
LAST_CLOSED = dt.date(2026, 11, 19)
#: A fixed recipient-hash key for tables built in the test process.
RECIPIENT_KEY = bytes(range(32))
SEQSCORE = [sys.executable, "-m", "seqscore"]


def java_available() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


def demo_plans(accounts: int = 4, volume_scale: float = 0.02, seed: int = 7
               ) -> list[AccountPlan]:
    return default_plans(seed, accounts=accounts, customers=1, volume_scale=volume_scale)


def demo_batches(plans: Sequence[AccountPlan], days: int = 120) -> list[Batch]:
    """The webhook batches of ``plans`` over ``days`` days ending on ``LAST_CLOSED``."""
    return list(generate(plans, days=days, end_day=LAST_CLOSED))


def demo_tables(plans: Sequence[AccountPlan], ids: dict[str, int], *, days: int = 120,
                key: bytes = RECIPIENT_KEY) -> list[tuple[pa.Table, bytes]]:
    """The demo's batches parsed as the receiver parses them: (EVENT_SCHEMA table,
    batch key), with ``ids[username]`` as each batch's account."""
    parser = EventParser(key)
    out = []
    for n, batch in enumerate(demo_batches(plans, days)):
        table = parser.parse(orjson.dumps(batch.events), account_id=ids[batch.account],
                             ingested_at=TEST_NOW).table
        out.append((table, n.to_bytes(16, "big")))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start(name: str, args: Sequence[str], env: dict[str, str], log_dir: Path,
          url: str | None = None) -> Process:
    """Start ``seqscore ARGS`` with ``env``; its output goes to ``log_dir/name.log``."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen([*SEQSCORE, *args], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    return Process(name, popen, log, url)


def wait_healthy(process: Process, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.popen.poll() is None, f"{process.name} exited:\n{process.output()}"
        try:
            if httpx.get(f"{process.url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{process.name} not up:\n{process.output()}"
        time.sleep(0.2)


def stop(processes: Sequence[Process]) -> None:
    for p in processes:
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGINT)
    for p in processes:
        try:
            p.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(timeout=10)


@contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    try:
        yield processes
    finally:
        stop(processes)


def env_for(data_dir: Path, state_url: str, events_url: str, **extra: Any) -> dict[str, str]:
    """The environment of one seqscore process of the installation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQSCORE_")}
    env.update({
        "SEQSCORE_DATA_DIR": str(data_dir), "SEQSCORE_STATE_URL": state_url,
        "SEQSCORE_EVENTS_URL": events_url, "SEQSCORE_NOW": TEST_NOW.isoformat(),
        "SEQSCORE_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1",
    })
    env.update({f"SEQSCORE_{k.upper()}": str(v) for k, v in extra.items()})
    return env
