"""HTTP abuse against a server configured as ``seqscore serve`` configures it, over raw sockets.

Slow senders, oversized headers and bodies, many connections, path and query
injection. Each answer must be SendGrid's error shape (never a 5xx, never a
framework body), the limits must come from the settings, and the stored data
must be unchanged afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_support import (
    LAST_CLOSED,
    Answer,
    ErrorLog,
    Installation,
    closed_by_peer,
    connect,
    install,
    production_server,
    read_answer,
    request_bytes,
    roundtrip,
)

from seqscore.api.app import create_app
from seqscore_testing import fresh_state_url

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
KEEP_ALIVE_S = 1
MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 256 * 1024
#: how late a deadline may act on a loaded 2-core machine
SLACK_S = 1.5

#: a seeded installation and its server's address
Site = tuple[Installation, tuple[str, int]]

RECEIVER = "/api/v1/events/sendgrid"
SCORES = "/v3/engagementquality/scores"
SUBUSERS = "/v3/engagementquality/subusers/scores"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("hostile-http")
    shop = install(folder, f"sqlite:///{folder / 'state.sqlite3'}",
                   http_header_timeout_seconds=HEADER_TIMEOUT_S,
                   http_body_timeout_seconds=BODY_TIMEOUT_S,
                   http_keep_alive_seconds=KEEP_ALIVE_S,
                   http_max_header_bytes=MAX_HEADER_BYTES, max_body_bytes=MAX_BODY_BYTES)
    try:
        with production_server(create_app(shop.services), shop.services.settings) as address:
            yield shop, address
    finally:
        shop.services.close()


def sendgrid_error(answer: Any, status: int, *, by_protocol: bool = False) -> str:
    """The single message of a SendGrid-shaped error answer with ``status``
    (``by_protocol``: written by the server's HTTP protocol, not the app)."""
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json"
    if by_protocol:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["connection"] == "close"
    (item,) = answer.json()["errors"]
    assert set(item) == {"field", "message"} and item["message"]
    return str(item["message"])


def healthy(address: tuple[str, int]) -> None:
    answer = roundtrip(address, "GET", "/api/v1/health")
    assert answer.status == 200 and answer.json()["status"] == "ok"


def auth(shop: Installation) -> dict[str, str]:
    return {"Authorization": f"Bearer {shop.parent_key}"}


# -- slow clients ----------------------------------------------------------------------------

def test_a_slow_loris_is_disconnected_within_the_header_timeout(
        site: Site, errors: ErrorLog) -> None:
    _shop, address = site
    with connect(address) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        while time.monotonic() - started < HEADER_TIMEOUT_S + SLACK_S + 2:
            try:
                sock.sendall(b"X-Keep: going\r\n")  # a header line every 100 ms, never the end
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.1)
        assert closed_after is not None, "the slow sender was never disconnected"
        assert HEADER_TIMEOUT_S - 0.1 <= closed_after <= HEADER_TIMEOUT_S + SLACK_S
    healthy(address)


def test_a_connection_that_sends_nothing_is_closed(site: Site, errors: ErrorLog) -> None:
    _shop, address = site
    with connect(address, timeout_s=HEADER_TIMEOUT_S + SLACK_S) as sock:
        started = time.monotonic()
        assert closed_by_peer(sock), "an idle new connection was kept open"
        assert time.monotonic() - started <= HEADER_TIMEOUT_S + SLACK_S


def test_an_idle_keep_alive_connection_is_closed(site: Site, errors: ErrorLog) -> None:
    _shop, address = site
    with connect(address, timeout_s=KEEP_ALIVE_S + SLACK_S) as sock:
        sock.sendall(request_bytes("GET", "/api/v1/health"))
        assert read_answer(sock).status == 200
        started = time.monotonic()
        assert closed_by_peer(sock)
        assert time.monotonic() - started <= KEEP_ALIVE_S + SLACK_S


