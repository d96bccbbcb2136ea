"""The two SEQ use cases: an account's scores over days, a parent's children for a day.

They answer from stored results only (the API never scans events) and queue
what is missing. ``Accepted`` means "202: queued, ask again later".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from seqscore.clock import Clock
from seqscore.storage.state import StateStore
from seqscore.types import METRIC_NAMES, Account, Day, DayResult

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Accepted:
    """Some result is not computed yet; what was missing has been queued."""

    queued_jobs: int


@dataclass(frozen=True, slots=True)
class ScoreEntries:
    entries: list[dict[str, Any]]
    #: user_id of the last entry when more entries remain (subusers page only)
    next_after_key: str | None = None


def last_closed_day(now: dt.datetime, settle_minutes: int) -> Day:
    """The newest UTC day D whose end plus the settle delay has passed at ``now``.

    Day D closes at (D + 1) 00:00 UTC + ``settle_minutes``: with the default 60,
    2026-11-20 is closed from 2026-11-21 01:00:00 UTC on.
    """
    return (now - dt.timedelta(minutes=settle_minutes)).date() - ONE_DAY


def seq_entry(account: Account, day: Day, result: DayResult | None) -> dict[str, Any]:
    """One SEQ score entry; ineligible accounts get no ``score`` and no ``metrics``."""
    entry: dict[str, Any] = {
        "user_id": str(account.user_id),
        "username": account.username,
        "date": day.isoformat(),
    }
    if result is not None and result.score is not None and result.metrics is not None:
        entry["score"] = result.score
        entry["metrics"] = {name: result.metrics[name] for name in METRIC_NAMES}
    return entry


class SeqService:
    def __init__(self, state: StateStore, clock: Clock, *, settle_minutes: int) -> None:
        self._state = state
        self._clock = clock
        self._settle_minutes = settle_minutes

    def today(self) -> Day:
        return self._clock.now().date()

    def last_closed_day(self) -> Day:
        return last_closed_day(self._clock.now(), self._settle_minutes)

    def account_scores(self, account: Account, first: Day, last: Day) -> ScoreEntries | Accepted:
        """Scores of ``account`` for each closed day in [first, last], oldest first."""
        closed_last = min(last, self.last_closed_day())
        if closed_last < first:
            return Accepted(0)
        found = self._state.get_results(account.user_id, first, closed_last)
        days = [first + ONE_DAY * i for i in range((closed_last - first).days + 1)]
        missing = [(account.user_id, d) for d in days if d not in found]
        if missing:
            return Accepted(self._state.enqueue_jobs(missing, now=self._clock.now()))
        return ScoreEntries([seq_entry(account, d, found[d]) for d in days])

    def children_scores(
        self, parent: Account, day: Day, *, limit: int, after_user_id: int | None
    ) -> ScoreEntries | Accepted:
        """One page of a parent's children's scores for ``day``, by numeric user_id."""
        children = self._state.list_children(
            parent.user_id, after_user_id=after_user_id, limit=limit + 1
        )
        page, more = children[:limit], len(children) > limit
        if day > self.last_closed_day():
            return Accepted(0)
        found = self._state.get_results_for_accounts([c.user_id for c in page], day)
        missing = [(c.user_id, day) for c in page if c.user_id not in found]
        if missing:
            return Accepted(self._state.enqueue_jobs(missing, now=self._clock.now()))
        entries = [seq_entry(c, day, found[c.user_id]) for c in page]
        return ScoreEntries(entries, str(page[-1].user_id) if more and page else None)
