"""200 or 202, driven by the injected clock: closed days, the settle delay, the job queue.

Day D is closed at (D+1) 00:00 UTC + settle (60 minutes by default). Only
closed days are answered; a closed day without a result queues exactly one job
per (account, day), however often the request is repeated, and the queue
survives a restart.
"""

from __future__ import annotations

import datetime as dt

import pytest
from openapi_check import ACCEPTED_BODY
from seq_api_support import bearer, client_for, day, entry

from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import JobState
from seqscore_testing import World

SCORES = "/v3/engagementquality/scores"
SUBUSERS = "/v3/engagementquality/subusers/scores"
UTC = dt.UTC
M = (4, 3, 5, 5, 4)  # the metrics World.result writes by default


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def pending(services: Services) -> set[tuple[int, dt.date]]:
    jobs = services.state.list_jobs()
    assert all(j.state == JobState.PENDING for j in jobs)
    pairs = [(j.account_id, j.day) for j in jobs]
    assert len(pairs) == len(set(pairs)), f"a job queued twice: {pairs}"
    return set(pairs)


# The close of 2026-11-20 with the default settle of 60 minutes: 2026-11-21 01:00 UTC.
CLOSE_OF_20TH = [
    ("2026-11-20T23:59:59.999999", False),
    ("2026-11-21T00:00:00", False),
    ("2026-11-21T00:59:59.999999", False),
    ("2026-11-21T01:00:00.000001", True),
    ("2026-11-21T01:00:01", True),
]


def test_scores_day_closes_at_midnight_plus_settle(services, world: World,
                                                   clock: FrozenClock) -> None:
    parent = world.account("acme")
    world.result(parent, day("2026-11-20"))
    key = world.key(parent)
    client = client_for(services)
    for instant, closed in CLOSE_OF_20TH:
        clock.set(at(instant))
        r = client.get(f"{SCORES}?from=2026-11-20&to=2026-11-20", headers=bearer(key))
        if closed:
            assert (r.status_code, r.json()) == (
                200, {"result": [entry(parent, day("2026-11-20"), 4, M)]}), instant
        else:
            assert (r.status_code, r.json()) == (202, ACCEPTED_BODY), instant
    assert pending(services) == set()  # an unclosed day is never queued


def test_subusers_scores_day_closes_at_midnight_plus_settle(services, world: World,
                                                            clock: FrozenClock) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    world.result(kid, day("2026-11-20"), score=2, metrics=(1, 2, 3, 4, 5))
    key = world.key(parent)
    client = client_for(services)
    for instant, closed in CLOSE_OF_20TH:
        clock.set(at(instant))
        r = client.get(f"{SUBUSERS}?date=2026-11-20", headers=bearer(key))
        if closed:
            assert (r.status_code, r.json()) == (
                200, {"result": [entry(kid, day("2026-11-20"), 2, (1, 2, 3, 4, 5))]}), instant
        else:
            assert (r.status_code, r.json()) == (202, ACCEPTED_BODY), instant


@pytest.mark.parametrize(("settle_minutes", "before", "after"), [
    (15, "2026-11-21T00:14:59.999999", "2026-11-21T00:15:00.000001"),
    (0, "2026-11-20T23:59:59.999999", "2026-11-21T00:00:00.000001"),
    (180, "2026-11-21T02:59:59", "2026-11-21T03:00:01"),
])
def test_settle_minutes_setting_moves_the_close(settings: Settings, clock: FrozenClock,
                                                settle_minutes: int, before: str,
                                                after: str) -> None:
    services = Services.open(settings.replace(settle_minutes=settle_minutes), clock=clock)
    try:
        world = World(services)
        parent = world.account("acme")
        world.result(parent, day("2026-11-20"))
        key = world.key(parent)
        client = client_for(services)
        clock.set(at(before))
        r = client.get(f"{SCORES}?from=2026-11-20&to=2026-11-20", headers=bearer(key))
        assert r.status_code == 202
        clock.set(at(after))
        r = client.get(f"{SCORES}?from=2026-11-20&to=2026-11-20", headers=bearer(key))
        assert r.status_code == 200
    finally:
        services.close()


