"""Security headers and cookies on a real server: every dashboard route, and the APIs.

The dashboard's routes are enumerated from the app, so a new page cannot go without
the headers. Every page and asset must carry a Content-Security-Policy whose scripts
come from 'self' only (no 'unsafe-inline', no 'unsafe-eval'), ``frame-ancestors
'none'``, ``nosniff`` and a Referrer-Policy; no page may hold an inline script, an
event-handler attribute or a ``javascript:`` URL. Every cookie is HttpOnly and
SameSite=Strict, and Secure when the request came over HTTPS (a TLS proxy on
loopback, ``X-Forwarded-Proto: https``). Every API answer (success, error, 413, the
framework's 404 and 405) says ``nosniff``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from isolation_world import app_routes

from live_server import serving
from seqscore.api.app import create_app
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import TEST_NOW, World

CLOSED = "2026-11-19"
Site = tuple[str, str, set[tuple[str, str]]]  # base URL, a parent's key, the app's routes


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("web")
    settings = Settings(data_dir=folder / "data", worker=False, max_body_bytes=64 * 1024)
    services = Services.open(settings, clock=FrozenClock(TEST_NOW))
    try:
        world = World(services)
        parent = world.account("webparent")
        child = world.account("webchild", parent=parent)
        for account in (parent, child):
            world.result(account, TEST_NOW.date().replace(day=19))
        app = create_app(services)
        with serving(app) as url:
            yield url, world.key(parent), app_routes(app)
    finally:
        services.close()


def dashboard_routes(routes: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(m, p) for m, p in routes if not p.startswith(("/api/", "/v3/", "/docs"))}


def cookie(answer: httpx.Response, name: str) -> str:
    """The value ``answer`` sets for cookie ``name`` (read from the header: a client on
    plain http keeps a Secure cookie to itself, so the tests send cookies by hand)."""
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie set")


def login(client: httpx.Client, key: str, **headers: str) -> list[httpx.Response]:
    """GET /login, then POST the form with the login cookie: both answers."""
    page = client.get("/login", headers=headers)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.cookies.clear()
    return [page, client.post("/login", headers={
        **headers, "Cookie": f"seqscore_login={cookie(page, 'seqscore_login')}"},
        data={"csrf_token": token, "api_key": key, "next": "/"})]


def dashboard_answers(url: str, key: str, **headers: str) -> dict[str, list[httpx.Response]]:
    """Every dashboard route answered, by (method, route): pages, redirects, errors."""
    out: dict[str, list[httpx.Response]] = {}
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
        out["GET /"] = [client.get("/", headers=headers)]  # not signed in: 303
        out["GET /accounts/{username}"] = [client.get("/accounts/webchild", headers=headers)]
        failed = login(client, key + "x", **headers)
        out["GET /login"] = [failed[0]]
        out["POST /login"] = [failed[1], client.post("/login", headers=headers,
                                                     data={"api_key": key})]  # no token: 403
        good = login(client, key, **headers)
        out["GET /login"].append(good[0])
        out["POST /login"].append(good[1])
        client.cookies.clear()
        headers = {**headers, "Cookie": f"seqscore_session={cookie(good[1], 'seqscore_session')}"}
        out["GET /"] += [client.get("/", headers=headers, params={"date": CLOSED}),
                         client.get("/", headers=headers, params={"date": "bad"})]
        out["GET /accounts/{username}"] += [
            client.get("/accounts/webchild", headers=headers, params={"date": CLOSED}),
            client.get("/accounts/nobody", headers=headers)]
        css = re.search(r'href="(/static/[^"]+)"', out["GET /"][1].text)
        assert css, "no stylesheet on the overview"
        out["GET /static/{name}"] = [client.get(css.group(1), headers=headers),
                                     client.get("/static/nothing.css", headers=headers)]
        out["POST /logout"] = [client.post("/logout", headers=headers, data={"csrf_token": "x"}),
                               client.post("/logout", headers=headers, data={
                                   "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"',
                                                            out["GET /"][1].text)[0]})]
    return out


def csp_problems(policy: str) -> list[str]:
    directives = {part.split()[0]: part.split()[1:]
                  for part in (p.strip() for p in policy.split(";")) if part}
    scripts = directives.get("script-src", directives.get("default-src"))
    problems = []
    if scripts is None or any(s in scripts for s in ("'unsafe-inline'", "'unsafe-eval'", "*",
                                                     "data:", "http:", "https:")):
        problems.append(f"scripts not limited to 'self': {scripts}")
    if directives.get("frame-ancestors") != ["'none'"]:
        problems.append("frame-ancestors is not 'none'")
    if directives.get("object-src", directives.get("default-src")) not in (["'none'"],
                                                                           ["'self'"]):
        problems.append("plugins not limited")
    return problems


def test_every_dashboard_route_sends_the_security_headers(
        site: Site) -> None:
    url, key, routes = site
    answers = dashboard_answers(url, key)
    assert {tuple(name.split(" ", 1)) for name in answers} == dashboard_routes(routes), (
        "a dashboard route is not checked here")
    statuses = sorted({a.status_code for batch in answers.values() for a in batch})
    assert statuses == [200, 303, 400, 401, 403, 404]
    for name, batch in answers.items():
        for answer in batch:
            where = f"{name} -> {answer.status_code}"
            headers = answer.headers
            assert csp_problems(headers.get("content-security-policy", "")) == [], where
            assert headers.get("x-content-type-options") == "nosniff", where
            assert headers.get("referrer-policy") in ("no-referrer", "same-origin"), where
            assert headers.get("x-frame-options") == "DENY", where
            if answer.headers.get("content-type", "").startswith("text/html"):
                page = answer.text
                assert not re.search(r"<script(?![^>]*\bsrc=)", page, re.I), where
                assert not re.search(r"\son[a-z]+\s*=", page, re.I), where
                assert "javascript:" not in page.lower(), where
                if answer.status_code == 200:
                    assert headers.get("cache-control") == "no-store", where


@pytest.mark.parametrize("https", [False, True], ids=["http", "https-behind-proxy"])
def test_every_cookie_is_httponly_strict_and_secure_over_https(
        site: Site, https: bool) -> None:
    url, key, _routes = site
    headers = {"X-Forwarded-Proto": "https"} if https else {}
    answers = dashboard_answers(url, key, **headers)
    cookies = [c for batch in answers.values() for a in batch
               for c in a.headers.get_list("set-cookie")]
    names = {c.split("=", 1)[0] for c in cookies}
    assert names == {"seqscore_login", "seqscore_session"}
    for cookie in cookies:
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert "httponly" in flags, cookie
        assert "samesite=strict" in flags, cookie
        assert ("secure" in flags) is https, cookie


def test_every_api_answer_says_nosniff(site: Site) -> None:
    url, key, _routes = site
    bearer = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = [
            client.get("/v3/engagementquality/scores", headers=bearer,
                       params={"from": CLOSED, "to": CLOSED}),
            client.get("/v3/engagementquality/scores", params={"from": CLOSED, "to": CLOSED}),
            client.get("/v3/engagementquality/scores", headers=bearer, params={"from": "x"}),
            client.get("/api/v1/dashboard/overview", headers=bearer),
            client.get("/api/v1/scores/" + CLOSED, headers=bearer),
            client.get("/api/v1/webhook-key", headers=bearer),
            client.delete("/api/v1/webhook-key", headers=bearer),
            client.post("/api/v1/events/sendgrid", headers=bearer, content=b"[]"),
            client.post("/api/v1/events/sendgrid", headers=bearer, content=b"<html>"),
            client.post("/api/v1/events/sendgrid", headers=bearer, content=b"[" * 70_000),
            client.get("/api/v1/health"),
            client.get("/api/openapi.json"),
            client.get("/v3/nothing-here"),
            client.patch("/v3/api_keys", headers=bearer),
        ]
    assert sorted({a.status_code for a in answers}) == [200, 204, 400, 401, 404, 405, 413]
    for answer in answers:
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], (
            answer.request.url, answer.status_code)


def test_the_data_dir_is_its_owners_only(tmp_path: Path) -> None:
    """Created by seqscore: 0700 (whatever the umask); each secret file in it 0600."""
    data = tmp_path / "deep" / "data"
    services = Services.open(Settings(data_dir=data, worker=False, ingest_processes=0),
                             clock=FrozenClock(TEST_NOW))
    try:
        _ = services.ingest  # creates recipient-key and quarantine-key
        create_app(services)  # creates dashboard-secret
        assert data.stat().st_mode & 0o777 == 0o700
        secrets = {p.name: p.stat().st_mode & 0o777 for p in data.iterdir()
                   if p.name in ("recipient-key", "quarantine-key", "dashboard-secret")}
        assert secrets == dict.fromkeys(("recipient-key", "quarantine-key",
                                         "dashboard-secret"), 0o600)
    finally:
        services.close()
