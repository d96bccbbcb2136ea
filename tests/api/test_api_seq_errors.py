"""Errors outside the validation table: 404, 405, 500, 429 and the rate-limit headers.

Every response here also passes through ``ValidatingClient``: JSON, SendGrid's
error shape, never a framework ``detail`` body.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pytest
from openapi_check import ValidatingClient
from seq_api_support import ENGINES, bearer, client_for, day, module_services

from seqscore.api.app import create_app
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import World

SCORES = "/v3/engagementquality/scores"
SUBUSERS = "/v3/engagementquality/subusers/scores"
SCORES_OK = f"{SCORES}?from=2026-11-19&to=2026-11-19"
SUBUSERS_OK = f"{SUBUSERS}?date=2026-11-19"

NOT_FOUND = {"errors": [{"field": None, "message": "resource not found"}]}
METHOD_NOT_ALLOWED = {"errors": [{"field": None, "message": "method not allowed"}]}
INTERNAL = {"errors": [{"message": "internal server error"}]}
TOO_MANY = {"errors": [{"field": None, "message": "too many requests"}]}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass
class Api:
    client: ValidatingClient
    key: str


@pytest.fixture(scope="module", params=ENGINES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with module_services(request, tmp_path_factory) as services:
        world = World(services)
        yield Api(client_for(services), world.key(world.account("acme")))


@pytest.mark.parametrize("path", ["/nope", "/v3", "/v3/nope", "/v3/engagementquality",
                                  "/v3/engagementquality/scores/extra",
                                  "/v3/engagementquality/subusers", "/v3/engagementquality/x"])
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "with-key"])
def test_unknown_path_is_404(api: Api, path: str, authenticated: bool) -> None:
    r = api.client.get(path, headers=bearer(api.key) if authenticated else {})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", [SCORES, SUBUSERS])
def test_wrong_method_is_405(api: Api, method: str, path: str) -> None:
    r = api.client.request(method, path, headers=bearer(api.key), json={})
    assert (r.status_code, r.json()) == (405, METHOD_NOT_ALLOWED)
    assert "GET" in r.headers["Allow"]


@pytest.mark.parametrize(("path", "method_name"), [(SCORES_OK, "account_scores"),
                                                   (SUBUSERS_OK, "children_scores")])
def test_unexpected_failure_is_500_without_details(services: Services, world: World,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture,
                                                   path: str, method_name: str) -> None:
    key = world.key(world.account("acme"))

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret-internal-detail in /srv/app.py")

    monkeypatch.setattr(services.seq, method_name, explode)
    with caplog.at_level(logging.ERROR, logger="seqscore.api"):
        r = client_for(services).get(path, headers=bearer(key))
    assert r.status_code == 500
    assert r.content == b'{"errors":[{"message":"internal server error"}]}'
    assert b"secret-internal-detail" not in r.content and b"Traceback" not in r.content
    assert r.headers["content-type"] == "application/json"
    request_id = r.headers["X-Request-Id"]
    # the details go to the log, with the request id the client was given
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "secret-internal-detail" in str(logged[0].exc_info[1])
    # the request was authenticated: it was counted, and says so
    assert all(name in r.headers for name in RATE_HEADERS)


def test_failure_in_the_store_is_500(services: Services, world: World,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    key = world.key(world.account("acme"))

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("column 'score'")

    monkeypatch.setattr(services.state, "get_results", broken)
    r = client_for(services).get(SCORES_OK, headers=bearer(key))
    assert (r.status_code, r.json()) == (500, INTERNAL)


def test_rate_headers_on_every_authenticated_answer(services: Services, world: World) -> None:
    parent = world.account("acme")
    world.account("kid", parent=parent)
    world.result(parent, day("2026-11-19"))
    key = world.key(parent)
    client = client_for(services)
    answers = [
        client.get(SCORES_OK, headers=bearer(key)),  # 200
        client.get(f"{SCORES}?from=2026-11-20&to=2026-11-20", headers=bearer(key)),  # 202
        client.get(f"{SCORES}?from=x&to=y", headers=bearer(key)),  # 400
        client.get(SCORES_OK, headers=bearer(key, **{"on-behalf-of": "nobody"})),  # 403
    ]
    assert [r.status_code for r in answers] == [200, 202, 400, 403]
    for r in answers:
        assert r.headers["X-RateLimit-Limit"] == "600"
    # counted per key and endpoint: 4 requests on /scores so far
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers] == [599, 598, 597, 596]
    other = client.get(SUBUSERS_OK, headers=bearer(key))  # 202: kid has no result
    assert other.status_code == 202
    assert other.headers["X-RateLimit-Remaining"] == "599"
    forbidden = client.get(SCORES_OK, headers=bearer(world.key(parent, "subusers.read")))
    assert forbidden.status_code == 403
    assert forbidden.headers["X-RateLimit-Remaining"] == "599"  # a new key, a new count
    reset = int(answers[0].headers["X-RateLimit-Reset"])
    assert reset % 60 == 0 and 0 < reset - time.time() <= 61


def _wait_out_minute_boundary() -> None:
    """The limiter counts per wall-clock minute: keep a short burst inside one."""
    if 60 - time.time() % 60 < 2:
        time.sleep(60 - time.time() % 60 + 0.05)


def test_past_the_limit_is_429(settings: Settings, clock: FrozenClock) -> None:
    services = Services.open(settings.replace(rate_limit_per_minute=3), clock=clock)
    try:
        world = World(services)
        parent = world.account("acme")
        key, other_key = world.key(parent), world.key(parent)
        client = ValidatingClient(create_app(services))
        _wait_out_minute_boundary()
        answers = [client.get(SCORES_OK, headers=bearer(key)) for _ in range(3)]
        assert [r.status_code for r in answers] == [202, 202, 202]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
        assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"3"}

        over = client.get(SCORES_OK, headers=bearer(key))
        assert (over.status_code, over.json()) == (429, TOO_MANY)
        assert over.headers["X-RateLimit-Limit"] == "3"
        assert over.headers["X-RateLimit-Remaining"] == "0"
        assert over.headers["X-RateLimit-Reset"] == answers[0].headers["X-RateLimit-Reset"]
        # even a bad request is refused first: the limit comes before validation
        assert client.get(f"{SCORES}?from=x", headers=bearer(key)).status_code == 429

        # other endpoints and other keys have counts of their own
        assert client.get(SUBUSERS_OK, headers=bearer(key)).status_code == 200
        assert client.get(SCORES_OK, headers=bearer(other_key)).status_code == 202
    finally:
        services.close()