def test_scores_leaves_out_unclosed_days(services, world: World, clock: FrozenClock) -> None:
    parent = world.account("acme")
    for d in ("2026-11-18", "2026-11-19", "2026-11-20"):  # the 20th computed early
        world.result(parent, day(d))
    key = world.key(parent)
    client = client_for(services)
    r = client.get(f"{SCORES}?from=2026-11-18&to=2026-11-20", headers=bearer(key))
    assert r.status_code == 200
    assert r.json() == {"result": [entry(parent, day("2026-11-18"), 4, M),
                                   entry(parent, day("2026-11-19"), 4, M)]}
    clock.set(at("2026-11-21T01:00:00.000001"))
    r = client.get(f"{SCORES}?from=2026-11-18&to=2026-11-20", headers=bearer(key))
    assert r.status_code == 200
    assert [e["date"] for e in r.json()["result"]] == ["2026-11-18", "2026-11-19",
                                                       "2026-11-20"]


def test_scores_202_when_no_day_in_range_is_closed(services, world: World) -> None:
    parent = world.account("acme")
    r = client_for(services).get(f"{SCORES}?from=2026-11-20&to=2026-11-20",
                                 headers=bearer(world.key(parent)))
    assert r.status_code == 202
    assert r.content == (b'{"message":"We are processing the score for this date range. '
                         b'Please try again later."}')
    assert pending(services) == set()


def test_scores_202_queues_each_missing_closed_day_once(services, world: World) -> None:
    parent = world.account("acme")
    world.result(parent, day("2026-11-18"))
    key = world.key(parent)
    client = client_for(services)
    for _ in range(3):
        r = client.get(f"{SCORES}?from=2026-11-16&to=2026-11-20", headers=bearer(key))
        assert (r.status_code, r.json()) == (202, ACCEPTED_BODY)
    # the 18th has a result; the 20th is not closed
    expected = {(parent.user_id, day(d)) for d in ("2026-11-16", "2026-11-17", "2026-11-19")}
    assert pending(services) == expected
    first_ids = [j.job_id for j in services.state.list_jobs()]

    # an overlapping range adds only what is new
    r = client.get(f"{SCORES}?from=2026-11-15&to=2026-11-17", headers=bearer(key))
    assert r.status_code == 202
    assert pending(services) == expected | {(parent.user_id, day("2026-11-15"))}
    assert [j.job_id for j in services.state.list_jobs()][:3] == first_ids

    # once computed, the same request answers 200 with every closed day
    for d in ("2026-11-15", "2026-11-16", "2026-11-17", "2026-11-19"):
        world.result(parent, day(d), score=1, metrics=(1, 1, 1, 1, 1))
    r = client.get(f"{SCORES}?from=2026-11-16&to=2026-11-20", headers=bearer(key))
    assert r.status_code == 200
    assert r.json() == {"result": [
        entry(parent, day("2026-11-16"), 1, (1, 1, 1, 1, 1)),
        entry(parent, day("2026-11-17"), 1, (1, 1, 1, 1, 1)),
        entry(parent, day("2026-11-18"), 4, M),
        entry(parent, day("2026-11-19"), 1, (1, 1, 1, 1, 1)),
    ]}


def test_scores_on_behalf_of_queues_the_childs_days(services, world: World) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    r = client_for(services).get(f"{SCORES}?from=2026-11-19&to=2026-11-19",
                                 headers=bearer(world.key(parent), **{"on-behalf-of": "kid"}))
    assert r.status_code == 202
    assert pending(services) == {(kid.user_id, day("2026-11-19"))}


def test_subusers_scores_202_queues_each_missing_child_once(services, world: World) -> None:
    parent = world.account("acme")
    kids = [world.account(f"kid{i}", parent=parent) for i in range(3)]
    world.result(kids[1], day("2026-11-19"), score=None)
    key = world.key(parent)
    client = client_for(services)
    for _ in range(3):
        r = client.get(f"{SUBUSERS}?date=2026-11-19", headers=bearer(key))
        assert (r.status_code, r.json()) == (202, ACCEPTED_BODY)
    assert pending(services) == {(kids[0].user_id, day("2026-11-19")),
                                 (kids[2].user_id, day("2026-11-19"))}

    world.result(kids[0], day("2026-11-19"), score=5, metrics=(5, 4, 3, 2, 1))
    world.result(kids[2], day("2026-11-19"))
    r = client.get(f"{SUBUSERS}?date=2026-11-19", headers=bearer(key))
    assert r.status_code == 200
    assert r.json() == {"result": [entry(kids[0], day("2026-11-19"), 5, (5, 4, 3, 2, 1)),
                                   entry(kids[1], day("2026-11-19")),
                                   entry(kids[2], day("2026-11-19"), 4, M)]}


