"""The JSON twins answer what the pages show, to the keys the /v3 API would answer."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from dashboard_seed import seed_world
from dashboard_support import login, overview_rows
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.types import METRIC_NAMES

LAST_CLOSED = dt.date(2026, 11, 19)
OVERVIEW = "/api/v1/dashboard/overview"


@pytest.fixture
def seeded(services):
    return seed_world(services, LAST_CLOSED)


@pytest.fixture
def app(services, seeded):
    return create_app(services)


@pytest.fixture
def browser(app, seeded):
    client = TestClient(app)
    login(client, seeded.key)
    return client


@pytest.fixture
def api(app, seeded):
    return TestClient(app, headers={"Authorization": f"Bearer {seeded.key}"})


@pytest.mark.parametrize("query", ["", "date=2026-11-19", "sort=open_rate&order=desc",
                                   "sort=username", "q=acme", "status=ineligible",
                                   "max_score=3", "date=2026-11-01&sort=volume&order=desc"])
def test_overview_json_equals_the_page(browser, api, query):
    page_rows = overview_rows(browser.get(f"/?{query}").text)
    answer = api.get(f"{OVERVIEW}?{query}")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [r.user_id for r in page_rows] == [r["account"]["user_id"] for r in data["rows"]]
    for html, row in zip(page_rows, data["rows"], strict=True):
        assert html.username == row["account"]["username"]
        assert html.status == row["status"]
        if row["status"] == "scored":
            assert html.chips == [row["score"], *(row["metrics"][m] for m in METRIC_NAMES)]
        else:
            assert html.chips == []
            assert row["score"] is None and row["metrics"] is None
        if row["status"] == "ineligible":
            assert html.reason == row["eligibility"]


def test_overview_json_shape(api, seeded):
    data = api.get(OVERVIEW).json()
    assert data["day"] == "2026-11-19"
    assert data["last_closed_day"] == "2026-11-19"
    assert data["closed"] is True
    assert data["viewer"] == {"user_id": seeded.parent.user_id, "username": "acme",
                              "kind": "parent"}
    assert data["query"] == {"sort": "score", "order": "asc", "q": "", "status": "all",
                             "max_score": None}
    assert data["total_accounts"] == len(seeded.children)
    assert sum(data["summary"].values()) == len(seeded.children)
    row = next(r for r in data["rows"] if r["account"]["username"] == "pilot-tiny")
    assert row["eligibility"] == "low_volume" and row["status"] == "ineligible"


def test_account_json_equals_the_page(browser, api):
    page = browser.get("/accounts/acme-promotions").text
    data = api.get("/api/v1/dashboard/accounts/acme-promotions").json()
    assert len(data["points"]) == 90
    chart = page.split('id="chart-score"', 1)[1].split("</svg>", 1)[0]
    shown = re.findall(r"<title>(\d{4}-\d\d-\d\d): (\d)</title>", chart)
    assert shown == [(p["day"], str(p["score"])) for p in data["points"]]
    explanation = data["explanation"]
    assert data["explained_day"] == "2026-11-19"
    assert f"<dd>{explanation['weighted_mean']}</dd>" in page
    for metric in explanation["metrics"]:
        assert f"<strong>{metric['rate_pct']} %</strong>" in page
    assert f"<td class=\"num\">{data['event_mix']['processed']:,}</td>" in page


def test_json_twins_need_a_key(app):
    client = TestClient(app)
    for path in (OVERVIEW, "/api/v1/dashboard/accounts/acme-newsletter"):
        answer = client.get(path)
        assert answer.status_code == 401
        assert answer.json() == {"errors": [{"field": None,
                                             "message": "authorization required"}]}


def test_json_twins_need_the_read_scope(app, services, seeded):
    key = services.accounts.create_key(seeded.parent, name="writer",
                                       scopes=frozenset({"events.write"})).api_key
    answer = TestClient(app).get(OVERVIEW, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 403


def test_json_twins_count_against_the_rate_limit(api):
    assert api.get(OVERVIEW).headers["X-RateLimit-Limit"] == "600"


def test_on_behalf_of_a_child(api, seeded):
    answer = api.get(OVERVIEW, headers={"on-behalf-of": "acme-newsletter"})
    assert [r["account"]["username"] for r in answer.json()["rows"]] == ["acme-newsletter"]
    customer = next(c for c in seeded.children if c.username == "partner-feed")
    answer = api.get("/api/v1/dashboard/accounts/partner-feed",
                     headers={"on-behalf-of": f"account-id {customer.user_id}"})
    assert answer.status_code == 200
    assert answer.json()["account"]["kind"] == "customer"
    # acting as a child, a sibling is out of view
    answer = api.get("/api/v1/dashboard/accounts/shop-eu",
                     headers={"on-behalf-of": "acme-newsletter"})
    assert answer.status_code == 403


def test_accounts_out_of_view_are_forbidden(app, api, services, seeded):
    other = services.accounts.create_account("other")
    services.accounts.create_account("other-child", parent=other)
    for name in ("other", "other-child", "nobody"):
        answer = api.get(f"/api/v1/dashboard/accounts/{name}")
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["message"] == "access forbidden"
    assert api.get(OVERVIEW, headers={"on-behalf-of": "other-child"}).status_code == 403


def test_bad_parameters_are_400_in_the_api_shape(api):
    answer = api.get(f"{OVERVIEW}?date=yesterday&sort=x")
    assert answer.status_code == 400
    assert answer.json() == {"errors": [
        {"field": "date", "message": 'failed to parse request: "date" invalid'}]}
    answer = api.get(f"{OVERVIEW}?sort=x&max_score=0")
    assert [e["field"] for e in answer.json()["errors"]] == ["sort", "max_score"]
