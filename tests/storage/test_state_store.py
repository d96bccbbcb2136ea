"""The state store contract, run on every engine (SQLite always; PostgreSQL in CI)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from seqscore import apikeys
from seqscore.errors import Conflict, NotFound
from seqscore.storage.state import StateStore
from seqscore.storage.state_schema import metadata
from seqscore.types import METRIC_NAMES, AccountKind, DayResult, Eligibility, JobState

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 19)
LEASE = dt.timedelta(minutes=10)


@pytest.fixture
def store(state_url: str):
    opened = StateStore.open(state_url)
    yield opened
    opened.close()


def test_migrations_create_exactly_the_declared_schema(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_reopening_a_migrated_store_keeps_its_rows(state_url, store):
    store.create_account("acme", now=NOW)
    again = StateStore.open(state_url)
    assert again.require_account("acme").username == "acme"
    again.close()


def test_accounts_get_increasing_ids_and_unique_names(store):
    parent = store.create_account("acme", now=NOW)
    child = store.create_account("news", parent_id=parent.user_id, kind=AccountKind.CUSTOMER,
                                 open_tracking=False, now=NOW)
    assert child.user_id > parent.user_id
    assert (child.parent_id, child.kind, child.open_tracking) == (
        parent.user_id, AccountKind.CUSTOMER, False)
    with pytest.raises(Conflict):
        store.create_account("acme", now=NOW)
    with pytest.raises(NotFound):
        store.create_account("orphan", parent_id=999_999, now=NOW)
    assert store.get_account_by_username("news") == child


def test_children_are_listed_in_numeric_user_id_order(store):
    parent = store.create_account("acme", now=NOW)
    for user_id in (1000, 99, 5000, 100):
        store.create_account(f"c{user_id}", parent_id=parent.user_id, user_id=user_id, now=NOW)
    ids = [c.user_id for c in store.list_children(parent.user_id)]
    assert ids == [99, 100, 1000, 5000]
    assert [c.user_id for c in store.list_children(parent.user_id, after_user_id=100,
                                                   limit=1)] == [1000]


def test_concurrent_account_creation_allocates_distinct_ids(store):
    made: list[int] = []
    errors: list[Exception] = []

    def create(i: int) -> None:
        try:
            made.append(store.create_account(f"user{i}", now=NOW).user_id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(made)) == 8


def test_keys_store_only_a_hash_and_revoke(store):
    account = store.create_account("acme", now=NOW)
    new = apikeys.generate()
    store.insert_key(key_id=new.key_id, account_id=account.user_id, name="ci",
                     scopes=["engagement_quality.read"], secret_sha256=new.secret_sha256, now=NOW)
    key, stored_hash = store.get_key(new.key_id)
    assert apikeys.matches(new.api_key, stored_hash)
    assert not apikeys.matches(new.api_key[:-1] + "x", stored_hash)
    assert key.scopes == frozenset({"engagement_quality.read"})
    with store.engine.connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(sa.text("SELECT * FROM api_keys")))
    assert new.api_key.split(".")[2] not in dump
    assert store.revoke_key(new.key_id).revoked
    assert store.list_keys(account.user_id) == []


def _result(account_id: int, day: dt.date, score: int | None) -> DayResult:
    return DayResult(
        account_id=account_id, day=day, score=score,
        metrics=None if score is None else dict.fromkeys(METRIC_NAMES, score),
        eligibility=Eligibility.ELIGIBLE if score else Eligibility.LOW_VOLUME,
        model_version="v1", computed_at=NOW, counts={"processed_long": 1234},
        rates={"spam_rate": (1, 3)}, explanation={"cap_applied": False})


def test_results_upsert_replaces_and_round_trips_exactly(store):
    account = store.create_account("acme", now=NOW)
    before = store.generations()
    store.upsert_results([_result(account.user_id, DAY, 3)])
    store.upsert_results([_result(account.user_id, DAY, 4),
                          _result(account.user_id, DAY - dt.timedelta(days=1), None)])
    got = store.get_results(account.user_id, DAY - dt.timedelta(days=5), DAY)
    assert got[DAY].score == 4 and got[DAY].rates == {"spam_rate": (1, 3)}
    assert got[DAY].counts == {"processed_long": 1234}
    assert got[DAY - dt.timedelta(days=1)].metrics is None
    assert store.generations()[0] > before[0]
    assert store.get_results_for_accounts([account.user_id, 424242], DAY).keys() == {
        account.user_id}


def test_enqueue_keeps_one_pending_job_per_account_and_day(store):
    account = store.create_account("acme", now=NOW)
    assert store.enqueue_jobs([(account.user_id, DAY)] * 3, now=NOW) == 1
    assert store.enqueue_jobs([(account.user_id, DAY)], now=NOW) == 0
    assert len(store.list_jobs(JobState.PENDING)) == 1


def test_a_job_is_claimed_by_one_worker_only(store):
    account = store.create_account("acme", now=NOW)
    store.enqueue_jobs([(account.user_id, DAY - dt.timedelta(days=i)) for i in range(20)],
                       now=NOW)
    claims: dict[str, list[int]] = {}

    def claim(worker: str) -> None:
        got: list[int] = []
        while batch := store.claim_jobs(worker, 3, now=NOW, lease=LEASE):
            got += [j.job_id for j in batch]
        claims[worker] = got

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for ids in claims.values() for i in ids]
    assert sorted(all_ids) == sorted(set(all_ids)) and len(all_ids) == 20


def test_a_pending_twin_waits_while_its_day_is_being_computed(store):
    account = store.create_account("acme", now=NOW)
    store.enqueue_jobs([(account.user_id, DAY)], now=NOW)
    [running] = store.claim_jobs("w1", 10, now=NOW, lease=LEASE)
    assert store.enqueue_jobs([(account.user_id, DAY)], now=NOW) == 1  # late events
    assert store.claim_jobs("w2", 10, now=NOW, lease=LEASE) == []
    store.complete_jobs([running.job_id], now=NOW)
    [twin] = store.claim_jobs("w2", 10, now=NOW, lease=LEASE)
    assert twin.job_id != running.job_id


def test_an_expired_lease_is_taken_over(store):
    account = store.create_account("acme", now=NOW)
    store.enqueue_jobs([(account.user_id, DAY)], now=NOW)
    [job] = store.claim_jobs("dead", 10, now=NOW, lease=LEASE)
    assert store.claim_jobs("w2", 10, now=NOW + LEASE / 2, lease=LEASE) == []
    [taken] = store.claim_jobs("w2", 10, now=NOW + LEASE * 2, lease=LEASE)
    assert taken.job_id == job.job_id and taken.attempts == 2


def test_a_failed_job_is_retried_after_its_backoff_then_parked(store):
    account = store.create_account("acme", now=NOW)
    store.enqueue_jobs([(account.user_id, DAY)], now=NOW)
    [job] = store.claim_jobs("w", 10, now=NOW, lease=LEASE)
    retry_at = NOW + dt.timedelta(seconds=30)
    store.fail_job(job.job_id, "boom", now=NOW, retry_at=retry_at)
    assert store.claim_jobs("w", 10, now=NOW + dt.timedelta(seconds=29), lease=LEASE) == []
    [again] = store.claim_jobs("w", 10, now=retry_at, lease=LEASE)
    store.fail_job(again.job_id, "boom again", now=retry_at, retry_at=None)
    [parked] = store.list_jobs(JobState.FAILED)
    assert parked.last_error == "boom again" and parked.attempts == 2


def test_counter_compare_and_set_moves_forward_once(store):
    assert store.advance_counter("c", 5)
    assert not store.advance_counter("c", 5)
    assert not store.advance_counter("c", 4)
    assert store.advance_counter("c", 6)
    assert store.counter("c") == 6