def test_a_slow_body_gets_408_and_nothing_is_stored(site: Site, errors: ErrorLog) -> None:
    shop, address = site
    before = shop.snapshot()
    body = json.dumps([{"email": "a@example.com", "timestamp": 1, "event": "delivered"}])
    with connect(address) as sock:
        head = request_bytes("POST", RECEIVER, auth(shop), body.encode())
        sock.sendall(head[:-len(body) + 5])  # the headers, then five bytes of the body
        started = time.monotonic()
        answer = read_answer(sock)
        waited = time.monotonic() - started
        assert "in time" in sendgrid_error(answer, 408, by_protocol=True)
        assert answer.headers["connection"] == "close"
        assert closed_by_peer(sock)
    assert BODY_TIMEOUT_S - 0.1 <= waited <= BODY_TIMEOUT_S + SLACK_S
    assert shop.snapshot() == before
    healthy(address)


def test_a_body_dribbled_byte_by_byte_is_cut_off_at_the_body_timeout(
        site: Site, errors: ErrorLog) -> None:
    shop, address = site
    before = shop.snapshot()
    payload = b"[" + b" " * 10_000 + b"]"
    with connect(address) as sock:
        head = request_bytes("POST", RECEIVER, auth(shop), payload)
        sock.sendall(head[:-len(payload)])
        started = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for byte in payload:  # fast enough to pass any idle timeout, never done in time
                sock.sendall(bytes([byte]))
                time.sleep(0.01)
        assert time.monotonic() - started <= BODY_TIMEOUT_S + SLACK_S
    assert shop.snapshot() == before


# -- oversized headers and bodies ------------------------------------------------------------

