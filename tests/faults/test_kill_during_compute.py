"""SIGKILL of ``seqscore serve`` while its in-process worker computes a backfill.

A data dir holds the events of several accounts and a queue of (account, day) jobs
for a month of days; the server is killed with SIGKILL at random moments while the
worker computes them and while a sender posts more events (late ones among them,
which make stored results stale and queue their recomputation), then started again.
After the last restart the worker finishes by itself: no job is lost, failed or left
``running`` (the jobs a killed worker held are released at once, not after their
lease), every result equals what a clean computation on the same events gives, no
result row is half-written, and every acknowledged event is stored.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

import pytest
from faults_support import (
    CLOSED,
    TEST_NOW,
    Senders,
    Serve,
    demo_plans,
    demo_stream,
    job_states,
    small_batches,
    sqlite_ok,
)

from seqscore.ingest.recipients import load_or_create_recipient_key
from seqscore.ingest.webhook import EventParser
from seqscore.scoring import DEFAULT_MODEL
from seqscore.service.results import compute_results
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore.storage.state import StateStore
from seqscore.types import JobState

pytestmark = pytest.mark.slow

ACCOUNTS = 4
DAYS = 20
KILLS = 5


def test_sigkill_during_computation_loses_no_job_and_no_result(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    data = tmp_path / "data"
    state_db = data / "state.sqlite3"
    server = Serve(data, worker=False, SEQSCORE_INGEST_PROCESSES="0",
                   SEQSCORE_WORKER_BATCH_SIZE="30", SEQSCORE_WORKER_POLL_SECONDS="0.2")
    ids, keys = server.create_senders([plan.username for plan in demo_plans(ACCOUNTS)])
    stream = small_batches(demo_stream(ACCOUNTS, days=DAYS))
    # most of the stream first; the rest (late events included) while the worker computes
    cut = len(stream) * 3 // 4
    server.start()
    early = Senders(lambda: server.url, stream[:cut], keys, threads=2, pause_s=0).start()
    early.join(120)
    assert not early.unexpected and len(early.acknowledged) == cut
    server.kill()

    # a backfill: every account, every day of the month
    days = [CLOSED - dt.timedelta(days=i) for i in range(DAYS)]
    state = StateStore.open(f"sqlite:///{state_db}")
    try:
        queued = state.enqueue_jobs([(i, d) for i in ids.values() for d in days], now=TEST_NOW)
    finally:
        state.close()
    assert queued == ACCOUNTS * DAYS

    # kill the server (worker on) at random moments while it computes
    server.env["SEQSCORE_WORKER"] = "on"
    late = Senders(lambda: server.url, stream[cut:], keys, threads=1, pause_s=0.2)
    held_at_kill = []
    for kill in range(KILLS):
        server.start()
        if kill == 0:
            late.start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.kill()
        states = job_states(state_db)
        held_at_kill.append(states.get(JobState.RUNNING.value, 0))
        assert sqlite_ok(state_db)
        check_every_result_row_reads(state_db)
    # most kills hit a worker in the middle of a batch (jobs claimed, not done)
    assert sum(1 for held in held_at_kill if held) >= 3, held_at_kill

    # the last restart: the worker resumes and finishes by itself
    started = time.monotonic()
    server.start()
    late.join(120)
    assert not late.unexpected, late.unexpected
    deadline = time.monotonic() + 90
    while True:
        states = job_states(state_db)
        busy = states.get(JobState.PENDING.value, 0) + states.get(JobState.RUNNING.value, 0)
        if not busy:
            break
        assert time.monotonic() < deadline, f"jobs stuck after the restart: {states}"
        time.sleep(0.2)
    finished_s = time.monotonic() - started
    server.stop()
    assert set(job_states(state_db)) == {JobState.DONE.value}, job_states(state_db)
    print(f"\nkills: {KILLS}; jobs held by the killed worker at each kill: {held_at_kill}; "
          f"after the last restart every job was done in {finished_s:.1f} s")

    # -- every result, and exactly what a clean computation on the same events gives
    acknowledged = early.acknowledged + late.acknowledged
    assert sorted(acknowledged) == sorted(stream)
    events = DuckDBEventStore(data / "events.duckdb")
    state = StateStore.open(f"sqlite:///{state_db}")
    reference = DuckDBEventStore(tmp_path / "reference.duckdb")
    try:
        parser = EventParser(load_or_create_recipient_key(data))
        sent = set()
        for username, payload in stream:
            table = parser.parse(payload, account_id=ids[username], ingested_at=TEST_NOW).table
            sent.update((ids[username], e) for e in table["event_id"].to_pylist())
        stored = set(events.sql("SELECT DISTINCT account_id, event_id FROM events"))
        assert stored == sent  # every acknowledged event, nothing else

        # the clean computation: on a fresh store holding the same events
        with events.reading() as table:
            reference.append(table.to_pyarrow())
        accounts = [state.get_account(i) for i in ids.values()]
        clean = compute_results(reference, DEFAULT_MODEL,
                                [a for a in accounts if a is not None], days,
                                computed_at=TEST_NOW)
        assert len(clean) == ACCOUNTS * DAYS
        for want in clean:
            got = state.get_results(want.account_id, want.day, want.day)[want.day]
            assert not got.stale, (want.account_id, want.day)
            assert (got.counts, got.rates, got.score, got.metrics, got.eligibility,
                    got.explanation) == (want.counts, want.rates, want.score, want.metrics,
                                         want.eligibility, want.explanation)
        assert sum(r.score is not None for r in clean) >= ACCOUNTS  # scored, not only counted
    finally:
        state.close()
        events.close()
        reference.close()


def check_every_result_row_reads(state_db: Path) -> None:
    """Every stored result row is whole: each of its JSON columns parses."""
    state = StateStore.open(f"sqlite:///{state_db}")
    try:
        for account in state.list_accounts():
            for result in state.get_results(account.user_id, dt.date(2000, 1, 1),
                                            dt.date(2100, 1, 1)).values():
                assert result.counts and result.explanation is not None
    finally:
        state.close()
