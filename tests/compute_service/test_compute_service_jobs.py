"""The job queue under failure and concurrency: retries with backoff, jobs parked as
failed (reported, never lost), a bad job never taking its batch with it, and two
runners on one state store never computing one (account, day) at once."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from compute_service_support import CLOSED, ONE_DAY, Events, expected, post, unix

import seqscore.service.jobs as jobs_module
from seqscore.clock import FrozenClock
from seqscore.errors import Unavailable
from seqscore.service.jobs import JobRunner, backoff
from seqscore.service.services import Services
from seqscore.storage.state import StateStore, create_state_engine
from seqscore.types import Account, DayResult, Job, JobState
from seqscore_testing import TEST_NOW, World

LEASE = dt.timedelta(minutes=10)


def runner(services: Services, *, state: StateStore | None = None, batch_size: int = 500,
           max_attempts: int = 4) -> JobRunner:
    return JobRunner(state or services.state, services.events, services.model, services.clock,
                     batch_size=batch_size, max_attempts=max_attempts, lease=LEASE)


def job_of(services: Services, account: Account) -> Job:
    [job] = [j for j in services.state.list_jobs() if j.account_id == account.user_id]
    return job


class FailingCompute:
    """``compute_results`` that raises for the listed accounts (``times`` times each, or
    always), and otherwise computes for real."""

    def __init__(self, failing: set[int], times: int | None = None,
                 error: type[Exception] = RuntimeError) -> None:
        self.failing, self.times, self.error = failing, times, error
        self.calls: list[list[int]] = []
        self.raised: Counter[int] = Counter()
        self.real = jobs_module.compute_results

    def __call__(self, events: Any, model: Any, accounts: Sequence[Account],
                 days: Sequence[dt.date], *, computed_at: dt.datetime,
                 **options: Any) -> list[DayResult]:
        ids = sorted(a.user_id for a in accounts)
        self.calls.append(ids)
        bad = [i for i in ids if i in self.failing
               and (self.times is None or self.raised[i] < self.times)]
        if bad:
            self.raised.update(bad)
            raise self.error(f"boom for {bad}")
        return self.real(events, model, accounts, days, computed_at=computed_at, **options)


def _some_events(services: Services, account: Account) -> None:
    ev = Events(account.username)
    post(services, account, [ev("processed", unix(CLOSED) + i, f"p{i}@gmail.com")
                             for i in range(3)])


def test_a_failing_job_is_retried_with_backoff_and_succeeds_later(
        services: Services, world: World, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    acme = world.account("acme")
    _some_events(services, acme)
    compute = FailingCompute({acme.user_id}, times=2)
    monkeypatch.setattr(jobs_module, "compute_results", compute)
    services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=clock.now())
    run = runner(services)

    for attempt, delay_s in ((1, 10), (2, 20)):
        assert run.run_once("w") == 1
        job = job_of(services, acme)
        assert (job.state, job.attempts, job.last_error) == (
            JobState.PENDING, attempt, f"RuntimeError: boom for [{acme.user_id}]")
        assert job.not_before == clock.now() + dt.timedelta(seconds=delay_s)
        assert run.run_once("w") == 0  # not due before its backoff
        clock.advance(dt.timedelta(seconds=delay_s - 1))
        assert run.run_once("w") == 0
        clock.advance(dt.timedelta(seconds=1))
    assert run.run_once("w") == 1
    job = job_of(services, acme)
    assert (job.state, job.attempts, job.last_error) == (JobState.DONE, 3, None)
    [result] = services.state.get_results(acme.user_id, CLOSED, CLOSED).values()
    assert result.counts["processed_long"] == 3


def test_backoff_doubles_from_10_seconds_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 9, 10, 30)] == [
        10, 20, 40, 80, 2560, 3600, 3600]


def test_a_job_that_always_fails_is_parked_as_failed_and_reported(
        services: Services, world: World, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    acme = world.account("acme")
    monkeypatch.setattr(jobs_module, "compute_results", FailingCompute({acme.user_id}))
    services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=clock.now())
    run = runner(services, max_attempts=3)
    caplog.set_level(logging.ERROR, logger="seqscore.jobs")
    for _ in range(3):
        assert run.run_once("w") == 1
        clock.advance(dt.timedelta(hours=1))
    job = job_of(services, acme)
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    assert run.run_once("w") == 0  # parked: never claimed again
    parked = [r.getMessage() for r in caplog.records if "parked as failed" in r.getMessage()]
    assert parked == [f"job {job.job_id} (account {acme.user_id}, {CLOSED}) failed 3 times; "
                      f"parked as failed: boom for [{acme.user_id}]"]
    # never lost: still listed, with its error, after the daily clean-up
    services.state.purge_done_jobs(clock.now() + dt.timedelta(days=365))
    assert [(j.job_id, j.state) for j in services.state.list_jobs(JobState.FAILED)] == [
        (job.job_id, JobState.FAILED)]
    # asking for the day again queues a new attempt beside the parked one
    assert services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=clock.now()) == 1


def test_a_bad_job_fails_alone_and_its_batch_is_computed(
        services: Services, world: World, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = [world.account(f"a{i}") for i in range(5)]
    bad = accounts[3]
    for account in accounts:
        _some_events(services, account)
    compute = FailingCompute({bad.user_id})
    monkeypatch.setattr(jobs_module, "compute_results", compute)
    services.state.enqueue_jobs([(a.user_id, d) for a in accounts
                                 for d in (CLOSED - ONE_DAY, CLOSED)], now=clock.now())
    assert runner(services).run_once("w") == 10
    states = {(j.account_id, j.day): j.state for j in services.state.list_jobs()}
    assert {pair for pair, state in states.items() if state != JobState.DONE} == {
        (bad.user_id, CLOSED - ONE_DAY), (bad.user_id, CLOSED)}
    assert {states[(bad.user_id, d)] for d in (CLOSED - ONE_DAY, CLOSED)} == {JobState.PENDING}
    for account in accounts:
        stored = services.state.get_results(account.user_id, CLOSED - ONE_DAY, CLOSED)
        assert len(stored) == (0 if account is bad else 2)
    # the failing account was computed alone in the end
    assert [bad.user_id] in compute.calls


def test_an_unreachable_store_fails_the_batch_at_once(
        services: Services, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = [world.account(f"a{i}") for i in range(4)]
    compute = FailingCompute({a.user_id for a in accounts}, error=Unavailable)
    monkeypatch.setattr(jobs_module, "compute_results", compute)
    services.state.enqueue_jobs([(a.user_id, CLOSED) for a in accounts], now=TEST_NOW)
    assert runner(services).run_once("w") == 4
    assert len(compute.calls) == 1  # not split: every part would fail the same way
    assert {(j.state, j.attempts) for j in services.state.list_jobs()} == {
        (JobState.PENDING, 1)}


class InFlight:
    """Wraps ``JobRunner._compute``: records which (account, day) pairs are being
    computed, fails the test on an overlap, and re-queues each pair once while it
    runs (late events), so that a pending twin of a running job exists. The first
    computation of a pair in ``slow`` takes long: its twin is the first twin queued,
    so the other runner, done with everything else, meets it while it runs.

    A pair stops counting as running when its jobs are completed (``completing``
    wraps ``StateStore.complete_jobs``), before the commit that lets the other runner
    claim its twin: counting it until ``_compute`` returned would record the other
    runner's rightful claim, made in between, as an overlap."""

    def __init__(self, state: StateStore, slow: set[tuple[int, dt.date]]) -> None:
        self.state = state
        self.slow = slow
        self.lock = threading.Lock()
        self.running: Counter[tuple[int, dt.date]] = Counter()
        self.computed: Counter[tuple[int, dt.date]] = Counter()
        self.overlaps: list[tuple[int, dt.date]] = []
        self.requeued: set[tuple[int, dt.date]] = set()
        self.in_flight: dict[int, tuple[int, dt.date]] = {}  # job_id -> pair
        self.original = JobRunner._compute
        self.original_complete = StateStore.complete_jobs

    def __call__(self, runner: JobRunner, claimed: list[Job]) -> None:
        pairs = [(j.account_id, j.day) for j in claimed]
        with self.lock:
            self.overlaps += [p for p in pairs if self.running[p]]
            self.running.update(pairs)
            self.in_flight.update({j.job_id: (j.account_id, j.day) for j in claimed})
            fresh = [p for p in pairs if p not in self.requeued]
            self.requeued.update(fresh)
        try:
            if fresh:
                self.state.enqueue_jobs(fresh, now=TEST_NOW)
            time.sleep(0.6 if self.slow.intersection(fresh) else 0.005)
            self.original(runner, claimed)
        finally:
            self._finish([j.job_id for j in claimed])

    def completing(self, state: StateStore, job_ids: Sequence[int], *,
                   now: dt.datetime) -> None:
        self._finish(job_ids)
        self.original_complete(state, job_ids, now=now)

    def _finish(self, job_ids: Sequence[int]) -> None:
        with self.lock:
            pairs = [self.in_flight.pop(i) for i in job_ids if i in self.in_flight]
            self.running.subtract(pairs)
            self.computed.update(pairs)


