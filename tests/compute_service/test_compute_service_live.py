"""End to end on a real server with its in-process worker thread: a generated month is
posted to the webhook receiver; /v3 answers 202, the worker computes, /v3 answers 200
with exactly what the pure model gives on the same events; late events then change
every day they reach, and only those."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from compute_service_support import (
    ACCEPTED_BODY,
    CLOSED,
    MONTH_PLANS,
    ONE_DAY,
    SCORES,
    Events,
    assert_stored_matches,
    create_plan_accounts,
    days,
    expected,
    month_batches,
    on_behalf_of,
    open_jobs,
    unix,
    v3_entry,
    wait_for,
)

from live_server import serving
from seqscore.api.app import create_app
from seqscore.server import in_process_worker
from seqscore.service.services import Services
from seqscore.types import Account
from seqscore_testing import World

pytestmark = pytest.mark.slow

RECEIVER = "/api/v1/events/sendgrid"
FIRST = CLOSED - 18 * ONE_DAY  # 2026-11-01
LATE_DAY = CLOSED - 14 * ONE_DAY  # 2026-11-05


def settled(services: Services) -> bool | None:
    """True once no job is pending or running and no result is stale."""
    if open_jobs(services):
        return None
    accounts = services.state.list_accounts()
    stale = any(r.stale for a in accounts
                for r in services.state.get_results(a.user_id, FIRST, CLOSED).values())
    return None if stale else True


def scores_when_ready(http: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        r = http.get(f"{SCORES}?from={FIRST}&to={CLOSED}", headers=headers)
        if r.status_code == 202:
            assert r.json() == ACCEPTED_BODY
            return None
        assert r.status_code == 200, r.text
        result: list[dict[str, Any]] = r.json()["result"]
        return result

    return wait_for(ready, what="/v3 scores to answer 200")


def test_a_generated_month_through_receiver_worker_and_v3(services: Services,
                                                          world: World) -> None:
    accounts = create_plan_accounts(world, MONTH_PLANS)
    parent = accounts["acme"]
    key = world.key(parent)

    def headers(account: Account) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **on_behalf_of(account)}

    app = create_app(services, background=[in_process_worker])
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        for username, body in month_batches():
            r = http.post(RECEIVER, content=body, headers={
                **headers(accounts[username]), "Content-Type": "application/json"})
            assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
        # the scheduler queued the last closed day at start; ingestion made it stale
        wait_for(lambda: settled(services), what="the queue to drain")

        # days 1..18 of November were never asked for: 202, then 200 once computed
        for account in accounts.values():
            r = http.get(f"{SCORES}?from={FIRST}&to={CLOSED}", headers=headers(account))
            assert (r.status_code, r.json()) == (202, ACCEPTED_BODY), account.username
        answers = {name: scores_when_ready(http, headers(a)) for name, a in accounts.items()}
        wait_for(lambda: settled(services), what="the queue to drain")

        every_day = days(FIRST, CLOSED)
        want = expected(services, list(accounts.values()), every_day)
        for name, account in accounts.items():
            assert answers[name] == [v3_entry(account, d, want[(account.user_id, d)])
                                     for d in every_day], name
            for d, stored in services.state.get_results(account.user_id, FIRST,
                                                        CLOSED).items():
                assert_stored_matches(stored, want[(account.user_id, d)])
        eligible = {name for name, a in accounts.items()
                    if want[(a.user_id, CLOSED)].score is not None}
        assert eligible == {"acme", "shop-7"}, "the month should mix eligible and not"
        assert want[(accounts["acme-billing"].user_id, CLOSED)].eligibility == \
            "open_tracking_off"

        # the explanation tells the same numbers, for the customer account by account-id
        shop = accounts["shop-7"]
        r = http.get(f"/api/v1/scores/{CLOSED}", headers=headers(shop))
        assert r.status_code == 200
        decision = want[(shop.user_id, CLOSED)]
        assert (r.json()["score"], r.json()["counts"]) == (decision.score, decision.counts)

        # late events for acme, dated 2026-11-05, arriving now
        acme = accounts["acme"]
        before = services.state.get_results(acme.user_id, FIRST, CLOSED)
        jobs_before = {j.job_id for j in services.state.list_jobs()}
        ev = Events("late")
        late = [ev("processed", unix(LATE_DAY) + i, f"late{i}@gmail.com") for i in range(40)]
        late += [ev("spamreport", unix(LATE_DAY) + 100 + i, f"late{i}@gmail.com")
                 for i in range(4)]
        r = http.post(RECEIVER, json=late, headers=headers(acme))
        assert (r.status_code, r.json()["accepted"]) == (200, 44)
        queued = {(j.account_id, j.day) for j in services.state.list_jobs()
                  if j.job_id not in jobs_before}
        # every stored result from the late day on (up to +89 days) was queued, no other
        assert queued == {(acme.user_id, d) for d in days(LATE_DAY, CLOSED)}
        wait_for(lambda: settled(services), what="the late recomputations")

        after = services.state.get_results(acme.user_id, FIRST, CLOSED)
        want_after = expected(services, [acme], every_day)
        for d in every_day:
            assert_stored_matches(after[d], want_after[(acme.user_id, d)])
            change = {k: after[d].counts[k] - before[d].counts[k]
                      for k in ("processed_long", "spam_reports_long")}
            if d < LATE_DAY:
                assert after[d] == before[d], d
            else:
                assert change == {"processed_long": 40, "spam_reports_long": 4}, d
        r = http.get(f"{SCORES}?from={FIRST}&to={CLOSED}", headers=headers(acme))
        assert r.json()["result"] == [v3_entry(acme, d, want_after[(acme.user_id, d)])
                                      for d in every_day]
        changed_scores = [d for d in days(LATE_DAY, CLOSED)
                          if want_after[(acme.user_id, d)].score != before[d].score]
        assert changed_scores, "the late spam reports should lower some score"

