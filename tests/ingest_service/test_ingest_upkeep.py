"""The scheduler's ingest duties: compaction of copies, retention of events, batch keys and
the quarantine; and the group committer."""

from __future__ import annotations

import datetime as dt
import threading

import pyarrow as pa
import pytest
from click.testing import CliRunner
from ingest_service_support import CLOSED, body, event

from seqscore.cli import main
from seqscore.errors import ConfigurationError, Unavailable
from seqscore.service.committer import GroupCommitter
from seqscore.service.schedule import Retention, Scheduler
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.storage.events import AppendOutcome


def scheduler(services, *, compact_minutes: int = 60) -> Scheduler:
    s = services.settings
    return Scheduler(services.state, services.events, services.clock,
                     settle_minutes=s.settle_minutes,
                     retention=Retention(s.results_retention_days, s.events_retention_days,
                                         s.quarantine_retention_days,
                                         s.batch_keys_retention_days),
                     compact_minutes=compact_minutes)


def test_the_scheduler_compacts_copies_every_interval(services, world, clock):
    acme = world.account("acme")
    ingest = services.ingest
    ingest.ingest(acme, body(event(1), event(2)))
    tick = scheduler(services)
    tick.compact_events()  # the first pass
    ingest.ingest(acme, body(event(2), event(3)))  # event 2 again, in another batch
    assert services.events.count() == 4
    clock.advance(dt.timedelta(minutes=30))
    assert tick.compact_events() == 0  # not due yet
    clock.advance(dt.timedelta(minutes=31))
    assert tick.compact_events() == 1
    assert services.events.count() == 3
    assert tick.compact_events() == 0  # done for this interval


def test_compaction_can_be_switched_off(services, world):
    acme = world.account("acme")
    services.ingest.ingest(acme, body(event(1)))
    services.ingest.ingest(acme, body(event(1), event(2)))
    assert scheduler(services, compact_minutes=0).compact_events() == 0
    assert services.events.count() == 3


def test_retention_deletes_old_quarantine_and_forgets_old_batch_keys(services, world, clock):
    acme = world.account("acme")
    ingest = services.ingest
    old_batch = body(event(1), {"event": "broken"})
    ingest.ingest(acme, old_batch)
    clock.advance(dt.timedelta(days=20))
    ingest.ingest(acme, body(event(2), {"event": "also broken"}))
    clock.advance(dt.timedelta(days=11))  # the first batch is 31 days old, the second 11
    scheduler(services).apply_retention()
    assert [q.reason for q in services.state.list_quarantined()] == [
        'unknown event type "also broken"']
    assert ingest.ingest(acme, old_batch).accepted == 1  # forgotten: stored again...
    assert services.events.sql("SELECT count(*) FROM batches")[0][0] == 1


def test_retention_deletes_events_older_than_the_setting(services, world, clock):
    acme = world.account("acme")
    keep_days = services.settings.events_retention_days
    too_old = clock.now().date() - dt.timedelta(days=keep_days + 1)
    services.ingest.ingest(acme, body(event(1, day=too_old), event(2, day=CLOSED)))
    scheduler(services).apply_retention()
    assert [r[0] for r in services.events.sql("SELECT event_id FROM events")] == ["ev-0000002"]


# -- the group committer ------------------------------------------------------------------------


class SlowStore:
    """An event store stand-in that records its transactions and can fail."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.release = threading.Event()
        self.fail = False

    def append_many(self, batches):
        self.release.wait(5)
        if self.fail:
            raise RuntimeError("disk full")
        self.groups.append(len(batches))
        return [AppendOutcome(t.num_rows) for t, _ in batches]


def table(n: int) -> pa.Table:
    return pa.table({"x": list(range(n))})


def test_batches_queued_during_a_commit_go_into_one_transaction():
    store = SlowStore()
    committer = GroupCommitter(store)  # type: ignore[arg-type]
    outcomes: list[AppendOutcome] = []
    threads = [threading.Thread(target=lambda: outcomes.append(committer.append(table(3))))
               for _ in range(6)]
    threads[0].start()
    while committer._thread is None:
        pass
    for t in threads[1:]:
        t.start()
    store.release.set()
    for t in threads:
        t.join()
    committer.close()
    assert sum(store.groups) == 6 and len(store.groups) < 6
    assert [o.stored for o in outcomes] == [3] * 6


def test_a_failed_transaction_fails_every_batch_in_it_and_the_next_succeed():
    store = SlowStore()
    store.release.set()
    store.fail = True
    committer = GroupCommitter(store)  # type: ignore[arg-type]
    with pytest.raises(Unavailable, match="the event store failed: disk full"):
        committer.append(table(1))
    store.fail = False
    assert committer.append(table(2)).stored == 2
    committer.close()


def test_after_close_appends_are_refused():
    committer = GroupCommitter(SlowStore())  # type: ignore[arg-type]
    committer.close()
    with pytest.raises(Unavailable):
        committer.append(table(1))


# -- retention against the model's windows ---------------------------------------------------


def test_retention_within_the_longest_window_stops_everything_from_starting(tmp_path, clock):
    """Events inside the model's longest window are still counted: a retention that would
    delete them is refused at start, naming the setting and the window."""
    data = tmp_path / "data"
    with pytest.raises(ConfigurationError, match=r"EVENTS_RETENTION_DAYS=90 .* = 90 days"):
        Services.open(Settings(data_dir=data, worker=False, events_retention_days=90),
                      clock=clock)
    assert not data.exists()  # refused before anything was created
    Services.open(Settings(data_dir=data, worker=False, events_retention_days=91),
                  clock=clock).close()

    model = tmp_path / "model.toml"
    model.write_text('version = "v1-long"\nengagement_window_days = 150\n')
    with pytest.raises(ConfigurationError, match=r"=120 .* = 150 days"):
        Services.open(Settings(data_dir=data, worker=False, model=model), clock=clock)


def test_the_cli_says_why_a_retention_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["accounts", "list"], env={
        "SEQSCORE_DATA_DIR": str(tmp_path / "data"), "SEQSCORE_EVENTS_RETENTION_DAYS": "30"})
    assert result.exit_code == 1
    assert "SEQSCORE_EVENTS_RETENTION_DAYS=30 would delete events" in result.output
    assert "Traceback" not in result.output