@pytest.mark.parametrize("shape", ["one huge header", "many headers", "huge URL", "huge cookie"])
def test_oversized_headers_get_431_and_the_connection_closed(
        site: Site, errors: ErrorLog, shape: str) -> None:
    _shop, address = site
    size = MAX_HEADER_BYTES + 100
    headers: dict[str, str] = {}
    target = "/api/v1/health"
    if shape == "one huge header":
        headers["X-Big"] = "a" * size
    elif shape == "many headers":
        headers.update({f"X-H{n}": "v" * 20 for n in range(size // 25)})
    elif shape == "huge URL":
        target += "?q=" + "a" * size
    else:
        headers["Cookie"] = "; ".join(f"c{n}=v" for n in range(size // 6))
    with connect(address) as sock:
        sock.sendall(request_bytes("GET", target, headers))
        answer = read_answer(sock)
        assert "too large" in sendgrid_error(answer, 431, by_protocol=True)
        assert closed_by_peer(sock)
    headers_just_under = {"X-Fits": "a" * (MAX_HEADER_BYTES - 200)}
    assert roundtrip(address, "GET", "/api/v1/health", headers_just_under).status == 200


def test_an_endless_header_sent_in_pieces_is_refused_before_the_timeout(
        site: Site, errors: ErrorLog) -> None:
    _shop, address = site
    with connect(address) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 20 * MAX_HEADER_BYTES:
                sock.sendall(b"a" * 1024)
                sent += 1024
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = read_answer(sock)
        except (AssertionError, ConnectionResetError):
            return  # closed without an answer: also a refusal
        assert "too large" in sendgrid_error(answer, 431, by_protocol=True)


def test_an_oversized_body_gets_413_by_its_content_length(site: Site, errors: ErrorLog) -> None:
    shop, address = site
    before = shop.snapshot()
    with connect(address) as sock:
        sock.sendall(request_bytes("POST", RECEIVER, {
            **auth(shop), "Content-Length": str(MAX_BODY_BYTES + 1)})[:-2])  # no body sent
        sock.sendall(b"\r\n")
        answer = read_answer(sock)
    assert str(MAX_BODY_BYTES) in sendgrid_error(answer, 413)
    assert shop.snapshot() == before


def test_an_oversized_chunked_body_gets_413_while_streaming(site: Site, errors: ErrorLog) -> None:
    shop, address = site
    before = shop.snapshot()
    event = json.dumps({"email": "a@example.com", "timestamp": 1_763_640_000,
                        "event": "delivered", "sg_event_id": "x"}).encode()
    with connect(address) as sock:
        sock.sendall(("POST " + RECEIVER + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + shop.parent_key + "\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"[" + b",".join([event] * 200)
        sent = 0
        try:
            while sent <= MAX_BODY_BYTES + len(chunk):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                chunk = b"," + b",".join([event] * 200)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock)
    assert str(MAX_BODY_BYTES) in sendgrid_error(answer, 413)
    assert shop.snapshot() == before


@pytest.mark.parametrize("raw", [
    b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/v1/events/sendgrid HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
    b"POST /api/v1/events/sendgrid HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n",
    b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /api/v1/health\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)),  # a TLS hello
    b"GARBAGE\r\n\r\n",
])
def test_unparseable_requests_get_a_sendgrid_shaped_400(
        site: Site, errors: ErrorLog, raw: bytes) -> None:
    _shop, address = site
    with connect(address) as sock:
        sock.sendall(raw)
        answer = read_answer(sock)
        sendgrid_error(answer, 400, by_protocol=True)
        assert closed_by_peer(sock)
    healthy(address)


# -- many connections ------------------------------------------------------------------------

def test_500_concurrent_connections_are_all_served(site: Site, errors: ErrorLog) -> None:
    shop, address = site
    socks = [connect(address, timeout_s=30) for _ in range(500)]
    try:
        for sock in socks:  # all 500 are open before any request is sent
            sock.sendall(request_bytes("GET", SCORES + f"?from={LAST_CLOSED}&to={LAST_CLOSED}",
                                       auth(shop)))
        statuses = [read_answer(sock).status for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert statuses == [200] * 500
    healthy(address)


def test_beyond_the_connection_limit_requests_get_503_and_the_server_recovers(
        tmp_path: Path, errors: ErrorLog) -> None:
    shop = install(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite3'}",
                   http_max_connections=20, http_header_timeout_seconds=30.0)
    try:
        with production_server(create_app(shop.services), shop.services.settings) as address:
            def statuses_of(connections: int) -> list[Answer]:
                held = [connect(address) for _ in range(connections)]
                try:
                    for sock in held:
                        sock.sendall(request_bytes("GET", "/api/v1/health"))
                    return [read_answer(sock) for sock in held]
                finally:
                    for sock in held:
                        sock.close()

            # within the limit every request is served
            assert [a.status for a in statuses_of(15)] == [200] * 15
            time.sleep(0.2)  # the closed sockets leave the server
            # past it, some are refused: how many depends on how many of the 30 the
            # server has accepted when each request's headers arrive
            answers = statuses_of(30)
            statuses = sorted(a.status for a in answers)
            assert set(statuses) <= {200, 503} and statuses.count(503) >= 1, statuses
            refused = next(a for a in answers if a.status == 503)
            assert refused.json() == {"errors": [{"field": None,
                                                  "message": "service unavailable"}]}
            assert refused.headers["retry-after"] == "5"
            time.sleep(0.2)  # the closed sockets leave the server
            healthy(address)
    finally:
        shop.services.close()


# -- path and query injection ----------------------------------------------------------------

TRAVERSALS = [
    "/../../../../etc/passwd",
    "/static/../../../../pyproject.toml",
    "/static/..%2f..%2f..%2fpyproject.toml",
    "/static/%2e%2e/%2e%2e/settings.py",
    "/static/..%5c..%5cpyproject.toml",
    "/static/%252e%252e%252fpyproject.toml",
    "/static/app.css%00.txt",
    "/accounts/..%2f..%2fetc%2fpasswd",
    "/api/v1/scores/..%2f..%2f..%2fetc%2fpasswd",
    "/api/v1/scores/2026-11-19'%20OR%20'1'='1",
    "/api/v1/scores/2026-11-19%3BDROP%20TABLE%20results",
    "/api/v1/subusers/acme-news'--/scores/2026-11-19",
    "/api/v1/subusers/%27%20OR%201%3D1--/scores/2026-11-19",
    "/api/v1/subusers/..%2facme/scores/2026-11-19",
    "/api/v1/dashboard/accounts/%27%3B%20DELETE%20FROM%20accounts%3B--",
    "/v3/api_keys/1%3B%20DROP%20TABLE%20api_keys",
    "/v3/api_keys/%2e%2e",
    "/v3/engagementquality/scores/../subusers/scores",
    "/v3/engagementquality/%2e%2e/%2e%2e/api/v1/health",
    "/api/v1/health%0d%0aSet-Cookie:%20injected=1",
    "/%0d%0aLocation:%20http://evil.example/",
    "/" + "a" * 4000,
    "/api/v1/scores/" + "%ff%fe" * 50,
    "/api/v1/subusers/%C0%AE%C0%AE%2F/scores/2026-11-19",
    "//evil.example/%2e%2e",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_and_injection_in_paths_get_4xx(
        site: Site, errors: ErrorLog, target: str) -> None:
    shop, address = site
    before = shop.snapshot()
    for headers in ({}, auth(shop)):
        answer = roundtrip(address, "GET", target, headers)
        assert 400 <= answer.status < 500, (target, answer.status, answer.body[:200])
        assert b"[build-system]" not in answer.body and b"root:" not in answer.body
        assert "set-cookie" not in answer.headers or "injected" not in answer.headers["set-cookie"]
        assert "location" not in answer.headers or "evil" not in answer.headers["location"]
    assert shop.snapshot() == before


INVALID = 'failed to parse request: "{}" invalid'

#: (query, the contract's errors) for /subusers/scores; ``D`` is a valid date
CRAFTED_PAGE_QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("date=D&after_key=1%20OR%201%3D1", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=1%3B%20DROP%20TABLE%20results",
     [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=1'--", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=-1", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=0x10", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=1e3", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=%D9%A1%D9%A2", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=%EF%BC%91", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=1%00", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=%20", [("after_key", INVALID.format("after_key"))]),
    ("date=D&after_key=", [("after_key", INVALID.format("after_key"))]),
    ("date=D&limit=1%20OR%201%3D1", [("limit", INVALID.format("limit"))]),
    ("date=D&limit=5.0", [("limit", INVALID.format("limit"))]),
    ("date=D&limit=%2B5", [("limit", INVALID.format("limit"))]),
    ("date=D&limit=1e3", [("limit", INVALID.format("limit"))]),
    ("date=D&limit=" + "9" * 5000, [("limit", INVALID.format("limit"))]),
    ("date=D&limit=-" + "9" * 5000,
     [("limit", 'failed to parse request: "limit" must be a positive integer')]),
    ("date=D&limit=0", [("limit", 'failed to parse request: "limit" must be a positive integer')]),
    ("date=D'%20OR%20'1'='1", [("date", INVALID.format("date"))]),
    ("date=D%3B--", [("date", INVALID.format("date"))]),
    ("date=2026-11-19%00", [("date", INVALID.format("date"))]),
    ("date=2026-13-01", [("date", INVALID.format("date"))]),
    ("date=2026-02-30", [("date", INVALID.format("date"))]),
    ("date=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-11-19", [("date", INVALID.format("date"))]),
    ("date=2026-11-19T00:00:00", [("date", INVALID.format("date"))]),
    ("date=%20" + "2026-11-19", [("date", INVALID.format("date"))]),
    ("date=" + "2" * 5000, [("date", INVALID.format("date"))]),
    ("date=9999-12-31", [("date", 'failed to parse request: "date" cannot be in the future')]),
    ("date=0001-01-01",
     [("date", 'failed to parse request: "date" cannot be more than 90 days in the past')]),
    ("date=D'&limit=0&after_key=x", [("date", INVALID.format("date")),
                                     ("limit", 'failed to parse request: "limit" must be a '
                                               "positive integer"),
                                     ("after_key", INVALID.format("after_key"))]),
]

CRAFTED_RANGE_QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("from=D'%20OR%201=1--&to=D", [("from", INVALID.format("from"))]),
    ("from=D&to=D%3B%20DELETE%20FROM%20results", [("to", INVALID.format("to"))]),
    ("from=D&to=99999-01-01", [("to", INVALID.format("to"))]),
    ("from=-2026-11-19&to=D", [("from", INVALID.format("from"))]),
    ("from=D&to=D&from=2026-02-30", [("from", INVALID.format("from"))]),
    ("from=" + "1" * 5000 + "&to=D", [("from", INVALID.format("from"))]),
    ("from=9999-12-31&to=D", [("to", 'failed to parse request: "from" cannot come after "to"')]),
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                                marks=pytest.mark.postgres)])
def either_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Site]:
    """A seeded installation on each state-store engine, served in production form."""
    folder = tmp_path_factory.mktemp(f"hostile-sql-{request.param}")
    with fresh_state_url(request.param, folder) as url:
        shop = install(folder, url)
        try:
            with production_server(create_app(shop.services),
                                   shop.services.settings) as address:
                yield shop, address
        finally:
            shop.services.close()


def test_crafted_after_key_dates_and_limits_get_the_contracts_400s(
        either_engine: Site, errors: ErrorLog) -> None:
    shop, address = either_engine
    day = LAST_CLOSED.isoformat()
    clean = roundtrip(address, "GET", f"{SUBUSERS}?date={day}&limit=2", auth(shop))
    assert clean.status == 200
    before = shop.snapshot()
    cases = [(SUBUSERS, q, e) for q, e in CRAFTED_PAGE_QUERIES] + [
        (SCORES, q, e) for q, e in CRAFTED_RANGE_QUERIES]
    for path, query, expected in cases:
        target = f"{path}?{query.replace('D', day)}"
        answer = roundtrip(address, "GET", target, auth(shop))
        assert answer.status == 400, (target, answer.status, answer.body[:300])
        got = [(e["field"], e["message"]) for e in answer.json()["errors"]]
        assert got == expected, target
    assert shop.snapshot() == before
    again = roundtrip(address, "GET", f"{SUBUSERS}?date={day}&limit=2", auth(shop))
    assert (again.status, again.json()) == (200, clean.json())
    # the largest valid after_key is a key after every user_id: an empty last page
    tail = roundtrip(address, "GET", f"{SUBUSERS}?date={day}&after_key={'9' * 400}", auth(shop))
    assert (tail.status, tail.json()) == (200, {"result": []})


def test_injection_in_on_behalf_of_and_credentials(either_engine: Site, errors: ErrorLog) -> None:
    shop, address = either_engine
    before = shop.snapshot()
    day = LAST_CLOSED.isoformat()
    target = f"{SCORES}?from={day}&to={day}"
    for on_behalf_of in ["acme-news' OR '1'='1", "account-id 1001 OR 1=1", "account-id -1",
                         "account-id " + "9" * 5000, "account-id 1001; DROP TABLE accounts",
                         "%", "_", "acme%", "' UNION SELECT api_key FROM api_keys--",
                         "\u0430cme-news"]:
        answer = roundtrip(address, "GET", target, {**auth(shop), "on-behalf-of": on_behalf_of})
        assert answer.status in (403, 404), (on_behalf_of, answer.status, answer.body)
        sendgrid_error(answer, answer.status)
    for credentials in ["Bearer ' OR '1'='1", "Bearer SG.x.y' OR 1=1--", "Basic Jw==",
                        "Bearer " + "A" * 6000, "Bearer SG.%00.%00", "Basic " + "=" * 100]:
        answer = roundtrip(address, "GET", target, {"Authorization": credentials})
        assert answer.status == 401, (credentials, answer.status)
        sendgrid_error(answer, 401)
    assert shop.snapshot() == before


def test_a_client_that_hangs_up_mid_body_is_no_server_error(site: Site, errors: ErrorLog) -> None:
    shop, address = site
    before = shop.snapshot()
    with connect(address) as sock:
        sock.sendall(request_bytes("POST", RECEIVER, {**auth(shop), "Content-Length": "5000"})
                     + b'[{"event": "deliv')
        time.sleep(0.2)  # the receiver is waiting for the rest
    time.sleep(0.3)  # the server notices the hang-up; ``errors`` then checks its log
    assert shop.snapshot() == before
    healthy(address)
