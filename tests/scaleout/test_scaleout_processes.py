"""The scale-out set-up end to end, in real processes: three `seqscore serve --no-worker`
and two `seqscore worker` on loopback, one PostgreSQL state store, one Parquet lake.

Events go in through the receivers of all three APIs, scores come out of /v3 on all
three; every result must be exactly what the aggregation and scoring give on the
lake's events, every job done exactly once, and the rate limit shared.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from scaleout_support import (
    LAST_CLOSED,
    Process,
    demo_batches,
    demo_plans,
    env_for,
    free_port,
    running,
    start,
    wait_healthy,
)

from seqscore.service.accounts import parse_scopes
from seqscore.service.results import compute_results
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.storage.state_schema import jobs, results
from seqscore.types import AccountKind, JobState
from seqscore_testing import TEST_NOW, clean_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FIRST = LAST_CLOSED - dt.timedelta(days=6)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(7)]
LIMIT = 120  # requests per minute per key and endpoint


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode()}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post_all(apis: list[Process], bodies: list[tuple[str, bytes, int]]) -> list[dict]:
    """POST (key, body, events) round robin through the receivers, 6 at a time."""
    def post(item: tuple[int, tuple[str, bytes, int]]) -> dict:
        n, (key, body, size) = item
        answer = httpx.post(f"{apis[n % len(apis)].url}/api/v1/events/sendgrid", content=body,
                            headers={**basic(key), "Content-Type": "application/json"},
                            timeout=60)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["accepted"] + report["duplicates"] + report["rejected"] == size
        return report

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(post, enumerate(bodies)))


def wait_for_scores(apis: list[Process], keys: dict[str, str], parent: str,
                    timeout_s: float = 240) -> dict[str, list]:
    """Ask every account's scores (and the parent's page) through every API until
    each answers 200 (202: queued, ask again). At most one request per second per key."""
    answers: dict[str, list] = {}
    deadline = time.monotonic() + timeout_s
    turn = 0
    while len(answers) < len(keys) + 1:
        assert time.monotonic() < deadline, f"still waiting for {set(keys) - set(answers)}"
        for username, key in keys.items():
            if username in answers:
                continue
            api = apis[turn % len(apis)]
            turn += 1
            got = httpx.get(f"{api.url}/v3/engagementquality/scores",
                            params={"from": str(FIRST), "to": str(LAST_CLOSED)},
                            headers=bearer(key), timeout=30)
            assert got.status_code in (200, 202), got.text
            if got.status_code == 200:
                answers[username] = got.json()["result"]
        if "page" not in answers:
            page = httpx.get(f"{apis[turn % len(apis)].url}/v3/engagementquality/subusers/scores",
                             params={"date": str(LAST_CLOSED)}, headers=bearer(keys[parent]),
                             timeout=30)
            assert page.status_code in (200, 202), page.text
            if page.status_code == 200:
                answers["page"] = page.json()["result"]
        time.sleep(1.0)
    return answers


def wait_until_jobs_done(services: Services, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while services.state.list_jobs(JobState.PENDING) or services.state.list_jobs(
            JobState.RUNNING):
        assert time.monotonic() < deadline, "jobs still pending"
        time.sleep(0.5)


def late_batch(n: int) -> bytes:
    """New events of the day before the last closed one: they change its results."""
    t = int(dt.datetime.combine(LAST_CLOSED - dt.timedelta(days=1), dt.time(15),
                                dt.UTC).timestamp())
    events = []
    for i in range(n):
        common = {"email": f"late{i}@gmail.com", "timestamp": t + i,
                  "sg_message_id": f"late-{i}.filter"}
        events += [{**common, "event": "processed", "sg_event_id": f"late-p-{i}"},
                   {**common, "event": "delivered", "sg_event_id": f"late-d-{i}"},
                   {**common, "event": "spamreport", "sg_event_id": f"late-s-{i}"}]
    return json.dumps(events).encode()


def test_three_apis_and_two_workers_share_one_postgresql_and_one_lake(
        postgres_database: str, tmp_path: Path):
    state_url = clean_postgres(postgres_database)
    lake_url = f"parquet://{tmp_path / 'lake'}"
    model = tmp_path / "model.toml"
    model.write_text('version = "small-volume"\nmin_messages = 50\nmin_denominator = 10\n')
    settings = Settings(data_dir=tmp_path / "data", state_url=state_url, events_url=lake_url,
                        now=TEST_NOW.isoformat(), model=model, worker=False)
    services = Services.open(settings)
    plans = demo_plans(accounts=4, volume_scale=0.02)
    accounts, keys = {}, {}
    for plan in plans:
        parent = accounts.get(plan.parent)
        accounts[plan.username] = services.accounts.create_account(
            plan.username, parent=parent, kind=AccountKind(plan.kind),
            open_tracking=plan.open_tracking)
        keys[plan.username] = services.accounts.create_key(
            accounts[plan.username], name="test", scopes=parse_scopes(None)).api_key
    limit_key = services.accounts.create_key(accounts[plans[0].username], name="rl",
                                             scopes=parse_scopes(None)).api_key

    env = env_for(settings.data_dir, state_url, lake_url, model=model,
                  rate_limit_per_minute=LIMIT, worker_poll_seconds=0.2, worker_batch_size=4)
    logs = tmp_path / "logs"
    logs.mkdir()
    apis = []
    for i in range(3):
        port = free_port()
        apis.append(start(f"api{i}", ["serve", "--no-worker", "--port", str(port)], env, logs,
                          url=f"http://127.0.0.1:{port}"))
    with running(list(apis)) as procs:
        for api in apis:
            wait_healthy(api)

        # 1. ingest through every receiver, retrying some batches on another API
        bodies = [(keys[b.account], json.dumps(b.events).encode(), len(b.events))
                  for b in demo_batches(plans)]
        reports = post_all(apis, bodies + bodies[:20])
        assert sum(r["accepted"] for r in reports) > 4000
        assert sum(r["duplicates"] for r in reports[-20:]) == sum(n for *_, n in bodies[:20])

        # 2. two workers; scores asked through every API until computed
        procs += [start(f"worker{i}", ["worker"], env, logs) for i in range(2)]
        parent = plans[0].username
        answers = wait_for_scores(apis, keys, parent)
        wait_until_jobs_done(services)

        # 3. late events: the day's results go stale and are computed again
        stale_day = LAST_CLOSED - dt.timedelta(days=1)
        target = accounts[plans[1].username].user_id
        before = services.state.get_results(target, stale_day, stale_day)[stale_day]
        late = post_all(apis, [(keys[plans[1].username], late_batch(40), 120)])
        assert late[0]["accepted"] == 120
        assert services.state.get_results(target, stale_day, stale_day)[stale_day].stale
        wait_until_jobs_done(services)

        # 4. the shared rate limit: one key's requests spread over the three APIs
        if time.time() % 60 > 50:
            time.sleep(61 - time.time() % 60)
        statuses = [httpx.get(f"{apis[i % 3].url}/v3/engagementquality/scores",
                              params={"from": str(FIRST), "to": str(LAST_CLOSED)},
                              headers=bearer(limit_key), timeout=30).status_code
                    for i in range(LIMIT + 12)]
        assert statuses.count(429) == 12 and statuses[:LIMIT] == [200] * LIMIT

        # every result once, and correct: what aggregation + scoring give on the lake
        expected = compute_results(services.events, services.model,
                                   list(accounts.values()), DAYS, computed_at=TEST_NOW)
        with services.state.engine.connect() as conn:
            stored_keys = conn.execute(sa.select(results.c.account_id, results.c.day)).all()
            job_rows = conn.execute(sa.select(jobs.c.account_id, jobs.c.day, jobs.c.state,
                                              jobs.c.attempts, jobs.c.claimed_by)).all()
        assert sorted(stored_keys) == sorted({(r.account_id, r.day) for r in expected})
        for want in expected:
            got = services.state.get_results(want.account_id, want.day, want.day)[want.day]
            assert not got.stale
            assert (got.counts, got.rates, got.score, got.metrics, got.eligibility) == (
                want.counts, want.rates, want.score, want.metrics, want.eligibility)
        assert sum(r.score is not None for r in expected) >= len(expected) // 2
        after = services.state.get_results(target, stale_day, stale_day)[stale_day]
        assert after.counts != before.counts  # recomputed with the late events

        # no job lost or done twice: every job done, each claimed once; both workers worked
        assert job_rows and all(j.state == "done" and j.attempts == 1 for j in job_rows)
        assert {(j.account_id, j.day) for j in job_rows} >= {
            (r.account_id, r.day) for r in expected}
        assert len({j.claimed_by.split(":")[1] for j in job_rows}) == 2

        # /v3 answered the computed scores (the first answers, before the late events)
        by_id = {r.account_id: r for r in expected if r.day == LAST_CLOSED}
        for username, entries in answers.items():
            if username == "page":
                continue
            assert [e["date"] for e in entries] == [str(d) for d in DAYS]
            last = entries[-1]
            assert last.get("score") == by_id[accounts[username].user_id].score
        page = {e["username"]: e.get("score") for e in answers["page"]}
        assert page == {u: by_id[a.user_id].score for u, a in accounts.items()
                        if a.parent_id is not None}
    for process in procs:
        assert "Traceback" not in process.output(), process.output()
    services.close()
