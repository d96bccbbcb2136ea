"""Shared builders of the fault tests: real ``seqscore serve`` processes on a data dir
(the crash test's ``Serve`` from tests/ingest_service), and ways to look into the stores
while the server is stopped."""

from __future__ import annotations

import http.client
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ingest_service"))

from ingest_service_support import (
    CLOSED,
    TEST_NOW,
    Serve,
    at,
    body,
    demo_plans,
    demo_stream,
    event,
    free_port,
    post,
)

__all__ = [
    "CLOSED",
    "TEST_NOW",
    "Senders",
    "Serve",
    "at",
    "body",
    "demo_plans",
    "demo_stream",
    "event",
    "free_port",
    "job_states",
    "post",
    "request",
    "small_batches",
    "sqlite_ok",
]


def small_batches(stream: list[tuple[str, list[dict[str, Any]]]], size: int = 40
                  ) -> list[tuple[str, bytes]]:
    """The stream's batches cut into bodies of at most ``size`` events."""
    from seqscore.demo.webhook import batch_body

    return [(username, batch_body(events[start:start + size]))
            for username, events in stream for start in range(0, len(events), size)]


def request(url: str, method: str, path: str, *, headers: dict[str, str] | None = None,
            payload: bytes | None = None, timeout_s: float = 10.0
            ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One HTTP request: (status, JSON body or {}, headers); OSError when unreachable."""
    split = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(split[0], int(split[1]), timeout=timeout_s)
    try:
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"raw": raw[:300].decode("utf-8", "replace")}
        return response.status, answer, {k.lower(): v for k, v in response.getheaders()}
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


class Senders:
    """Threads that post batches as SendGrid does: each batch until it is answered 200.

    ``statuses`` counts every answer (0: no answer); ``acknowledged`` lists the
    batches answered 200; ``unexpected`` keeps answers other than 200/503 (or a 503
    not in SendGrid's error shape)."""

    def __init__(self, url: Callable[[], str], batches: list[tuple[str, bytes]],
                 keys: dict[str, str], *, threads: int = 2, pause_s: float = 0.005,
                 timeout_s: float = 20.0) -> None:
        self._url = url
        self._queue = list(reversed(batches))
        self._keys = keys
        self._pause_s = pause_s
        self._timeout_s = timeout_s
        self.lock = threading.Lock()
        self.acknowledged: list[tuple[str, bytes]] = []
        self.statuses: dict[int, int] = {}
        self.unexpected: list[tuple[int, Any]] = []
        self.slowest_s = 0.0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Senders:
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.1))
        assert not any(t.is_alive() for t in self._threads), (
            f"senders did not finish in time: {self.statuses}, {len(self._queue)} batches left, "
            f"{self.unexpected[:3]}")

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self._queue:
                    return
                username, payload = self._queue.pop()
            while True:
                started = time.monotonic()
                try:
                    status, answer = post(self._url(), payload,
                                          {"Authorization": f"Bearer {self._keys[username]}"},
                                          self._timeout_s)
                except OSError:
                    status, answer = 0, None
                with self.lock:
                    self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if status == 200:
                        self.acknowledged.append((username, payload))
                    elif status not in (0, 503) or (status == 503 and not sendgrid_error(answer)):
                        self.unexpected.append((status, answer))
                if status == 200:
                    time.sleep(self._pause_s)
                    break
                if self.unexpected:
                    return  # the test fails on it: no point retrying
                time.sleep(0.05)


def sendgrid_error(answer: Any) -> bool:
    """Whether ``answer`` is SendGrid's error shape: {"errors": [{"field", "message"}]}."""
    return (isinstance(answer, dict) and isinstance(answer.get("errors"), list)
            and bool(answer["errors"])
            and all(set(e) == {"field", "message"} and isinstance(e["message"], str)
                    for e in answer["errors"]))


def job_states(state_db: Path) -> dict[str, int]:
    """Jobs per state in a SQLite state store (read without the server's help)."""
    with sqlite3.connect(state_db, timeout=10) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())


def sqlite_ok(state_db: Path) -> bool:
    with sqlite3.connect(state_db, timeout=10) as conn:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
