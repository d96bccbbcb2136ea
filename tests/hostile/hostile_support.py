"""What the hostile-input tests share: a production-configured server, raw sockets, a seeded world.

``production_server`` serves an app exactly as ``seqscore serve`` does
(``seqscore.server.server_config``: uvloop, the guarded httptools protocol and
its limits), on a free loopback port, in a background thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from live_server import running
from seqscore.clock import FrozenClock
from seqscore.server import server_config
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import Account, AccountKind
from seqscore_testing import TEST_NOW, World

#: Seeded and derandomized: CI sees the same inputs on every run.
settings.register_profile(
    "hostile", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much])
HOSTILE = settings.get_profile("hostile")


@contextmanager
def production_server(app: Any, server_settings: Settings) -> Iterator[tuple[str, int]]:
    """Serve ``app`` with ``server_config(app, server_settings)``; yields (host, port)."""
    config = server_config(app, server_settings.replace(host="127.0.0.1", log_level="warning"))
    config.lifespan = "on"
    with running(config) as port:
        yield "127.0.0.1", port


@dataclass(frozen=True)
class Answer:
    """One HTTP/1.1 answer read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(address: tuple[str, int], timeout_s: float = 10.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """Read one answer (Content-Length or chunked body); fails if the peer closes first."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {buffer!r}"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside the body"
            rest += chunk
        return Answer(status, headers, rest[:size])
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body, rest = body + rest[:size], rest[size + 2:]
            if size == 0:
                break
    return Answer(status, headers, body)


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the peer has closed (EOF or reset), reading whatever is left."""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def request_bytes(method: str, target: str, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    given = {name.lower() for name in headers or {}}
    if (body or method in ("POST", "PUT")) and not given & {"content-length",
                                                            "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def roundtrip(address: tuple[str, int], method: str, target: str,
              headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
    with connect(address) as sock:
        sock.sendall(request_bytes(method, target, headers, body))
        return read_answer(sock)


# -- a seeded installation ------------------------------------------------------------------

#: The last closed day at TEST_NOW, and the days of stored results (the last 30 closed days).
LAST_CLOSED = TEST_NOW.date() - dt.timedelta(days=1)
RESULT_DAYS = [LAST_CLOSED - dt.timedelta(days=n) for n in range(30)]


@dataclass
class Installation:
    """A parent with three children (one a customer account), results, and keys."""

    services: Services
    parent: Account
    children: list[Account]
    parent_key: str
    child_key: str

    def snapshot(self) -> tuple[Any, ...]:
        """Everything an injection could change: accounts, keys, results, events, quarantine."""
        state = self.services.state
        accounts = sorted((a.user_id, a.username, a.parent_id, a.disabled)
                          for a in state.list_accounts())
        keys = sorted((k.key_id, k.revoked, tuple(sorted(k.scopes)))
                      for a in state.list_accounts() for k in state.list_keys(a.user_id))
        first = LAST_CLOSED - dt.timedelta(days=120)
        results = {a.user_id: sorted(state.get_results(a.user_id, first, TEST_NOW.date()))
                   for a in state.list_accounts()}
        return (accounts, keys, results, self.services.events.count(),
                len(state.list_quarantined(limit=1_000_000)))


def install(folder: Path, state_url: str, **changes: Any) -> Installation:
    """Open services frozen at TEST_NOW (the caller closes them) and seed them."""
    values: dict[str, Any] = {"worker": False, "ingest_processes": 0,
                              "rate_limit_per_minute": 1_000_000, **changes}
    settings = Settings(data_dir=folder / "data", state_url=state_url, **values)
    services = Services.open(settings, clock=FrozenClock(TEST_NOW))
    world = World(services)
    parent = world.account("acme", user_id=1000)
    children = [world.account("acme-news", parent=parent, user_id=1001),
                world.account("acme-billing", parent=parent, user_id=1002),
                world.account("shop", parent=parent, user_id=1003, kind=AccountKind.CUSTOMER)]
    for account in [parent, *children]:
        for on in RESULT_DAYS:
            world.result(account, on, score=None if on.day % 7 == 0 else 1 + on.day % 5)
    return Installation(services, parent, children, world.key(parent),
                        world.key(children[0]))


class ErrorLog(logging.Handler):
    """Collects ERROR records of the server's loggers (uvicorn's do not reach the root)."""

    LOGGERS = ("seqscore", "uvicorn.error", "uvicorn")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorLog:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def messages(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