def test_subusers_scores_unclosed_date_is_202_even_with_results(services, world: World) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    world.result(kid, day("2026-11-20"))
    r = client_for(services).get(f"{SUBUSERS}?date=2026-11-20",
                                 headers=bearer(world.key(parent)))
    assert (r.status_code, r.json()) == (202, ACCEPTED_BODY)
    assert pending(services) == set()


def test_queued_jobs_survive_a_restart(settings: Settings, clock: FrozenClock,
                                       services: Services, world: World) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    key = world.key(parent)
    client = client_for(services)
    assert client.get(f"{SCORES}?from=2026-11-18&to=2026-11-19",
                      headers=bearer(key)).status_code == 202
    assert client.get(f"{SUBUSERS}?date=2026-11-19", headers=bearer(key)).status_code == 202
    before = services.state.list_jobs()
    assert {(j.account_id, j.day) for j in before} == {
        (parent.user_id, day("2026-11-18")), (parent.user_id, day("2026-11-19")),
        (kid.user_id, day("2026-11-19"))}
    services.close()

    reopened = Services.open(settings, clock=clock)
    try:
        assert reopened.state.list_jobs() == before
        # the same requests after the restart queue nothing new
        again = client_for(reopened)
        assert again.get(f"{SCORES}?from=2026-11-18&to=2026-11-19",
                         headers=bearer(key)).status_code == 202
        assert again.get(f"{SUBUSERS}?date=2026-11-19", headers=bearer(key)).status_code == 202
        assert reopened.state.list_jobs() == before
    finally:
        reopened.close()


def test_ineligible_day_has_no_score_and_no_metrics(services, world: World) -> None:
    parent = world.account("acme")
    kid = world.account("kid", parent=parent)
    world.result(parent, day("2026-11-18"), score=None)
    world.result(parent, day("2026-11-19"))
    world.result(kid, day("2026-11-19"), score=None)
    key = world.key(parent)
    client = client_for(services)

    r = client.get(f"{SCORES}?from=2026-11-18&to=2026-11-19", headers=bearer(key))
    assert r.status_code == 200
    first, second = r.json()["result"]
    assert first == {"user_id": str(parent.user_id), "username": "acme", "date": "2026-11-18"}
    assert second == entry(parent, day("2026-11-19"), 4, M)
    assert b"null" not in r.content

    r = client.get(f"{SUBUSERS}?date=2026-11-19", headers=bearer(key))
    assert r.status_code == 200
    assert r.json() == {"result": [{"user_id": str(kid.user_id), "username": "kid",
                                    "date": "2026-11-19"}]}
    assert b"null" not in r.content


def test_today_follows_the_clock(services, world: World, clock: FrozenClock) -> None:
    parent = world.account("acme")
    key = world.key(parent)
    client = client_for(services)
    clock.set(at("2026-11-21T00:30:00"))  # today is now the 21st; the 20th is not closed
    r = client.get(f"{SCORES}?from=2026-11-21&to=2026-11-21", headers=bearer(key))
    assert r.status_code == 202
    r = client.get(f"{SCORES}?from=2026-11-21&to=2026-11-22", headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "to", "message":
                                   'failed to parse request: "to" cannot be in the future'}]
    r = client.get(f"{SUBUSERS}?date=2026-08-23", headers=bearer(key))  # 90 days back
    assert r.status_code == 200  # no children: nothing to wait for
    assert r.json() == {"result": []}
    r = client.get(f"{SUBUSERS}?date=2026-08-22", headers=bearer(key))  # now 91 days back
    assert r.status_code == 400
    assert pending(services) == set()