def test_two_runners_never_compute_one_job_at_once(
        services: Services, world: World, state_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = [world.account(f"a{i}") for i in range(3)]
    pairs = [(a.user_id, CLOSED - ONE_DAY * i) for a in accounts for i in range(5)]
    services.state.enqueue_jobs(pairs, now=TEST_NOW)
    monkeypatch.setattr(jobs_module, "compute_results",
                        lambda *args, **kwargs: [])  # the claims are under test, not compute
    in_flight = InFlight(services.state, slow={pairs[0]})
    monkeypatch.setattr(JobRunner, "_compute",
                        lambda self, claimed: in_flight(self, claimed))
    monkeypatch.setattr(StateStore, "complete_jobs", lambda self, job_ids, *, now:
                        in_flight.completing(self, job_ids, now=now))
    # a second store object: its own connection pool, as another process would have
    other = StateStore(create_state_engine(state_url))
    runners = [runner(services, batch_size=1), runner(services, state=other, batch_size=2)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(200):
                if runners[index].run_until_idle(f"w{index}") == 0 and all(
                        j.state == JobState.DONE for j in services.state.list_jobs()):
                    return
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    other.close()
    assert errors == []
    assert in_flight.overlaps == []
    # every pair computed twice (its job, then the twin queued while it ran), none lost
    assert in_flight.computed == Counter({p: 2 for p in pairs})
    assert {j.state for j in services.state.list_jobs()} == {JobState.DONE}


def test_a_result_equals_the_pure_model_whichever_batch_computes_it(
        services: Services, world: World) -> None:
    accounts = [world.account(f"a{i}") for i in range(3)]
    for account in accounts:
        _some_events(services, account)
    days = [CLOSED - ONE_DAY * i for i in range(4)]
    services.state.enqueue_jobs([(a.user_id, d) for a in accounts for d in days],
                                now=TEST_NOW)
    runner(services, batch_size=5).run_until_idle("w")  # batches mixing accounts and days
    want = expected(services, accounts, days)
    for account in accounts:
        for on, result in services.state.get_results(account.user_id, days[-1],
                                                     days[0]).items():
            decision = want[(account.user_id, on)]
            assert (result.score, result.counts, result.eligibility) == (
                decision.score, decision.counts, decision.eligibility)


def test_failing_a_job_that_has_a_pending_twin_parks_it_done(
        services: Services, world: World) -> None:
    """Late events queue a pending twin of a running job; when the running one then
    fails, the twin does the work and the failing one is closed."""
    acme = world.account("acme")
    services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=TEST_NOW)
    [job] = services.state.claim_jobs("w", 1, now=TEST_NOW, lease=LEASE)
    assert services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=TEST_NOW) == 1
    services.state.fail_job(job.job_id, "RuntimeError: boom", now=TEST_NOW,
                            retry_at=TEST_NOW + dt.timedelta(seconds=10))
    assert sorted((j.job_id, j.state) for j in services.state.list_jobs()) == [
        (job.job_id, JobState.DONE), (job.job_id + 1, JobState.PENDING)]
