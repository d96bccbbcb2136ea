"""Late events for a day whose first computation is running: the day is computed again.

The race: a 202 (or the scheduler) queues a closed day that has no result yet, a
worker claims it and reads the events; a batch for that day arrives before the
worker writes its result. The batch must queue a successor for the day, or the
stored result misses the late events until something else queues it.
"""

from __future__ import annotations

import datetime as dt

from ingest_service_support import CLOSED, body, event

from seqscore.service.jobs import JobRunner
from seqscore.service.results import compute_results
from seqscore.storage.state import StateStore
from seqscore.types import JobState

LEASE = dt.timedelta(minutes=5)
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def test_a_batch_during_the_first_computation_of_a_day_is_counted(services, world):
    acme = world.account("acme")
    services.ingest.ingest(acme, body(*(event(n, day=CLOSED) for n in range(40))))
    state, clock = services.state, services.clock
    state.enqueue_jobs([(acme.user_id, CLOSED)], now=clock.now())  # as a 202 does
    (running,) = state.claim_jobs("w1", 10, now=clock.now(), lease=LEASE)
    # the worker reads the events ...
    early = compute_results(services.events, services.model, [acme], [CLOSED],
                            computed_at=clock.now())
    # ... a late batch for the day arrives ...
    late = services.ingest.ingest(acme, body(*(event(n, day=CLOSED, event="open")
                                               for n in range(1000, 1030))))
    assert (late.accepted, late.jobs_queued) == (30, 1)
    # ... and the worker writes what it read and finishes.
    state.upsert_results(early)
    state.complete_jobs([running.job_id], now=clock.now())

    runner = JobRunner(state, services.events, services.model, clock, batch_size=10,
                       max_attempts=3, lease=LEASE)
    assert runner.run_until_idle("w2") == 1
    stored = state.get_results(acme.user_id, CLOSED, CLOSED)[CLOSED]
    (expected,) = compute_results(services.events, services.model, [acme], [CLOSED],
                                  computed_at=clock.now())
    assert stored.counts == expected.counts != early[0].counts
    assert state.list_jobs(JobState.PENDING) == []


def test_a_running_job_without_a_result_gets_one_pending_successor(state_url):
    """The state store's side, on every engine: one successor however often it is
    marked, none for a day nothing computes, none for a running job of another day."""
    store = StateStore.open(state_url)
    try:
        acme = store.create_account("acme", now=NOW)
        day, other_day = dt.date(2026, 11, 19), dt.date(2026, 11, 10)
        store.enqueue_jobs([(acme.user_id, day), (acme.user_id, other_day)], now=NOW)
        running = store.claim_jobs("w1", 10, now=NOW, lease=LEASE)
        assert len(running) == 2
        first, last = dt.date(2026, 11, 15), dt.date(2026, 11, 19)
        assert store.mark_stale_and_enqueue(acme.user_id, first, last, now=NOW) == 1
        assert store.mark_stale_and_enqueue(acme.user_id, first, last, now=NOW) == 0
        (pending,) = store.list_jobs(JobState.PENDING)
        assert pending.day == day
        # the successor waits for the running job, then is claimed
        assert store.claim_jobs("w2", 10, now=NOW, lease=LEASE) == []
        store.complete_jobs([job.job_id for job in running], now=NOW)
        (successor,) = store.claim_jobs("w2", 10, now=NOW, lease=LEASE)
        assert successor.job_id == pending.job_id
        # nothing runs for these days now and none has a result: nothing to queue
        store.complete_jobs([successor.job_id], now=NOW)
        assert store.mark_stale_and_enqueue(acme.user_id, first, last, now=NOW) == 0
    finally:
        store.close()
