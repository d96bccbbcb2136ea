"""SendGrid's official clients against a real server on loopback.

The app runs under uvicorn in a background thread on a free port, over the
test's own Services (frozen clock, prepared accounts, keys and results).
sendgrid-python 6.x is a test dependency; @sendgrid/client is installed into
tests/node by ``npm ci --prefix tests/node`` (tests marked ``node``: skipped
with the reason on a developer machine without it, failed in CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import python_http_client
import sendgrid
from openapi_check import ACCEPTED_BODY, check_response
from python_http_client.exceptions import HTTPError
from seq_api_support import day, entry

from live_server import serving
from seqscore.api.app import create_app
from seqscore.service.services import Services
from seqscore.types import Account, AccountKind
from seqscore_testing import World, require_or_skip

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCORES = "/v3/engagementquality/scores"
SUBUSERS = "/v3/engagementquality/subusers/scores"
FORBIDDEN = {"errors": [{"field": None, "message": "access forbidden"}]}
GRANT_INVALID = {"errors": [{"field": None, "message": "The provided authorization grant is "
                                                       "invalid, expired, or revoked"}]}
UNKNOWN_KEY = "SG." + "Z" * 22 + "." + "q" * 43
DAYS = (day("2026-11-18"), day("2026-11-19"))


def score_for(account: Account, on: Any) -> tuple[int, tuple[int, ...]]:
    base = account.user_id % 4 + on.day % 2
    return base + 1, (base + 1, 5, 4, 3, 2)


@dataclass
class Live:
    base_url: str
    key: str
    services: Services
    parent: Account
    subuser: Account
    customer: Account

    def expected(self, account: Account, days: tuple[Any, ...] = DAYS) -> dict[str, Any]:
        return {"result": [entry(account, d, *score_for(account, d)) for d in days]}


@pytest.fixture
def live(services: Services, world: World) -> Iterator[Live]:
    parent = world.account("acme", user_id=10)
    subuser = world.account("acme-news", parent=parent, user_id=1001)
    customer = world.account("acme-shop", parent=parent, user_id=99, kind=AccountKind.CUSTOMER)
    for account in (parent, subuser, customer):
        for d in DAYS:
            world.result(account, d, *score_for(account, d))
    with serving(create_app(services)) as base_url:
        yield Live(base_url, world.key(parent), services, parent, subuser, customer)


def checked(path: str, response: Any) -> Any:
    """Validate a python_http_client response (or HTTPError) and return its JSON body."""
    return check_response("GET", path, response.status_code, response.headers, response.body)


# ---------------------------------------------------------------- sendgrid-python


def test_sendgrid_python_reads_both_endpoints(live: Live) -> None:
    sg = sendgrid.SendGridAPIClient(api_key=live.key, host=live.base_url)
    r = sg.client.engagementquality.scores.get(
        query_params={"from": "2026-11-18", "to": "2026-11-19"})
    assert r.status_code == 200
    assert checked(SCORES, r) == live.expected(live.parent)
    assert r.headers["X-RateLimit-Limit"] == "600"

    r = sg.client.engagementquality.subusers.scores.get(
        query_params={"date": "2026-11-19", "limit": 1})
    assert r.status_code == 200
    first = checked(SUBUSERS, r)
    assert first == {"result": [entry(live.customer, DAYS[1], *score_for(live.customer,
                                                                         DAYS[1]))],
                     "_metadata": {"next_params": {"after_key": "99"}}}
    r = sg.client.engagementquality.subusers.scores.get(
        query_params={"date": "2026-11-19", "limit": 1, "after_key": "99"})
    assert checked(SUBUSERS, r) == {"result": [entry(live.subuser, DAYS[1],
                                                     *score_for(live.subuser, DAYS[1]))]}


def test_sendgrid_python_202_is_not_an_error(live: Live) -> None:
    sg = sendgrid.SendGridAPIClient(api_key=live.key, host=live.base_url)
    r = sg.client.engagementquality.scores.get(
        query_params={"from": "2026-11-20", "to": "2026-11-20"})
    assert r.status_code == 202  # python_http_client raises only for >= 400
    assert r.to_dict == ACCEPTED_BODY
    checked(SCORES, r)
    r = sg.client.engagementquality.subusers.scores.get(query_params={"date": "2026-11-20"})
    assert (r.status_code, r.to_dict) == (202, ACCEPTED_BODY)
    checked(SUBUSERS, r)


def test_sendgrid_python_keeps_on_behalf_of_recased(live: Live,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, str]] = []
    make_request = python_http_client.client.Client._make_request

    def recording(self: Any, opener: Any, request: Any, timeout: Any = None) -> Any:
        sent.append(dict(request.header_items()))  # the names as they go on the wire
        return make_request(self, opener, request, timeout)

    monkeypatch.setattr(python_http_client.client.Client, "_make_request", recording)
    sg = sendgrid.SendGridAPIClient(api_key=live.key, host=live.base_url)
    query = {"from": "2026-11-18", "to": "2026-11-19"}

    r = sg.client.engagementquality.scores.get(query_params=query,
                                               request_headers={"on-behalf-of": "acme-news"})
    assert checked(SCORES, r) == live.expected(live.subuser)
    # a later call without the header still carries it, re-cased "On-behalf-of"
    r = sg.client.engagementquality.scores.get(query_params=query)
    assert checked(SCORES, r) == live.expected(live.subuser)
    assert sent[1].get("On-behalf-of") == "acme-news"
    assert "on-behalf-of" not in sent[1]

    r = sg.client.engagementquality.scores.get(
        query_params=query, request_headers={"on-behalf-of": "account-id 99"})
    assert checked(SCORES, r) == live.expected(live.customer)

    # the kept header makes /subusers/scores act as a child: 403
    with pytest.raises(HTTPError) as raised:
        sg.client.engagementquality.subusers.scores.get(query_params={"date": "2026-11-19"})
    assert raised.value.status_code == 403
    assert checked(SUBUSERS, raised.value) == FORBIDDEN
    assert sent[-1].get("On-behalf-of") == "account-id 99"


def test_sendgrid_python_impersonate_subuser(live: Live) -> None:
    sg = sendgrid.SendGridAPIClient(api_key=live.key, host=live.base_url,
                                    impersonate_subuser="acme-news")  # "On-Behalf-Of"
    r = sg.client.engagementquality.scores.get(
        query_params={"from": "2026-11-18", "to": "2026-11-19"})
    assert checked(SCORES, r) == live.expected(live.subuser)


def test_sendgrid_python_errors_parse(live: Live) -> None:
    sg = sendgrid.SendGridAPIClient(api_key=live.key, host=live.base_url)
    with pytest.raises(HTTPError) as raised:
        sg.client.engagementquality.scores.get(query_params={"from": "2026-11-19"})
    assert raised.value.status_code == 400
    assert checked(SCORES, raised.value) == {"errors": [
        {"field": "to", "message": 'failed to parse request: "to" must be provided'}]}

    stranger = sendgrid.SendGridAPIClient(api_key=UNKNOWN_KEY, host=live.base_url)
    with pytest.raises(HTTPError) as raised:
        stranger.client.engagementquality.scores.get(
            query_params={"from": "2026-11-19", "to": "2026-11-19"})
    assert raised.value.status_code == 401
    assert checked(SCORES, raised.value) == GRANT_INVALID


def test_on_behalf_of_latin1_digit_is_403_on_the_wire(live: Live) -> None:
    # "\u00b2" (byte 0xB2) is a digit to str.isdigit() but not to int(). Only a real
    # server delivers the raw Latin-1 byte; the in-process TestClient re-encodes it.
    r = httpx.get(f"{live.base_url}{SCORES}?from=2026-11-19&to=2026-11-19",
                  headers={"Authorization": f"Bearer {live.key}",
                           "on-behalf-of": b"account-id \xb2"})
    assert (r.status_code, check_response("GET", SCORES, r.status_code, r.headers,
                                          r.content)) == (403, FORBIDDEN)


# ------------------------------------------------------------- @sendgrid/client


def node_client_available() -> str:
    node = shutil.which("node")
    require_or_skip(node is not None, "Node.js not found on PATH")
    installed = NODE_DIR / "node_modules" / "@sendgrid" / "client" / "package.json"
    require_or_skip(installed.is_file(),
                    "@sendgrid/client not installed: run `npm ci --prefix tests/node`")
    assert node is not None
    return node


@pytest.mark.node
def test_sendgrid_node_client(live: Live) -> None:
    node = node_client_available()
    config = {"baseUrl": live.base_url, "apiKey": live.key, "unknownKey": UNKNOWN_KEY,
              "subuser": "acme-news", "customerId": live.customer.user_id,
              "closedFrom": "2026-11-18", "closedTo": "2026-11-19", "date": "2026-11-19",
              "today": "2026-11-20"}
    done = subprocess.run([node, "seq_client.js", json.dumps(config)], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "does not start with" not in done.stderr  # our keys look like SendGrid's
    out = json.loads(done.stdout)
    assert out["quirks"]["baseUrlAfterSetApiKey"] == "https://api.sendgrid.com/"

    calls = {c["name"]: c for c in out["calls"]}
    paths = {name: SUBUSERS if name.startswith("subusers") else SCORES for name in calls}
    for name, c in calls.items():
        check_response("GET", paths[name], c["status"], {"content-type": c["contentType"]},
                       json.dumps(c["body"]).encode())

    def answer(name: str) -> tuple[int, Any]:
        return calls[name]["status"], calls[name]["body"]

    on_19th = DAYS[1]
    assert answer("scores") == (200, live.expected(live.parent))
    assert answer("subusers-page-1") == (200, {
        "result": [entry(live.customer, on_19th, *score_for(live.customer, on_19th))],
        "_metadata": {"next_params": {"after_key": "99"}}})
    assert answer("subusers-page-2") == (200, {
        "result": [entry(live.subuser, on_19th, *score_for(live.subuser, on_19th))]})
    assert answer("scores-obo-subuser") == (200, live.expected(live.subuser))
    assert answer("scores-obo-customer") == (200, live.expected(live.customer))
    assert answer("scores-impersonate-subuser") == (200, live.expected(live.subuser))
    assert answer("subusers-obo-subuser") == (403, FORBIDDEN)
    assert answer("scores-today-202") == (202, ACCEPTED_BODY)
    assert answer("subusers-today-202") == (202, ACCEPTED_BODY)
    assert answer("scores-400") == (400, {"errors": [
        {"field": "from", "message": 'failed to parse request: "from" invalid'},
        {"field": "to", "message": 'failed to parse request: "to" must be provided'}]})
    assert answer("scores-unknown-key-401") == (401, GRANT_INVALID)
    assert {c["rateLimit"] for name, c in calls.items() if c["status"] != 401} == {"600"}
