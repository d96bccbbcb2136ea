"""What several processes share through the state store: the rate limit, the daily
schedule, and the move of an embedded installation's state onto PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from seqscore.errors import Conflict, RateLimited
from seqscore.service.ratelimit import (
    RateLimiter,
    SharedRateLimiter,
    make_rate_limiter,
)
from seqscore.storage.state import StateStore, copy_state
from seqscore.storage.state_schema import jobs, metadata, rate_counts
from seqscore.types import AccountKind, JobState
from seqscore_testing import TEST_NOW, clean_postgres


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(state_url):
    opened = StateStore.open(state_url)
    yield opened
    opened.close()


def test_the_shared_limit_holds_across_limiters_of_one_store(store):
    clock = Clock(1_800_000_010)
    api1, api2 = (SharedRateLimiter(store, 5, wall_clock=clock) for _ in range(2))
    statuses = [api1.hit("key", "seq.scores"), api2.hit("key", "seq.scores"),
                api1.hit("key", "seq.scores"), api2.hit("key", "seq.scores"),
                api1.hit("key", "seq.scores")]
    assert [s.remaining for s in statuses] == [4, 3, 2, 1, 0]
    assert statuses[0].reset_epoch_s == 1_800_000_060  # the next whole minute
    with pytest.raises(RateLimited) as refused:
        api2.hit("key", "seq.scores")
    assert (refused.value.limit, refused.value.reset_epoch_s) == (5, 1_800_000_060)
    assert api2.hit("key", "seq.subusers_scores").remaining == 4  # per endpoint
    assert api2.hit("other", "seq.scores").remaining == 4  # per key
    clock.t += 50  # a new minute: counting starts again
    assert api1.hit("key", "seq.scores").remaining == 4


def test_windows_older_than_the_previous_minute_are_forgotten(store):
    clock = Clock(1_800_000_000)
    limiter = SharedRateLimiter(store, 100, wall_clock=clock)
    for minute in range(4):
        limiter.hit("key", "seq.scores")
        clock.t += 60
    limiter.hit("key", "seq.scores")
    with store.engine.connect() as conn:
        windows = sorted(conn.execute(sa.select(rate_counts.c.window_start)).scalars())
    assert windows == [1_800_000_180, 1_800_000_240]


def test_concurrent_requests_through_many_limiters_admit_exactly_the_limit(store):
    limiters = [SharedRateLimiter(store, 40) for _ in range(4)]
    outcomes: list[bool] = []
    lock = threading.Lock()
    if time.time() % 60 > 50:  # keep the burst inside one minute
        time.sleep(61 - time.time() % 60)

    def burst(limiter: SharedRateLimiter) -> None:
        for _ in range(15):
            try:
                limiter.hit("burst-key", "seq.scores")
                ok = True
            except RateLimited:
                ok = False
            with lock:
                outcomes.append(ok)

    threads = [threading.Thread(target=burst, args=(lim,)) for lim in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (outcomes.count(True), outcomes.count(False)) == (40, 20)


def test_auto_shares_the_count_on_postgresql_only(store):
    chosen = make_rate_limiter("auto", 10, store)
    expected = SharedRateLimiter if store.dialect == "postgresql" else RateLimiter
    assert type(chosen) is expected
    assert type(make_rate_limiter("memory", 10, store)) is RateLimiter
    assert type(make_rate_limiter("state", 10, store)) is SharedRateLimiter
    with pytest.raises(ValueError, match="rate_limit_store"):
        make_rate_limiter("redis", 10, store)


_SCHEDULE_ONCE = """
import json, sys, time
from seqscore.service.schedule import Retention, Scheduler
from seqscore.clock import FrozenClock
from seqscore.storage.state import StateStore
import datetime as dt
state = StateStore.open(sys.argv[1])
scheduler = Scheduler(state, None, FrozenClock(dt.datetime.fromisoformat(sys.argv[2])),
                      settle_minutes=60, retention=Retention(400, 120, 30))
while time.time() < float(sys.argv[3]):
    time.sleep(0.001)
print(json.dumps(scheduler.queue_closed_days()))
"""


@pytest.mark.postgres
def test_the_daily_schedule_runs_once_however_many_processes_tick(postgres_database):
    clean_postgres(postgres_database)
    store = StateStore.open(postgres_database)
    for n in range(25):
        store.create_account(f"acct-{n}", kind=AccountKind.SUBUSER, now=TEST_NOW)
    start_at = time.time() + 4  # all processes connected and waiting by then
    procs = [subprocess.Popen([sys.executable, "-c", _SCHEDULE_ONCE, postgres_database,
                               TEST_NOW.isoformat(), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    queued = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        queued.append(json.loads(out))
    assert sorted(queued) == [0, 0, 0, 0, 0, 25]
    pending = store.list_jobs(JobState.PENDING)
    assert len(pending) == 25
    assert {j.day for j in pending} == {dt.date(2026, 11, 19)}
    store.close()


def test_state_is_copied_with_its_ids_into_an_empty_store(tmp_path, store):
    source = StateStore.open(f"sqlite:///{tmp_path / 'source.sqlite3'}")
    parent = source.create_account("parent", kind=AccountKind.SUBUSER, now=TEST_NOW)
    # a child with a smaller id than its parent's: copied after the parent anyway
    source.create_account("child", parent_id=parent.user_id, user_id=parent.user_id + 50,
                          now=TEST_NOW)
    low = source.create_account("early", user_id=1000, now=TEST_NOW)
    child = source.create_account("late-child", parent_id=low.user_id, now=TEST_NOW)
    source.enqueue_jobs([(parent.user_id, dt.date(2026, 11, 18)),
                         (child.user_id, dt.date(2026, 11, 19))], now=TEST_NOW)
    source.complete_jobs([source.list_jobs()[0].job_id], now=TEST_NOW)
    source.count_request("key", "seq.scores", 1_800_000_000)
    copied = copy_state(source, store)
    assert copied["accounts"] == 4 and copied["jobs"] == 2 and copied["rate_counts"] == 1
    assert set(copied) == {t.name for t in metadata.sorted_tables}
    assert store.list_accounts() == source.list_accounts()
    assert store.list_jobs() == source.list_jobs()
    # ids go on after the copied ones
    new = store.enqueue_jobs([(low.user_id, dt.date(2026, 11, 19))], now=TEST_NOW)
    assert new == 1
    assert max(j.job_id for j in store.list_jobs()) > max(j.job_id for j in source.list_jobs())
    with pytest.raises(Conflict, match="not empty"):
        copy_state(source, store)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 3
    source.close()
