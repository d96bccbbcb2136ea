"""/v3/subusers and /v3/api_keys: onboarding without SQL, in SendGrid's shapes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_check import ValidatingClient
from seq_api_support import bearer, client_for, day, entry

from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import AccountKind
from seqscore_testing import World

SCORES_OK = "/v3/engagementquality/scores?from=2026-11-19&to=2026-11-19"
KEY_RE = re.compile(r"SG\.([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}")
FORBIDDEN = (403, {"errors": [{"field": None, "message": "access forbidden"}]})
NOT_FOUND = (404, {"errors": [{"field": None, "message": "resource not found"}]})
GRANT_INVALID = (401, {"errors": [{"field": None, "message":
                                   "The provided authorization grant is invalid, expired, "
                                   "or revoked"}]})
ALL_SCOPES = sorted(["engagement_quality.read", "subusers.read", "subusers.create",
                     "api_keys.read", "api_keys.create", "api_keys.delete", "events.write",
                     "scores.read"])


@pytest.fixture
def client(services: Services) -> ValidatingClient:
    return client_for(services)


def test_onboarding_a_subuser_end_to_end(client: ValidatingClient, world: World) -> None:
    parent = world.account("acme")
    key = world.key(parent)

    r = client.post("/v3/subusers", headers=bearer(key),
                    json={"username": "acme-news", "email": "news@acme.test",
                          "password": "ignored-there-is-no-log-in"})
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"username", "user_id", "email"}
    assert (created["username"], created["email"]) == ("acme-news", "news@acme.test")
    assert isinstance(created["user_id"], int)
    assert r.headers["X-RateLimit-Limit"] == "600"

    r = client.get("/v3/subusers", headers=bearer(key))
    assert (r.status_code, r.json()) == (200, [
        {"disabled": False, "email": "news@acme.test", "id": created["user_id"],
         "username": "acme-news"}])

    r = client.post("/v3/api_keys", headers=bearer(key, **{"on-behalf-of": "acme-news"}),
                    json={"name": "news reader", "scopes": ["engagement_quality.read"]})
    assert r.status_code == 201
    made = r.json()
    assert set(made) == {"api_key", "api_key_id", "name", "scopes"}
    match = KEY_RE.fullmatch(made["api_key"])
    assert match and match.group(1) == made["api_key_id"]
    assert (made["name"], made["scopes"]) == ("news reader", ["engagement_quality.read"])

    # the new key reads the child's own scores
    news = world.services.state.require_account("acme-news")
    world.result(news, day("2026-11-19"), score=2, metrics=(2, 2, 2, 2, 2))
    r = client.get(SCORES_OK, headers=bearer(made["api_key"]))
    assert (r.status_code, r.json()) == (
        200, {"result": [entry(news, day("2026-11-19"), 2, (2, 2, 2, 2, 2))]})

    # the key is the child's: listed on its behalf, not among the parent's keys
    r = client.get("/v3/api_keys", headers=bearer(key, **{"on-behalf-of": "acme-news"}))
    assert (r.status_code, r.json()) == (
        200, {"result": [{"api_key_id": made["api_key_id"], "name": "news reader"}]})
    r = client.get("/v3/api_keys", headers=bearer(key))
    assert r.status_code == 200
    assert made["api_key_id"] not in {k["api_key_id"] for k in r.json()["result"]}
    assert all(set(k) == {"api_key_id", "name"} for k in r.json()["result"])


def test_full_access_key_lists_every_scope(client: ValidatingClient, world: World) -> None:
    key = world.key(world.account("acme"))
    r = client.post("/v3/api_keys", headers=bearer(key), json={"name": "everything"})
    assert r.status_code == 201
    assert r.json()["scopes"] == ALL_SCOPES


def test_get_subusers_filters_and_pages(client: ValidatingClient, world: World,
                                        services: Services) -> None:
    parent = world.account("acme")
    kids = [world.account(name, parent=parent, user_id=uid) for name, uid in
            (("k-1000", 1000), ("k-99", 99), ("k-5", 5))]
    world.account("shop", parent=parent, user_id=7, kind=AccountKind.CUSTOMER)
    other = world.account("other")
    world.account("not-mine", parent=other, user_id=50)
    services.state.update_account(99, disabled=True)
    key = world.key(parent)

    def ids(query: str) -> list[Any]:
        r = client.get(f"/v3/subusers{query}", headers=bearer(key))
        assert r.status_code == 200
        return [(c["id"], c["disabled"]) for c in r.json()]

    assert ids("") == [(5, False), (7, False), (99, True), (1000, False)]
    assert ids("?username=k-99") == [(99, True)]
    assert ids("?username=not-mine") == []
    assert ids("?limit=2") == [(5, False), (7, False)]
    assert ids("?limit=2&offset=2") == [(99, True), (1000, False)]
    assert ids("?offset=4") == []
    assert kids[0].user_id == 1000


@pytest.mark.parametrize(("query", "field"), [("?limit=abc", "limit"), ("?limit=-1", "limit"),
                                              ("?offset=x", "offset"), ("?offset=1.5", "offset")])
def test_get_subusers_bad_query_is_400(client: ValidatingClient, world: World, query: str,
                                       field: str) -> None:
    r = client.get(f"/v3/subusers{query}", headers=bearer(world.key(world.account("acme"))))
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert error["field"] == field and field in error["message"]


SUBUSER_BODIES: list[tuple[str, bytes | dict[str, Any], str | None]] = [
    ("not-json", b"{username: acme}", None),
    ("array", b'[{"username": "x"}]', None),
    ("string", b'"x"', None),
    ("empty-object", {}, "username"),
    ("username-not-string", {"username": 5, "email": "a@b.test"}, "username"),
    ("username-blank", {"username": "  ", "email": "a@b.test"}, "username"),
    ("username-with-space", {"username": "two words", "email": "a@b.test"}, "username"),
    ("email-missing", {"username": "fine"}, "email"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in SUBUSER_BODIES],
                         ids=[c[0] for c in SUBUSER_BODIES])
def test_post_subusers_bad_body_is_400(client: ValidatingClient, world: World,
                                       body: bytes | dict[str, Any], field: str | None) -> None:
    key = world.key(world.account("acme"))
    if isinstance(body, bytes):
        r = client.post("/v3/subusers", headers=bearer(key, **{"content-type":
                                                                "application/json"}),
                        content=body)
    else:
        r = client.post("/v3/subusers", headers=bearer(key), json=body)
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert error["field"] == field
    assert world.services.state.list_children(world.services.state
                                              .require_account("acme").user_id) == []


def test_post_subusers_taken_username_is_409(client: ValidatingClient, world: World) -> None:
    parent = world.account("acme")
    world.account("taken", parent=parent)
    r = client.post("/v3/subusers", headers=bearer(world.key(parent)),
                    json={"username": "taken", "email": "t@acme.test"})
    assert r.status_code == 409
    assert "taken" in r.json()["errors"][0]["message"]


KEY_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("name-missing", {}, "name"),
    ("name-not-string", {"name": ["k"]}, "name"),
    ("scopes-string", {"name": "k", "scopes": "engagement_quality.read"}, "scopes"),
    ("scopes-not-strings", {"name": "k", "scopes": [1]}, "scopes"),
    ("scope-unknown", {"name": "k", "scopes": ["mail.send"]}, "scopes"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in KEY_BODIES],
                         ids=[c[0] for c in KEY_BODIES])
def test_post_api_keys_bad_body_is_400(client: ValidatingClient, world: World,
                                       body: dict[str, Any], field: str) -> None:
    parent = world.account("acme")
    key = world.key(parent)
    r = client.post("/v3/api_keys", headers=bearer(key), json=body)
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert error["field"] == field
    assert len(world.services.state.list_keys(parent.user_id)) == 1


# (scopes of the calling key, method, path, body) -> allowed?
SCOPE_CASES: list[tuple[str, str, str, dict[str, Any] | None, bool]] = [
    ("engagement_quality.read", "GET", "/v3/subusers", None, False),
    ("engagement_quality.read", "POST", "/v3/subusers", {"username": "n", "email": "n@x.test"},
     False),
    ("engagement_quality.read", "GET", "/v3/api_keys", None, False),
    ("engagement_quality.read", "POST", "/v3/api_keys", {"name": "k"}, False),
    ("subusers.read", "GET", "/v3/subusers", None, True),
    ("subusers.read", "POST", "/v3/subusers", {"username": "n", "email": "n@x.test"}, False),
    ("subusers.create", "POST", "/v3/subusers", {"username": "n", "email": "n@x.test"}, True),
    ("api_keys.read", "GET", "/v3/api_keys", None, True),
    ("api_keys.read", "POST", "/v3/api_keys", {"name": "k", "scopes": ["api_keys.read"]},
     False),
    # a key never grants more than it has
    ("api_keys.create", "POST", "/v3/api_keys", {"name": "k"}, False),
    ("api_keys.create", "POST", "/v3/api_keys", {"name": "k", "scopes": ["api_keys.create"]},
     True),
    ("api_keys.create,engagement_quality.read", "POST", "/v3/api_keys",
     {"name": "k", "scopes": ["engagement_quality.read"]}, True),
    ("api_keys.create", "POST", "/v3/api_keys",
     {"name": "k", "scopes": ["engagement_quality.read"]}, False),
    ("api_keys.create", "POST", "/v3/api_keys", {"name": "k", "scopes": ["full_access"]},
     False),
]


@pytest.mark.parametrize(("scopes", "method", "path", "body", "allowed"), SCOPE_CASES)
def test_management_scopes(client: ValidatingClient, world: World, scopes: str, method: str,
                           path: str, body: dict[str, Any] | None, allowed: bool) -> None:
    key = world.key(world.account("acme"), scopes)
    r = client.request(method, path, headers=bearer(key), json=body)
    if allowed:
        assert r.status_code in (200, 201)
    else:
        assert (r.status_code, r.json()) == FORBIDDEN
        assert r.headers["X-RateLimit-Limit"] == "600"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v3/subusers", None),
    ("POST", "/v3/subusers", {"username": "grandchild", "email": "g@x.test"}),
])
def test_children_cannot_manage_subusers(client: ValidatingClient, world: World, method: str,
                                         path: str, body: dict[str, Any] | None) -> None:
    kid = world.account("kid", parent=world.account("acme"))
    r = client.request(method, path, headers=bearer(world.key(kid)), json=body)
    assert (r.status_code, r.json()) == FORBIDDEN


@pytest.mark.parametrize(("obo", "expected"), [
    ("kid", 201), ("account-id 77", 201), ("shop", 403), ("other-kid", 403), ("acme", 403),
])
def test_post_api_keys_on_behalf_of(client: ValidatingClient, world: World, obo: str,
                                    expected: int) -> None:
    parent = world.account("acme")
    world.account("kid", parent=parent)
    world.account("shop", parent=parent, user_id=77, kind=AccountKind.CUSTOMER)
    world.account("other-kid", parent=world.account("other"))
    r = client.post("/v3/api_keys", headers=bearer(world.key(parent), **{"on-behalf-of": obo}),
                    json={"name": "child key", "scopes": ["engagement_quality.read"]})
    assert r.status_code == expected
    if expected == 201:
        owner = world.services.state.get_key(r.json()["api_key_id"])
        assert owner is not None
        child = world.services.state.require_account("kid" if obo == "kid" else "shop")
        assert owner[0].account_id == child.user_id


def test_child_key_cannot_act_on_behalf_of(client: ValidatingClient, world: World) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    world.account("sib", parent=parent)
    r = client.post("/v3/api_keys", headers=bearer(world.key(kid), **{"on-behalf-of": "sib"}),
                    json={"name": "nope"})
    assert (r.status_code, r.json()) == FORBIDDEN


def test_delete_api_key_revokes_at_once(client: ValidatingClient, world: World) -> None:
    parent = world.account("acme")
    admin = world.key(parent)
    made = client.post("/v3/api_keys", headers=bearer(admin),
                       json={"name": "reader", "scopes": ["engagement_quality.read"]}).json()
    reader = made["api_key"]
    assert client.get(SCORES_OK, headers=bearer(reader)).status_code == 202  # in use, cached

    r = client.delete(f"/v3/api_keys/{made['api_key_id']}", headers=bearer(admin))
    assert (r.status_code, r.content) == (204, b"")
    assert "X-RateLimit-Remaining" in r.headers

    r = client.get(SCORES_OK, headers=bearer(reader))
    assert (r.status_code, r.json()) == GRANT_INVALID
    listed = client.get("/v3/api_keys", headers=bearer(admin)).json()["result"]
    assert made["api_key_id"] not in {k["api_key_id"] for k in listed}


def test_delete_api_key_only_own_or_childs(client: ValidatingClient, world: World) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    other = world.account("other")
    admin, kid_key, other_key = world.key(parent), world.key(kid), world.key(other)

    def key_id(key: str) -> str:
        return key.split(".")[1]

    for path, headers in [
        ("/v3/api_keys/" + key_id(other_key), bearer(admin)),  # another account's key
        ("/v3/api_keys/" + key_id(admin), bearer(kid_key)),  # the parent's, by the child
        ("/v3/api_keys/" + key_id(kid_key), bearer(admin)),  # the child's, without obo
        ("/v3/api_keys/no-such-key", bearer(admin)),
    ]:
        r = client.delete(path, headers=headers)
        assert (r.status_code, r.json()) == NOT_FOUND, path
    assert client.get(SCORES_OK, headers=bearer(other_key)).status_code == 202

    r = client.delete("/v3/api_keys/" + key_id(kid_key),
                      headers=bearer(admin, **{"on-behalf-of": "kid"}))
    assert r.status_code == 204
    assert client.get(SCORES_OK, headers=bearer(kid_key)).json() == GRANT_INVALID[1]


def test_revocation_by_another_process_reaches_the_server(settings: Settings,
                                                         clock: FrozenClock) -> None:
    # `seqscore keys revoke` opens its own Services on the same store
    server = Services.open(settings.replace(auth_cache_seconds=0), clock=clock)
    try:
        world = World(server)
        key = world.key(world.account("acme"))
        client = client_for(server)
        assert client.get(SCORES_OK, headers=bearer(key)).status_code == 202
        cli = Services.open(settings, clock=clock)
        try:
            cli.accounts.revoke_key(key.split(".")[1])
        finally:
            cli.close()
        r = client.get(SCORES_OK, headers=bearer(key))
        assert (r.status_code, r.json()) == GRANT_INVALID
    finally:
        server.close()
