"""GET /api/v1/scores?from=&to=: history past SendGrid's 90 days, up to
``results_retention_days``; closed days without a result are listed as pending and
queued (when recent enough to be recomputed), and results are kept that long."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from compute_service_support import ACCEPTED_BODY, CLOSED, ONE_DAY, SCORES, open_jobs, run_jobs
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.service.worker import Worker
from seqscore.types import AccountKind
from seqscore_testing import TEST_NOW, World

TODAY = TEST_NOW.date()
HISTORY = "/api/v1/scores"


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def explain_path_for(on: dt.date) -> str:
    return f"/api/v1/scores/{on}"


def test_history_reaches_back_400_days_and_lists_what_is_missing(
        services: Services, world: World) -> None:
    acme = world.account("acme")
    world.result(acme, ago(400), score=2)
    world.result(acme, ago(200), score=None)  # not eligible that day
    world.result(acme, ago(91), score=3)
    world.result(acme, CLOSED, score=5)
    client = TestClient(create_app(services))
    key = world.key(acme)

    r = client.get(f"{HISTORY}?from={ago(400)}&to={TODAY}", headers=bearer(key))
    assert r.status_code == 200
    result = r.json()["result"]
    assert [e["date"] for e in result] == [(ago(400) + ONE_DAY * i).isoformat()
                                           for i in range(400)]  # closed days only
    by_day = {e["date"]: e for e in result}
    base = {"user_id": str(acme.user_id), "username": "acme"}
    assert by_day[ago(400).isoformat()] == {
        **base, "date": ago(400).isoformat(), "score": 2,
        "metrics": {"engagement_recency": 4, "open_rate": 3, "bounce_classification": 5,
                    "bounce_rate": 5, "spam_rate": 4},
        "status": "computed", "eligibility": "eligible", "model_version": "test"}
    assert by_day[ago(200).isoformat()] == {
        **base, "date": ago(200).isoformat(), "status": "computed",
        "eligibility": "low_volume", "model_version": "test"}
    assert by_day[ago(201).isoformat()] == {**base, "date": ago(201).isoformat(),
                                            "status": "unavailable"}
    assert by_day[ago(90).isoformat()] == {**base, "date": ago(90).isoformat(),
                                           "status": "pending"}
    statuses = [e["status"] for e in result]
    assert statuses.count("computed") == 4
    # missing closed days of the last 90 are queued (ago(90) .. ago(2)); older ones are not:
    # their events are gone, a recomputation would store wrong numbers
    assert statuses.count("pending") == 89
    assert {j.day for j in open_jobs(services)} == {ago(n) for n in range(2, 91)}
    assert statuses.count("unavailable") == 400 - 4 - 89

    # asking again queues nothing twice; once computed, the pending days are results
    client.get(f"{HISTORY}?from={ago(400)}&to={TODAY}", headers=bearer(key))
    assert len(open_jobs(services)) == 89
    run_jobs(services)
    r = client.get(f"{HISTORY}?from={ago(90)}&to={CLOSED}", headers=bearer(key))
    assert {e["status"] for e in r.json()["result"]} == {"computed"}
    assert r.json()["result"][0]["eligibility"] == "low_volume"  # no events at all

    # /v3 keeps SendGrid's 90 days
    r = client.get(f"{SCORES}?from={ago(91)}&to={CLOSED}", headers=bearer(key))
    assert r.status_code == 400


@pytest.mark.parametrize(("query", "errors"), [
    (f"from={ago(401)}&to={ago(300)}",
     [("from", '"from" cannot be more than 400 days in the past')]),
    (f"from={ago(3)}&to={TODAY + ONE_DAY}", [("to", '"to" cannot be in the future')]),
    (f"from={ago(3)}&to={ago(4)}", [("to", '"from" cannot come after "to"')]),
    (f"to={ago(4)}", [("from", '"from" must be provided')]),
    ("from=2026-02-30&to=", [("from", '"from" invalid'), ("to", '"to" must be provided')]),
])
def test_history_validates_like_v3_with_the_retention_as_limit(
        services: Services, world: World, query: str, errors: list[tuple[str, str]]) -> None:
    key = world.key(world.account("acme"))
    r = TestClient(create_app(services)).get(f"{HISTORY}?{query}", headers=bearer(key))
    assert (r.status_code, r.json()) == (400, {"errors": [
        {"field": f, "message": f"failed to parse request: {m}"} for f, m in errors]})


def test_history_of_days_none_closed_is_202(services: Services, world: World) -> None:
    key = world.key(world.account("acme"))
    r = TestClient(create_app(services)).get(f"{HISTORY}?from={TODAY}&to={TODAY}",
                                             headers=bearer(key))
    assert (r.status_code, r.json(), open_jobs(services)) == (202, ACCEPTED_BODY, [])


def test_history_on_behalf_of_a_customer_account_shows_stale_days(
        services: Services, world: World) -> None:
    acme = world.account("acme")
    shop = world.account("shop", parent=acme, kind=AccountKind.CUSTOMER)
    for on in (CLOSED - ONE_DAY, CLOSED):
        world.result(shop, on, score=4)
    # late events touched the last day: stale (still answered) and queued
    assert services.state.mark_stale_and_enqueue(shop.user_id, CLOSED, CLOSED,
                                                 now=TEST_NOW) == 1
    r = TestClient(create_app(services)).get(
        f"{HISTORY}?from={CLOSED - ONE_DAY}&to={TODAY}",
        headers=bearer(world.key(acme), **{"on-behalf-of": f"account-id {shop.user_id}"}))
    assert r.status_code == 200
    assert [(e["username"], e["date"], e["status"], e["score"]) for e in r.json()["result"]] \
        == [("shop", (CLOSED - ONE_DAY).isoformat(), "computed", 4),
            ("shop", CLOSED.isoformat(), "stale", 4)]


def _stored_days(services: Services, account_id: int) -> set[dt.date]:
    return set(services.state.get_results(account_id, ago(1000), TODAY))


def test_the_scheduler_keeps_results_400_days_once_a_day(services: Services, world: World,
                                                        clock: FrozenClock) -> None:
    acme = world.account("acme")
    for n in (402, 401, 400, 399, 10):
        world.result(acme, ago(n))
    scheduler = Worker(services).scheduler
    scheduler.apply_retention()
    assert _stored_days(services, acme.user_id) == {ago(400), ago(399), ago(10)}
    key = world.key(acme)
    r = TestClient(create_app(services)).get(explain_path_for(ago(400)), headers=bearer(key))
    assert r.status_code == 200  # the oldest kept result is still explained

    # once a day: an old result written later the same day stays until the next day
    world.result(acme, ago(405))
    scheduler.apply_retention()
    assert ago(405) in _stored_days(services, acme.user_id)
    clock.advance(ONE_DAY)
    scheduler.tick()
    # the next day the limit moved one day as well
    assert _stored_days(services, acme.user_id) == {ago(399), ago(10)}


def test_retention_never_removes_a_failed_job(services: Services, world: World,
                                              clock: FrozenClock) -> None:
    acme = world.account("acme")
    services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=TEST_NOW)
    [job] = services.state.claim_jobs("w", 1, now=TEST_NOW, lease=dt.timedelta(minutes=10))
    services.state.fail_job(job.job_id, "RuntimeError: boom", now=TEST_NOW, retry_at=None)
    clock.advance(dt.timedelta(days=30))
    Worker(services).scheduler.apply_retention()
    jobs: list[Any] = services.state.list_jobs()
    assert [(j.job_id, j.state.value, j.last_error) for j in jobs] == [
        (job.job_id, "failed", "RuntimeError: boom")]
