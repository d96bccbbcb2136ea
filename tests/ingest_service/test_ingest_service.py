"""IngestService: idempotency through the real aggregation, staleness, the quarantine."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_service_support import CLOSED, TODAY, body, demo_plans, demo_stream, event, recut

from seqscore.errors import NotFound
from seqscore.ingest.body import BodyError
from seqscore.ingest.sealing import QuarantineKeyError, Sealer
from seqscore.service.ingest import (
    POOL_MIN_BODY_BYTES,
    open_quarantined,
    quarantine_sealer,
    stale_ranges,
    unique_events,
)
from seqscore.service.results import compute_results
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import JobState
from seqscore_testing import World

D = dt.date


def counts_of(services, accounts, days):
    results = compute_results(services.events, services.model, accounts, days,
                              computed_at=services.clock.now())
    return {(r.account_id, r.day): dict(r.counts) for r in results}


# -- idempotency --------------------------------------------------------------------------------


def test_repeated_and_reordered_batches_never_change_a_count(services, world):
    """Whatever is retried, re-cut or reordered, the real aggregation counts each event once."""
    stream = demo_stream()
    accounts = {p.username: world.account(p.username) for p in demo_plans()}
    ingest = services.ingest
    for username, events in stream:
        ingest.ingest(accounts[username], body(*events))
    days = [CLOSED - dt.timedelta(days=i) for i in range(12)]
    before = counts_of(services, list(accounts.values()), days)
    assert sum(c["delivered_long"] for c in before.values()) > 1000
    distinct = services.events.sql(
        "SELECT count(DISTINCT (account_id, event_id)) FROM events")[0][0]

    rng = random.Random(7)
    retried = stream[:]
    rng.shuffle(retried)
    for username, events in retried:  # whole batches again, in another order
        report = ingest.ingest(accounts[username], body(*events))
        assert (report.accepted, report.duplicates) == (0, len(events))
    for username, payload in recut(stream, seed=3):  # the same events in other batches
        ingest.ingest(accounts[username], payload)
    assert counts_of(services, list(accounts.values()), days) == before
    assert services.events.count() > distinct  # copies from the re-cut batches...
    services.events.compact()
    assert services.events.count() == distinct  # ...until compaction
    assert counts_of(services, list(accounts.values()), days) == before


def test_a_body_that_is_not_an_array_stores_nothing(services, world):
    acme = world.account("acme")
    with pytest.raises(BodyError):
        services.ingest.ingest(acme, b'{"event": "delivered"}')
    assert services.events.count() == 0


@settings(deadline=None)  # the machine is shared: a first call may be slow
@given(st.lists(st.sampled_from("abcdefgh"), max_size=40))
def test_unique_events_keeps_each_first_copy_in_order(event_ids):
    table = pa.table({"event_id": pa.array(event_ids, pa.string()),
                      "row": pa.array(range(len(event_ids)), pa.int64())})
    kept, dropped = unique_events(table)
    first = {}
    for row, event_id in enumerate(event_ids):
        first.setdefault(event_id, row)
    assert kept["row"].to_pylist() == sorted(first.values())
    assert dropped == len(event_ids) - len(first)


# -- staleness ----------------------------------------------------------------------------------


def test_stale_ranges_merge_and_clip_at_the_last_closed_day():
    assert stale_ranges([D(2026, 11, 10)], window_days=3, last_closed=D(2026, 11, 19)) == [
        (D(2026, 11, 10), D(2026, 11, 12))]
    assert stale_ranges([D(2026, 11, 1), D(2026, 11, 4), D(2026, 11, 3)], window_days=3,
                        last_closed=D(2026, 11, 19)) == [(D(2026, 11, 1), D(2026, 11, 6))]
    assert stale_ranges([D(2026, 11, 1), D(2026, 11, 10)], window_days=3,
                        last_closed=D(2026, 11, 19)) == [
        (D(2026, 11, 1), D(2026, 11, 3)), (D(2026, 11, 10), D(2026, 11, 12))]
    assert stale_ranges([D(2026, 11, 18), D(2026, 11, 20)], window_days=90,
                        last_closed=D(2026, 11, 19)) == [(D(2026, 11, 18), D(2026, 11, 19))]
    assert stale_ranges([D(2026, 11, 20)], window_days=90, last_closed=D(2026, 11, 19)) == []
    assert stale_ranges([], window_days=90, last_closed=D(2026, 11, 19)) == []


def test_late_events_mark_the_results_they_change_stale_and_queue_a_few_jobs(services, world):
    acme, other = world.account("acme"), world.account("other")
    first_result = D(2026, 8, 1)
    result_days = [first_result + dt.timedelta(days=i)
                   for i in range((CLOSED - first_result).days + 1)]
    for day in result_days:
        world.result(acme, day)
        world.result(other, day)
    first_late = D(2026, 11, 10)
    batch = [event(n, day=first_late if n % 2 else D(2026, 11, 12)) for n in range(2500)]
    report = services.ingest.ingest(acme, body(*batch))
    assert report.accepted == 2500
    pending = services.state.list_jobs(JobState.PENDING)
    # days 11-10 .. 11-19 (all closed, all with a result): ten jobs, not 2,500
    assert sorted(j.day for j in pending) == [first_late + dt.timedelta(days=i)
                                              for i in range(10)]
    assert {j.account_id for j in pending} == {acme.user_id}
    assert report.jobs_queued == 10
    stored = services.state.get_results(acme.user_id, result_days[0], CLOSED)
    assert {d for d, r in stored.items() if r.stale} == {j.day for j in pending}
    assert not any(r.stale for r in services.state.get_results(
        other.user_id, result_days[0], CLOSED).values())
    again = services.ingest.ingest(acme, body(*batch))  # a retry queues nothing new
    assert again.jobs_queued == 0
    assert len(services.state.list_jobs(JobState.PENDING)) == 10


def test_an_old_event_reaches_ninety_days_of_results(services, world):
    acme = world.account("acme")
    for i in range(120):
        world.result(acme, CLOSED - dt.timedelta(days=i))
    old = CLOSED - dt.timedelta(days=100)
    services.ingest.ingest(acme, body(event(1, day=old)))
    days = sorted(j.day for j in services.state.list_jobs(JobState.PENDING))
    window = services.model.engagement_window_days
    assert days == [old + dt.timedelta(days=i) for i in range(window)]


def test_todays_events_queue_nothing(services, world):
    acme = world.account("acme")
    world.result(acme, CLOSED)
    report = services.ingest.ingest(acme, body(*(event(n, day=TODAY) for n in range(50))))
    assert report.jobs_queued == 0
    assert services.state.list_jobs() == []


def test_late_events_without_stored_results_queue_nothing(services, world):
    """Closed days without a result are queued by the scheduler (or a 202) anyway."""
    acme = world.account("acme")
    services.ingest.ingest(acme, body(event(1, day=CLOSED - dt.timedelta(days=3))))
    assert services.state.list_jobs() == []


def test_a_running_job_gets_a_pending_successor_for_late_events(services, world):
    acme = world.account("acme")
    world.result(acme, CLOSED)
    services.state.enqueue_jobs([(acme.user_id, CLOSED)], now=services.clock.now())
    (running,) = services.state.claim_jobs("w", 10, now=services.clock.now(),
                                           lease=dt.timedelta(minutes=5))
    services.ingest.ingest(acme, body(event(1, day=CLOSED)))
    (pending,) = services.state.list_jobs(JobState.PENDING)
    assert (pending.day, pending.job_id != running.job_id) == (CLOSED, True)


# -- the quarantine -----------------------------------------------------------------------------


def test_rejects_are_kept_whole_but_sealed(services, world):
    acme = world.account("acme")
    bad = b'{"email":"Secret.Person@Example.org","event":"delivered","timestamp":"later"}'
    report = services.ingest.ingest(acme, b"[" + bad + b"]")
    assert report.rejected == 1
    (kept,) = services.state.list_quarantined()
    assert b"Secret.Person" not in kept.sealed_payload
    assert kept.reason == 'unparsable "timestamp": "later"'
    sealer = quarantine_sealer(services.settings)
    again, raw = open_quarantined(services.state, sealer, kept.quarantine_id)
    assert raw == bad and again == kept


def test_the_quarantine_key_is_a_separate_0600_file(services, world):
    acme = world.account("acme")
    services.ingest.ingest(acme, body({"event": "x"}))
    data = services.settings.data_dir
    key_file = data / "quarantine-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes() != (data / "recipient-key").read_bytes()


def test_a_sealed_payload_opens_only_for_its_account_and_key():
    sealer = Sealer(bytes(range(32)))
    sealed = sealer.seal(b"payload", account_id=1)
    assert sealer.unseal(sealed, account_id=1) == b"payload"
    assert sealer.seal(b"payload", account_id=1) != sealed  # a fresh nonce each time
    with pytest.raises(QuarantineKeyError):
        sealer.unseal(sealed, account_id=2)
    with pytest.raises(QuarantineKeyError):
        Sealer(bytes(32)).unseal(sealed, account_id=1)
    assert sealer.digest(b"p", account_id=1) == sealer.digest(b"p", account_id=1)
    assert sealer.digest(b"p", account_id=1) != sealer.digest(b"p", account_id=2)


def test_showing_an_unknown_quarantine_id_is_not_found(services):
    with pytest.raises(NotFound):
        open_quarantined(services.state, quarantine_sealer(services.settings), 12345)


# -- the installation's provider table -------------------------------------------------------


@pytest.mark.parametrize("processes", [0, 1], ids=["in-process", "parser-process"])
def test_a_model_that_extends_the_provider_table_applies_to_stored_events(
        tmp_path, clock, processes):
    """spec/events.md: the provider table is a setting an installation can extend. The
    model's ``[providers]`` reach the parser, in this process and in the parser
    processes (bodies of 64 KiB and more are parsed there)."""
    model = tmp_path / "model.toml"
    model.write_text('version = "v1-proton"\n'
                     '[providers]\n"proton.me" = "proton"\n"pm.me" = "proton"\n')
    settings = Settings(data_dir=tmp_path / "data", worker=False, model=model,
                        ingest_processes=processes)
    services = Services.open(settings, clock=clock)
    try:
        account = World(services).account("shop")
        domains = ["proton.me", "pm.me", "gmail.com", "example.org"]
        events = [event(n, email=f"person{n}@{domains[n % 4]}", sg_event_id=f"pv-{n:05d}")
                  for n in range(600)]
        payload = body(*events)
        assert len(payload) >= POOL_MIN_BODY_BYTES  # parsed in a parser process, if any
        report = services.ingest.ingest(account, payload)
        assert report.accepted == 600
        stored = dict(services.events.sql(
            "SELECT domain, any_value(provider) FROM events GROUP BY domain"))
    finally:
        services.close()
    assert stored == {"proton.me": "proton", "pm.me": "proton", "gmail.com": "gmail",
                      "example.org": "example.org"}
