"""Daily duties: queue each newly closed day for every account, and apply retention;
and a frequent one: compact the event store (remove copies of events posted twice).

Runs inside every worker; a compare-and-set on a counter in the state store
makes each day's scheduling happen once however many workers run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from seqscore.clock import Clock
from seqscore.service.seq import last_closed_day
from seqscore.storage.events import EventStore
from seqscore.storage.state import StateStore

log = logging.getLogger("seqscore.schedule")

SCHEDULED_THROUGH = "scheduled_through_day"  # proleptic ordinal of the last day queued
RETAINED_ON = "retention_applied_day"
COMPACTED_AT = "events_compacted_at"  # Unix seconds of the last compaction pass
#: A compaction pass also looks at events ingested this long before the last pass
#: began (a batch stamped before it may have committed after it).
COMPACT_OVERLAP = dt.timedelta(minutes=10)
#: After downtime, at most this many missed closed days are queued at once.
CATCH_UP_DAYS = 7


@dataclass(frozen=True, slots=True)
class Retention:
    results_days: int
    events_days: int
    quarantine_days: int
    batch_keys_days: int = 7


class Scheduler:
    def __init__(self, state: StateStore, events: EventStore, clock: Clock, *,
                 settle_minutes: int, retention: Retention, compact_minutes: int = 0) -> None:
        self._state = state
        self._events = events
        self._clock = clock
        self._settle_minutes = settle_minutes
        self._retention = retention
        self._compact_minutes = compact_minutes

    def tick(self) -> int:
        """Do whatever is due now; returns how many jobs were queued."""
        queued = self.queue_closed_days()
        self.apply_retention()
        self.compact_events()
        return queued

    def queue_closed_days(self) -> int:
        now = self._clock.now()
        closed = last_closed_day(now, self._settle_minutes)
        previous = self._state.counter(SCHEDULED_THROUGH)
        if previous is not None and previous >= closed.toordinal():
            return 0
        if not self._state.advance_counter(SCHEDULED_THROUGH, closed.toordinal()):
            return 0  # another worker took this day
        first = closed if previous is None else max(
            dt.date.fromordinal(previous) + dt.timedelta(days=1),
            closed - dt.timedelta(days=CATCH_UP_DAYS - 1))
        days = [first + dt.timedelta(days=i) for i in range((closed - first).days + 1)]
        account_ids = [a.user_id for a in self._state.list_accounts()]
        queued = self._state.enqueue_jobs(
            [(a, d) for a in account_ids for d in days], now=now)
        log.info("queued %d jobs for %s..%s", queued, days[0], days[-1])
        return queued

    def apply_retention(self) -> None:
        today = self._clock.now().date()
        if not self._state.advance_counter(RETAINED_ON, today.toordinal()):
            return
        r = self._retention
        results = self._state.delete_results_before(today - dt.timedelta(days=r.results_days))
        events = self._events.delete_before(today - dt.timedelta(days=r.events_days))
        jobs = self._state.purge_done_jobs(self._clock.now() - dt.timedelta(days=7))
        rejects = self._state.delete_quarantined_before(
            self._clock.now() - dt.timedelta(days=r.quarantine_days))
        batches = self._events.forget_batches_before(
            self._clock.now() - dt.timedelta(days=r.batch_keys_days))
        log.info("retention: deleted %d results, %d events, %d finished jobs, %d quarantined "
                 "events, %d batch keys", results, events, jobs, rejects, batches)

    def compact_events(self) -> int:
        """Every ``compact_minutes``: remove copies of events among the days that
        received events since the last pass (once however many workers run).
        Returns how many copies were removed."""
        if self._compact_minutes <= 0:
            return 0
        now = self._clock.now()
        now_s = int(now.timestamp())
        last = self._state.counter(COMPACTED_AT)
        if last is not None and now_s - last < self._compact_minutes * 60:
            return 0
        if not self._state.advance_counter(COMPACTED_AT, now_s):
            return 0
        since = (now - dt.timedelta(days=1) if last is None
                 else dt.datetime.fromtimestamp(last, dt.UTC)) - COMPACT_OVERLAP
        removed = self._events.compact(ingested_since=since)
        if removed:
            log.info("compaction: removed %d copies of events", removed)
        return removed
