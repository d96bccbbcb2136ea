"""Shared builders of the ingest service tests (imported by name: tests have no packages)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqscore.demo import default_plans, generate
from seqscore.demo.webhook import batch_body
from seqscore_testing import TEST_NOW

TODAY = TEST_NOW.date()
CLOSED = TODAY - dt.timedelta(days=1)
UTC = dt.UTC


def at(day: dt.date, hour: int = 10) -> int:
    """Unix seconds of ``hour``:00 UTC on ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp())


def event(n: int, day: dt.date = TODAY, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"email": f"person{n % 97}@example.com", "timestamp": at(day),
                            "event": "delivered", "sg_event_id": f"ev-{n:07d}",
                            "sg_message_id": f"msg-{n:07d}.0"}
    base.update(fields)
    return base


def body(*events: Any) -> bytes:
    return json.dumps(list(events)).encode()


def demo_stream(accounts: int = 3, days: int = 10) -> list[tuple[str, list[dict[str, Any]]]]:
    """A realistic webhook stream (duplicates, late events, batch retries) of a few demo
    accounts, ending on the tests' last closed day: (username, events) per batch."""
    plans = default_plans(11, accounts=accounts, customers=0, volume_scale=0.3)
    return [(b.account, b.events) for b in generate(plans, days=days, end_day=CLOSED)]


def demo_plans(accounts: int = 3) -> list[Any]:
    return default_plans(11, accounts=accounts, customers=0, volume_scale=0.3)


def recut(stream: list[tuple[str, list[dict[str, Any]]]], seed: int,
          size: int = 150) -> Iterator[tuple[str, bytes]]:
    """The same events shuffled and cut into different batches, per account."""
    rng = random.Random(seed)
    by_account: dict[str, list[dict[str, Any]]] = {}
    for account, events in stream:
        by_account.setdefault(account, []).extend(events)
    for account, events in by_account.items():
        events = events[:]
        rng.shuffle(events)
        for start in range(0, len(events), size):
            yield account, batch_body(events[start:start + size])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """``seqscore serve`` as a real process on a data dir (SQLite state, the default)."""

    def __init__(self, data_dir: Path, *, worker: bool = True, port: int | None = None,
                 log: Path | None = None, **env: str) -> None:
        self.log = log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SEQSCORE_DATA_DIR": str(data_dir),
                    "SEQSCORE_NOW": TEST_NOW.isoformat(), "SEQSCORE_LOG_LEVEL": "warning",
                    "SEQSCORE_WORKER": "on" if worker else "off", **env}
        self.env.pop("SEQSCORE_STATE_URL", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> Serve:
        log = self.log.open("ab") if self.log is not None else subprocess.PIPE
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seqscore", "serve", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stderr.read() if self.process.stderr else b"(see log)"
                raise RuntimeError(f"seqscore serve exited: {output!r}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("seqscore serve did not answer in time")

    def create_senders(self, usernames: list[str]) -> tuple[dict[str, int], dict[str, str]]:
        """Create an account and an ``events.write`` key for each name through the CLI on
        this data dir; returns (user ids, keys) by username."""
        from click.testing import CliRunner

        from seqscore.cli import main

        runner = CliRunner()

        def run(*args: str) -> Any:
            result = runner.invoke(main, list(args), env=self.env, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return json.loads(result.output)

        ids, keys = {}, {}
        for name in usernames:
            ids[name] = run("accounts", "create", name)["user_id"]
            keys[name] = run("keys", "create", name, "--scopes", "events.write")["api_key"]
        return ids, keys

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post(url: str, payload: bytes, headers: dict[str, str],
         timeout_s: float = 30.0) -> tuple[int, dict[str, Any]]:
    """POST to the receiver: (status, JSON answer); raises OSError when the server is gone."""
    split = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(split[0], int(split[1]), timeout=timeout_s)
    try:
        conn.request("POST", "/api/v1/events/sendgrid", body=payload,
                     headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()

