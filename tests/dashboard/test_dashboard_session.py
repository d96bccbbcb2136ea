"""Logging in and out of the dashboard: the cookie, the form tokens, re-verification."""

from __future__ import annotations

import stat

import pytest
from dashboard_support import SESSION_COOKIE, form_token, login, set_cookie_headers
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.dashboard.session import (
    LOGIN_COOKIE,
    SECRET_FILE,
    Sessions,
    load_or_create_secret,
)


@pytest.fixture
def client(services):
    return TestClient(create_app(services))


@pytest.fixture
def parent_key(world):
    parent = world.account("acme")
    world.account("acme-news", parent=parent)
    return world.key(parent)


def test_login_sets_a_session_cookie_and_redirects_home(client, parent_key):
    answer = login(client, parent_key)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    assert set_cookie_headers(answer, SESSION_COOKIE)
    assert client.get("/").status_code == 200


def test_session_cookie_flags(client, parent_key):
    (header,) = set_cookie_headers(login(client, parent_key), SESSION_COOKIE)
    attributes = {part.strip().split("=")[0].lower(): part.strip()
                  for part in header.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/"
    assert "secure" not in attributes  # plain http here; https sets it


def test_session_cookie_is_secure_over_https(services, world):
    key = world.key(world.account("acme"))
    client = TestClient(create_app(services), base_url="https://testserver")
    (header,) = set_cookie_headers(login(client, key), SESSION_COOKIE)
    assert "secure" in header.lower()


def test_cookie_does_not_contain_the_api_key(client, parent_key):
    (header,) = set_cookie_headers(login(client, parent_key), SESSION_COOKIE)
    value = header.split(";")[0].split("=", 1)[1]
    _sg, key_id, secret = parent_key.split(".")
    assert parent_key not in value
    assert secret not in value
    assert key_id not in value


def test_wrong_key_shows_an_error_and_sets_no_session(client, parent_key):
    wrong = parent_key[:-4] + ("AAAA" if not parent_key.endswith("AAAA") else "BBBB")
    for key in (wrong, "not-a-key", ""):
        answer = login(client, key)
        assert answer.status_code == 401
        assert "not valid" in answer.text
        assert not set_cookie_headers(answer, SESSION_COOKIE)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_key_without_the_read_scope_is_refused(client, world):
    key = world.key(world.account("acme"), scopes="events.write")
    answer = login(client, key)
    assert answer.status_code == 403
    assert "engagement_quality.read" in answer.text
    assert not set_cookie_headers(answer, SESSION_COOKIE)


def test_login_form_needs_its_token(client, parent_key):
    client.get("/login")
    for token in (None, "forged"):
        data = {"api_key": parent_key} | ({"csrf_token": token} if token else {})
        answer = client.post("/login", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert "form expired" in answer.text
        assert not set_cookie_headers(answer, SESSION_COOKIE)


def test_login_token_of_another_browser_is_refused(services, parent_key):
    app = create_app(services)
    attacker, victim = TestClient(app), TestClient(app)
    token = form_token(attacker.get("/login").text)
    victim.get("/login")
    answer = victim.post("/login", data={"csrf_token": token, "api_key": parent_key},
                         follow_redirects=False)
    assert answer.status_code == 403


def test_login_cookie_is_strict_and_limited_to_the_login_path(client):
    (header,) = set_cookie_headers(client.get("/login"), LOGIN_COOKIE)
    lowered = header.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/login" in lowered


def test_logout_needs_the_session_csrf_token(client, parent_key):
    login(client, parent_key)
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post("/logout", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert not set_cookie_headers(answer, SESSION_COOKIE)
    assert client.get("/").status_code == 200  # still logged in


def test_logout_clears_the_cookie(client, parent_key):
    login(client, parent_key)
    token = form_token(client.get("/").text)
    answer = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    (header,) = set_cookie_headers(answer, SESSION_COOKIE)
    assert "max-age=0" in header.lower()
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_revoked_key_is_logged_out(client, services, parent_key):
    login(client, parent_key)
    key_id = parent_key.split(".")[1]
    services.accounts.revoke_key(key_id)
    services.auth.forget()  # what the management API does after a revocation
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert set_cookie_headers(answer, SESSION_COOKIE)  # cleared


def test_disabled_account_is_logged_out(client, services, world):
    parent = world.account("acme")
    key = world.key(parent)
    login(client, key)
    services.state.update_account(parent.user_id, disabled=True)
    services.auth.forget()
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_tampered_cookie_is_ignored(client, parent_key):
    login(client, parent_key)
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-3] + ("xyz" if value[-3:] != "xyz" else "abc"))
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_unauthenticated_page_redirects_with_next_and_login_returns_there(client, world,
                                                                        parent_key):
    answer = client.get("/accounts/acme-news?date=2026-11-19", follow_redirects=False)
    assert answer.headers["location"] == "/login?next=%2Faccounts%2Facme-news%3Fdate%3D2026-11-19"
    page = client.get(answer.headers["location"])
    assert 'name="next" value="/accounts/acme-news?date=2026-11-19"' in page.text
    answer = login(client, parent_key, next_url="/accounts/acme-news?date=2026-11-19")
    assert answer.headers["location"] == "/accounts/acme-news?date=2026-11-19"


@pytest.mark.parametrize("next_url", ["//evil.example/", "https://evil.example/",
                                      "/\\evil.example", "javascript:alert(1)", "/static/x"])
def test_login_never_redirects_off_site(client, parent_key, next_url):
    assert login(client, parent_key, next_url=next_url).headers["location"] == "/"


def test_secret_file_is_created_private_and_reused(tmp_path):
    first = load_or_create_secret(tmp_path)
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_or_create_secret(tmp_path) == first


def test_sessions_survive_a_restart_with_the_same_secret(tmp_path):
    secret = load_or_create_secret(tmp_path)
    cookie, session = Sessions(secret).issue("SG.key")
    assert Sessions(load_or_create_secret(tmp_path)).read(cookie) == session
    assert Sessions(b"another secret" * 3).read(cookie) is None


def test_oversized_or_crowded_forms_are_refused(client, parent_key):
    token = form_token(client.get("/login").text)
    crowded = {f"f{i}": "x" for i in range(30)} | {"csrf_token": token, "api_key": parent_key}
    huge = {"csrf_token": token, "api_key": parent_key, "pad": "x" * 5000}
    for data in (crowded, huge):
        answer = client.post("/login", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert not set_cookie_headers(answer, SESSION_COOKIE)
