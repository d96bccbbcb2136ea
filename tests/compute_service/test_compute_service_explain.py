"""/api/v1/scores/{date} and /api/v1/subusers/{username}/scores/{date}: a stored result
explained, with numbers checked by hand and against the stored decision; the job flow
behind 202; window edges, eligibility and authority, end to end through ingest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from compute_service_support import (
    ACCEPTED_BODY,
    CLOSED,
    ONE_DAY,
    SCORES,
    Events,
    assert_stored_matches,
    expected,
    open_jobs,
    post,
    run_jobs,
    unix,
    v3_entry,
)
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.scoring import DEFAULT_MODEL, score_day, to_day_result
from seqscore.service.explain import explain_result
from seqscore.service.services import Services
from seqscore.types import Account, AccountKind, ProviderCounts, WindowCounts
from seqscore_testing import TEST_NOW, World

TODAY = TEST_NOW.date()


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def explain_path(on: dt.date | str, username: str | None = None) -> str:
    if username is None:
        return f"/api/v1/scores/{on}"
    return f"/api/v1/subusers/{username}/scores/{on}"


def hand_events(prefix: str, on: dt.date) -> list[dict[str, Any]]:
    """1,000 messages to 1,000 gmail recipients on ``on``: 990 delivered, 10 invalid
    bounces, 198 opened by a human, 1 spam report."""
    ev = Events(prefix)
    out = []
    for i in range(1000):
        email, message, when = f"r{i}@gmail.com", f"{prefix}-msg{i}.0", unix(on)
        out.append(ev("processed", when, email, message=message))
        if i < 990:
            out.append(ev("delivered", when + 1, email, message=message))
        else:
            out.append(ev("bounce", when + 1, email, message=message, type="bounce",
                          bounce_classification="Invalid Address", status="5.1.1"))
        if i < 198:
            out.append(ev("open", when + 2, email, message=message, sg_machine_open=False))
        if i == 0:
            out.append(ev("spamreport", when + 3, email, message=message))
    return out


def test_a_hand_checked_customer_account_is_explained_through_account_id(
        services: Services, world: World) -> None:
    parent = world.account("acme")
    shop = world.account("shop", parent=parent, kind=AccountKind.CUSTOMER)
    post(services, shop, hand_events("shop", CLOSED))
    client = TestClient(create_app(services))
    headers = bearer(world.key(parent), **{"on-behalf-of": f"account-id {shop.user_id}"})

    r = client.get(explain_path(CLOSED), headers=headers)
    assert (r.status_code, r.json()) == (202, ACCEPTED_BODY)
    assert [(j.account_id, j.day) for j in open_jobs(services)] == [(shop.user_id, CLOSED)]
    assert run_jobs(services) == 1
    r = client.get(explain_path(CLOSED), headers=headers)
    assert r.status_code == 200
    body = r.json()

    # by hand: spam 1/990 = 0.1010..% -> 3; bounces 10/1000 = 1 % (on the edge) -> 4;
    # blocks 0 -> 5; opens 198/990 = 20 % (on the edge) -> 5; engaged 198/1000 -> 2.
    assert body["metrics"] == {"engagement_recency": 2, "open_rate": 5,
                               "bounce_classification": 5, "bounce_rate": 4, "spam_rate": 3}
    # 0.3*3 + 0.2*5 + 0.2*4 + 0.15*2 + 0.15*5 = 3.75 -> 4, capped at lowest (2) + 1 = 3
    assert {k: body[k] for k in ("weighted_mean", "weighted_mean_decimal", "rounded",
                                 "lowest_metric_score", "cap", "cap_applied", "score")} == {
        "weighted_mean": "15/4", "weighted_mean_decimal": "3.75", "rounded": 4,
        "lowest_metric_score": 2, "cap": 3, "cap_applied": True, "score": 3}
    assert (body["eligible"], body["eligibility"], body["eligibility_reasons"]) == (
        True, "eligible", [])
    assert (body["user_id"], body["username"], body["date"], body["status"]) == (
        str(shop.user_id), "shop", CLOSED.isoformat(), "computed")
    assert body["model_version"] == "v1"
    assert body["counts"] == {
        "processed_short": 1000, "processed_long": 1000, "delivered_short": 990,
        "delivered_long": 990, "opened_long": 198, "invalid_bounces_short": 10,
        "invalid_bounces_long": 10, "block_bounces_short": 0, "block_bounces_long": 0,
        "spam_reports_short": 1, "spam_reports_long": 1, "engaged_recipients_short": 198,
        "engaged_recipients_long": 198, "sent_recipients_long": 1000,
        "sent_engaged_recipients": 198}
    details = body["metric_details"]
    picked = ("numerator", "denominator", "rate_pct", "rate_pct_exact", "rate_pct_fraction",
              "measure", "window", "window_days", "provider", "band_pct", "band_score",
              "score", "weight")
    assert {m: {k: d[k] for k in picked} for m, d in details.items()} == {
        "spam_rate": {"numerator": 1, "denominator": 990, "rate_pct": "0.101010",
                      "rate_pct_exact": False, "rate_pct_fraction": "10/99",
                      "measure": "short window over delivered", "window": "short",
                      "window_days": 7, "provider": None,
                      "band_pct": {"from": "0.1", "to": "0.2"}, "band_score": 3, "score": 3,
                      "weight": "0.3"},
        "bounce_rate": {"numerator": 10, "denominator": 1000, "rate_pct": "1",
                        "rate_pct_exact": True, "rate_pct_fraction": "1",
                        "measure": "short window", "window": "short", "window_days": 7,
                        "provider": None, "band_pct": {"from": "1", "to": "2"},
                        "band_score": 4, "score": 4, "weight": "0.2"},
        "bounce_classification": {"numerator": 0, "denominator": 1000, "rate_pct": "0",
                                  "rate_pct_exact": True, "rate_pct_fraction": "0",
                                  "measure": "short window", "window": "short",
                                  "window_days": 7, "provider": None,
                                  "band_pct": {"from": None, "to": "0.1"}, "band_score": 5,
                                  "score": 5, "weight": "0.2"},
        "open_rate": {"numerator": 198, "denominator": 990, "rate_pct": "20",
                      "rate_pct_exact": True, "rate_pct_fraction": "20",
                      "measure": "top providers short window", "window": "short",
                      "window_days": 7, "provider": "top",
                      "band_pct": {"from": "20", "to": None}, "band_score": 5, "score": 5,
                      "weight": "0.15"},
        "engagement_recency": {"numerator": 198, "denominator": 1000, "rate_pct": "19.8",
                               "rate_pct_exact": True, "rate_pct_fraction": "99/5",
                               "measure": "long window recipients engaged in engagement "
                                          "window", "window": "long", "window_days": 30,
                               "provider": None, "band_pct": {"from": "10", "to": "20"},
                               "band_score": 2, "score": 2, "weight": "0.15"},
    }
    assert details["spam_rate"]["band_edges_pct"] == ["0.05", "0.1", "0.2", "0.3"]
    assert details["open_rate"]["band_edges_pct"] == ["20", "15", "10", "5"]
    assert body["top_providers"] == [{"provider": "gmail", "delivered_short": 990,
                                      "opened_short": 198, "delivered_long": 990,
                                      "opened_long": 198}]

    # the same numbers as the stored decision, and as the pure model on the stored events
    stored = services.state.get_results(shop.user_id, CLOSED, CLOSED)[CLOSED]
    assert (body["score"], body["metrics"], body["counts"]) == (
        stored.score, stored.metrics, stored.counts)
    assert {m: (d["numerator"], d["denominator"]) for m, d in details.items()} == {
        m: tuple(v) for m, v in stored.rates.items()}
    assert_stored_matches(stored, expected(services, [shop], [CLOSED])[(shop.user_id, CLOSED)])
    # and /v3 tells the same score
    r = client.get(f"{SCORES}?from={CLOSED}&to={CLOSED}", headers=headers)
    assert r.json() == {"result": [v3_entry(shop, CLOSED, expected(
        services, [shop], [CLOSED])[(shop.user_id, CLOSED)])]}


def at(on: dt.date, hh: int, mm: int, ss: int) -> int:
    return unix(on, hh, mm, ss)


def test_windows_hold_00_00_00_of_their_first_day_and_23_59_59_of_their_last(
        services: Services, world: World) -> None:
    edge = world.account("edge")
    d = CLOSED
    ev = Events("edge")
    post(services, edge, [
        ev("processed", at(d, 0, 0, 0), "p1@x.test"),
        ev("processed", at(d, 23, 59, 59), "p2@x.test"),
        ev("processed", at(d + ONE_DAY, 0, 0, 0), "p3@x.test"),  # the next day
        ev("processed", at(d - 6 * ONE_DAY, 0, 0, 0), "p4@x.test"),  # first of 7 days
        ev("processed", at(d - 7 * ONE_DAY, 23, 59, 59), "p5@x.test"),  # before the 7
        ev("processed", at(d - 29 * ONE_DAY, 0, 0, 0), "p6@x.test"),  # first of 30 days
        ev("processed", at(d - 30 * ONE_DAY, 23, 59, 59), "p7@x.test"),  # before the 30
        # sent to in the 30 days; engaged on the first second of the 90 days / just before
        ev("processed", at(d, 12, 0, 0), "in@x.test"),
        ev("open", at(d - 89 * ONE_DAY, 0, 0, 0), "in@x.test"),
        ev("processed", at(d, 12, 0, 0), "out@x.test"),
        ev("open", at(d - 90 * ONE_DAY, 23, 59, 59), "out@x.test"),
    ])
    client = TestClient(create_app(services))
    key = world.key(edge)
    for on in (d, d - ONE_DAY):
        assert client.get(explain_path(on), headers=bearer(key)).status_code == 202
    run_jobs(services)
    counts = {on: client.get(explain_path(on), headers=bearer(key)).json()["counts"]
              for on in (d, d - ONE_DAY)}
    picked = ("processed_short", "processed_long", "sent_recipients_long",
              "sent_engaged_recipients", "engaged_recipients_long", "opened_long")
    assert {k: counts[d][k] for k in picked} == {
        "processed_short": 5, "processed_long": 7, "sent_recipients_long": 7,
        "sent_engaged_recipients": 1, "engaged_recipients_long": 0, "opened_long": 0}
    # the day before: its 7 days end at 23:59:59 of d-1, so d 00:00:00 is out and
    # d-7 23:59:59 is in; its 30 days start at d-30 00:00:00
    assert {k: counts[d - ONE_DAY][k] for k in picked[:2]} == {
        "processed_short": 2, "processed_long": 4}


def _thousand_processed(prefix: str, on: dt.date, n: int) -> list[dict[str, Any]]:
    ev = Events(prefix)
    return [ev("processed", unix(on) + i, f"{prefix}{i}@gmail.com") for i in range(n)]


def test_eligibility_by_volume_and_by_open_tracking_is_explained(
        services: Services, world: World) -> None:
    parent = world.account("acme")
    quiet = world.account("quiet", parent=parent)
    untracked = world.account("untracked", parent=parent, open_tracking=False)
    tiny = world.account("tiny", parent=parent, open_tracking=False)
    post(services, quiet, _thousand_processed("quiet", CLOSED, 999))
    post(services, untracked, _thousand_processed("untracked", CLOSED, 1000))
    post(services, tiny, _thousand_processed("tiny", CLOSED, 5))
    client = TestClient(create_app(services))
    key = world.key(parent)

    def explain(account: Account) -> dict[str, Any]:
        r = client.get(explain_path(CLOSED, account.username), headers=bearer(key))
        if r.status_code == 202:
            run_jobs(services)
            r = client.get(explain_path(CLOSED, account.username), headers=bearer(key))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    reasons = {a.username: (explain(a)["eligibility"], explain(a)["eligibility_reasons"])
               for a in (quiet, untracked, tiny)}
    assert reasons == {"quiet": ("low_volume", ["low_volume"]),
                       "untracked": ("open_tracking_off", ["open_tracking_off"]),
                       "tiny": ("open_tracking_off", ["open_tracking_off", "low_volume"])}
    body = explain(quiet)
    assert "score" not in body and "metrics" not in body and body["eligible"] is False
    assert (body["counts"]["processed_long"], body["min_messages"]) == (999, 1000)
    assert body["cap_applied"] is None and body["weighted_mean"] is None
    # rates and bands are still explained; the metric scores are not given
    assert all(d["score"] is None and d["band_score"] in range(1, 6)
               for d in body["metric_details"].values())
    assert (explain(untracked)["open_tracking"], explain(quiet)["open_tracking"]) == (
        False, True)

    # one more message, late: the result is stale until recomputed, then eligible
    post(services, quiet, _thousand_processed("quiet-late", CLOSED, 1))
    assert explain(quiet)["status"] == "stale"
    run_jobs(services)
    body = explain(quiet)
    assert (body["status"], body["eligible"], body["counts"]["processed_long"]) == (
        "computed", True, 1000)
    assert body["score"] in range(1, 6) and body["eligibility_reasons"] == []


@pytest.fixture
def family(services: Services, world: World) -> dict[str, Any]:
    """acme with a subuser and a customer account; globex with a child of its own.
    Each has a stored result for the last closed day."""
    acme = world.account("acme")
    news = world.account("acme-news", parent=acme)
    shop = world.account("shop", parent=acme, kind=AccountKind.CUSTOMER)
    globex = world.account("globex")
    kid = world.account("globex-kid", parent=globex)
    for account, score in ((acme, 5), (news, 4), (shop, 3), (globex, 2), (kid, 1)):
        world.result(account, CLOSED, score=score)
    keys = {name: world.key(a) for name, a in (("acme", acme), ("news", news),
                                                ("globex", globex))}
    keys["acme-scores-only"] = world.key(acme, "scores.read")
    keys["acme-seq-only"] = world.key(acme, "engagement_quality.read")
    keys["acme-events-only"] = world.key(acme, "events.write")
    return {"client": TestClient(create_app(services)), "keys": keys, "acme": acme,
            "news": news, "shop": shop, "kid": kid}


FORBIDDEN = {"errors": [{"field": None, "message": "access forbidden"}]}
NOT_FOUND = {"errors": [{"field": None, "message": "resource not found"}]}

# (key, path username or None, on-behalf-of or None) -> (status, username answered)
AUTHORITY = [
    ("acme", None, None, 200, "acme"),
    ("acme", None, "acme-news", 200, "acme-news"),
    ("acme", None, "account-id {shop}", 200, "shop"),
    ("acme", "acme-news", None, 200, "acme-news"),
    ("acme", "shop", None, 200, "shop"),  # the path names any child by username
    ("acme-scores-only", None, "acme-news", 200, "acme-news"),
    ("acme-seq-only", "shop", None, 200, "shop"),
    ("news", None, None, 200, "acme-news"),
    # denied
    ("acme-events-only", None, None, 403, FORBIDDEN),
    ("acme", None, "shop", 403, FORBIDDEN),  # a customer account is named by account-id
    ("acme", None, "account-id {news}", 403, FORBIDDEN),  # a subuser by username
    ("acme", None, "globex-kid", 403, FORBIDDEN),  # another parent's child
    ("acme", None, "account-id {kid}", 403, FORBIDDEN),
    ("news", None, "shop", 403, FORBIDDEN),  # a child acting for a sibling
    ("news", "shop", None, 403, FORBIDDEN),  # children have no subusers
    ("acme", "acme-news", "acme-news", 403, FORBIDDEN),  # ... also when acting as one
    ("globex", "acme-news", None, 404, NOT_FOUND),  # another parent's child: not found,
    ("globex", "no-such-user", None, 404, NOT_FOUND),  # exactly like a missing account
    ("acme", "acme", None, 404, NOT_FOUND),  # a parent is not its own child
    ("acme", "globex-kid", None, 404, NOT_FOUND),
]


@pytest.mark.parametrize(("key", "username", "obo", "status", "answer"), AUTHORITY)
def test_authority_over_explanations(family: dict[str, Any], key: str, username: str | None,
                                     obo: str | None, status: int, answer: Any) -> None:
    headers = bearer(family["keys"][key])
    if obo is not None:
        headers["on-behalf-of"] = obo.format(shop=family["shop"].user_id,
                                             news=family["news"].user_id,
                                             kid=family["kid"].user_id)
    r = family["client"].get(explain_path(CLOSED, username), headers=headers)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["username"] == answer
    else:
        assert r.json() == answer
    assert "X-RateLimit-Remaining" in r.headers


def test_missing_and_bad_credentials_answer_401(family: dict[str, Any]) -> None:
    client = family["client"]
    assert client.get(explain_path(CLOSED)).status_code == 401
    r = client.get("/api/v1/scores?from=2026-11-01&to=2026-11-02",
                   headers=bearer("SG.aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"))
    assert r.status_code == 401 and r.json()["errors"][0]["field"] is None


def _bad_date(message: str) -> dict[str, Any]:
    return {"errors": [{"field": "date", "message": f"failed to parse request: {message}"}]}


INVALID = '"date" must be a valid day written YYYY-MM-DD, such as 2026-11-19'


@pytest.mark.parametrize(("raw", "message"), [
    ("2026-02-30", INVALID), ("yesterday", INVALID), ("2026-1-05", INVALID),
    ("2026-11-19T00:00", INVALID),
    ((TODAY - dt.timedelta(days=401)).isoformat(),
     '"date" cannot be more than 400 days in the past'),
    ((TODAY + ONE_DAY).isoformat(), '"date" cannot be in the future'),
])
def test_an_invalid_date_is_400_in_sendgrids_shape(family: dict[str, Any], raw: str,
                                                   message: str) -> None:
    r = family["client"].get(explain_path(raw), headers=bearer(family["keys"]["acme"]))
    assert (r.status_code, r.json()) == (400, _bad_date(message))


def test_unclosed_missing_and_forgotten_days(services: Services, family: dict[str, Any],
                                             world: World) -> None:
    client, key, acme = family["client"], family["keys"]["acme"], family["acme"]
    # today is not closed: 202, nothing queued
    r = client.get(explain_path(TODAY), headers=bearer(key))
    assert (r.status_code, r.json(), open_jobs(services)) == (202, ACCEPTED_BODY, [])
    # a closed day without a result: queued once, however often asked
    two_days_ago = CLOSED - ONE_DAY
    for _ in range(2):
        r = client.get(explain_path(two_days_ago), headers=bearer(key))
        assert (r.status_code, r.json()) == (202, ACCEPTED_BODY)
    assert [(j.account_id, j.day) for j in open_jobs(services)] == [(acme.user_id,
                                                                     two_days_ago)]
    # 91 days ago without a result: too old to be recomputed on request (404, not queued)
    old = TODAY - dt.timedelta(days=91)
    r = client.get(explain_path(old), headers=bearer(key))
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "date"
    assert "90 days" in r.json()["errors"][0]["message"]
    assert len(open_jobs(services)) == 1
    # ... but a kept result that old is explained (results are kept 400 days)
    world.result(acme, TODAY - dt.timedelta(days=400), score=2)
    r = client.get(explain_path(TODAY - dt.timedelta(days=400)), headers=bearer(key))
    assert (r.status_code, r.json()["score"]) == (200, 2)


def test_a_result_stored_without_an_explanation_is_still_answered(
        family: dict[str, Any]) -> None:
    r = family["client"].get(explain_path(CLOSED), headers=bearer(family["keys"]["acme"]))
    body = r.json()
    assert (body["score"], body["metrics"]["spam_rate"], body["status"]) == (5, 4, "computed")
    assert body["metric_details"]["spam_rate"]["measure"] is None
    assert body["eligibility_reasons"] == []


def test_the_endpoints_are_in_the_openapi_document(services: Services) -> None:
    document = TestClient(create_app(services)).get("/api/openapi.json").json()
    paths = document["paths"]
    for path in ("/api/v1/scores/{date}", "/api/v1/subusers/{username}/scores/{date}",
                 "/api/v1/scores"):
        operation = paths[path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert "on-behalf-of" in names, path
        assert {"200", "202", "400", "401", "403"} <= set(operation["responses"]), path
        assert operation["responses"]["200"]["content"]["application/json"]["schema"], path
    assert {p["name"] for p in paths["/api/v1/scores"]["get"]["parameters"]} >= {"from", "to"}
    assert {p["name"] for p in paths["/api/v1/subusers/{username}/scores/{date}"]["get"][
        "parameters"]} >= {"username", "date"}


def _explained(counts: WindowCounts, *, open_tracking: bool = True) -> dict[str, Any]:
    decision = score_day(counts, DEFAULT_MODEL, open_tracking=open_tracking)
    stored = to_day_result(decision, counts.account_id, counts.day, TEST_NOW)
    # as read back from the state store: JSON
    stored = dataclasses.replace(stored, explanation=json.loads(json.dumps(stored.explanation)))
    account = Account(counts.account_id, "acct", "", None, AccountKind.SUBUSER, open_tracking,
                      False, TEST_NOW)
    return explain_result(account, stored)


def test_the_worked_example_of_docs_scoring_md_is_explained_as_the_page_tells() -> None:
    p = ProviderCounts
    counts = WindowCounts(
        1, dt.date(2024, 6, 30), processed_short=2000, processed_long=10_000,
        delivered_short=1900, delivered_long=9500, opened_long=1805, invalid_bounces_short=30,
        invalid_bounces_long=120, block_bounces_short=8, block_bounces_long=60,
        spam_reports_short=2, spam_reports_long=5, engaged_recipients_short=0,
        engaged_recipients_long=0, sent_recipients_long=6000, sent_engaged_recipients=3000,
        providers=(p("gmail", 800, 150, 4000, 840), p("microsoft", 500, 80, 2500, 400),
                   p("yahoo", 300, 45, 1500, 210), p("apple", 100, 20, 500, 110),
                   p("example.com", 20, 2, 90, 10)))
    body = _explained(counts)
    details = body["metric_details"]
    picked = ("rate_pct", "measure", "window", "provider", "band_pct", "score")
    assert {m: tuple(d[k] for k in picked) for m, d in details.items()} == {
        "spam_rate": ("0.105263", "short window over delivered", "short", None,
                      {"from": "0.1", "to": "0.2"}, 3),
        "bounce_rate": ("1.5", "short window", "short", None, {"from": "1", "to": "2"}, 4),
        "bounce_classification": ("0.6", "long window", "long", None,
                                  {"from": "0.5", "to": "1"}, 3),
        "open_rate": ("14", "provider yahoo long window", "long", "yahoo",
                      {"from": "10", "to": "15"}, 3),
        "engagement_recency": ("50", "long window recipients engaged in engagement window",
                               "long", None, {"from": "50", "to": None}, 5),
    }
    assert details["spam_rate"]["rate_pct_fraction"] == "2/19"
    assert details["spam_rate"]["rate_pct_exact"] is False
    assert (body["weighted_mean"], body["weighted_mean_decimal"], body["rounded"],
            body["cap"], body["cap_applied"], body["score"]) == ("7/2", "3.5", 4, 4, False, 4)
    assert [c["measure"] for c in details["open_rate"]["candidates"]
            if not c["available"]] == ["provider example.com long window",
                                       "all providers long window fallback"]


def test_small_counts_fall_back_to_the_long_window_and_all_providers() -> None:
    counts = WindowCounts(
        1, dt.date(2024, 6, 30), processed_short=40, processed_long=90, delivered_short=40,
        delivered_long=80, opened_long=8, invalid_bounces_short=0, invalid_bounces_long=3,
        block_bounces_short=0, block_bounces_long=0, spam_reports_short=0,
        spam_reports_long=1, engaged_recipients_short=0, engaged_recipients_long=0,
        sent_recipients_long=90, sent_engaged_recipients=9,
        providers=(ProviderCounts("gmail", 40, 4, 80, 8),))
    body = _explained(counts, open_tracking=False)
    details = body["metric_details"]
    assert {m: (d["window"], d["window_days"], d["provider"]) for m, d in details.items()} == {
        "spam_rate": ("long", 30, None), "bounce_rate": ("long", 30, None),
        "bounce_classification": ("long", 30, None), "open_rate": ("long", 30, "all"),
        "engagement_recency": ("long", 30, None)}
    assert details["open_rate"]["measure"] == "all providers long window fallback"
    assert (body["eligible"], body["eligibility_reasons"]) == (
        False, ["open_tracking_off", "low_volume"])
    assert "score" not in body and all(d["score"] is None for d in details.values())
    assert details["spam_rate"]["band_score"] == 1  # 1/80 = 1.25 %: what the band gives
