"""The dashboard's overview: a parent's accounts for one day, scored, sorted and filtered.

One account's page is ``account_page``. Both the HTML pages and their JSON
twins (``/api/v1/dashboard/...``) call these functions and show exactly what
they return. Like the SEQ API they read stored results only and queue what is
missing for a closed day (``queued_jobs``); unlike it they answer at once with
what exists, marking the rest ``not_computed`` instead of answering 202.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seqscore.clock import Clock
from seqscore.errors import FieldError, InvalidInput
from seqscore.service.seq import last_closed_day
from seqscore.service.seq_params import parse_page
from seqscore.storage.state import StateStore
from seqscore.types import METRIC_NAMES, Account, Day, DayResult

SORT_KEYS: tuple[str, ...] = ("score", *METRIC_NAMES, "volume", "username", "user_id")
ORDERS = ("asc", "desc")
MAX_QUERY_CHARS = 100


class RowStatus(StrEnum):
    SCORED = "scored"
    INELIGIBLE = "ineligible"
    NOT_COMPUTED = "not_computed"


STATUS_FILTERS: tuple[str, ...] = ("all", *RowStatus)


@dataclass(frozen=True, slots=True)
class AccountRef:
    user_id: int
    username: str
    #: "parent" (top level), "subuser" or "customer"
    kind: str


def account_ref(account: Account) -> AccountRef:
    kind = "parent" if account.parent_id is None else account.kind.value
    return AccountRef(account.user_id, account.username, kind)


@dataclass(frozen=True, slots=True)
class OverviewQuery:
    """Sort and filter of the overview; the defaults list the worst scores first."""

    sort: str = "score"
    order: str = "asc"
    #: case-insensitive part of a username, or an exact user_id
    q: str = ""
    status: str = "all"
    #: only scored accounts at or below this score
    max_score: int | None = None


@dataclass(frozen=True, slots=True)
class OverviewRow:
    account: AccountRef
    status: RowStatus
    #: None unless scored
    score: int | None
    metrics: dict[str, int] | None
    #: "eligible", "low_volume", "open_tracking_off"; None when not computed
    eligibility: str | None
    #: processed messages of the long window (30 days by default); None when not computed
    volume: int | None
    #: events arrived after the result was computed; a recomputation is due
    stale: bool


@dataclass(frozen=True, slots=True)
class OverviewData:
    viewer: AccountRef
    day: Day
    last_closed_day: Day
    #: the oldest day that may be asked for
    first_day: Day
    closed: bool
    query: OverviewQuery
    #: accounts before filtering
    total_accounts: int
    #: before filtering: "1".."5", "ineligible", "not_computed" -> accounts
    summary: dict[str, int]
    #: computations queued by this request (0 when already queued or nothing missing)
    queued_jobs: int
    rows: list[OverviewRow]


def parse_day(raw: str | None, *, clock: Clock, settle_minutes: int, history_days: int) -> Day:
    """The ``date`` parameter, by the SEQ API's rules; absent or empty: the last closed day."""
    if not raw:
        return last_closed_day(clock.now(), settle_minutes)
    return parse_page({"date": raw}, today=clock.now().date(), history_days=history_days,
                      limit_max=1).day


def parse_overview_query(params: Mapping[str, str]) -> OverviewQuery:
    """``sort``, ``order``, ``q``, ``status`` and ``max_score``; raises ``InvalidInput``."""
    errors: list[FieldError] = []

    def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
        value = params.get(name) or default
        if value not in allowed:
            errors.append(FieldError(name, f'"{name}" must be one of: {", ".join(allowed)}'))
            return default
        return value

    sort = choice("sort", SORT_KEYS, "score")
    order = choice("order", ORDERS, "asc")
    status = choice("status", STATUS_FILTERS, "all")
    q = (params.get("q") or "").strip()
    if len(q) > MAX_QUERY_CHARS:
        errors.append(FieldError("q", f'"q" must be at most {MAX_QUERY_CHARS} characters'))
    max_score: int | None = None
    raw_max = params.get("max_score") or ""
    if raw_max:
        if raw_max in {"1", "2", "3", "4", "5"}:
            max_score = int(raw_max)
        else:
            errors.append(FieldError("max_score", '"max_score" must be 1, 2, 3, 4 or 5'))
    if errors:
        raise InvalidInput(errors)
    return OverviewQuery(sort, order, q, status, max_score)


def overview(state: StateStore, clock: Clock, viewer: Account, day: Day,
             query: OverviewQuery = OverviewQuery(), *, settle_minutes: int,
             history_days: int) -> OverviewData:
    """Every child of ``viewer`` (itself when it has none, or is a child) for ``day``.

    Accounts without a stored result for a closed day are queued, like the SEQ
    API's 202, and listed as ``not_computed``. ``query`` sorts and filters the
    rows; accounts without a value for the sort column always come last.
    """
    accounts = state.list_children(viewer.user_id) if viewer.parent_id is None else []
    accounts = accounts or [viewer]
    closed_day = last_closed_day(clock.now(), settle_minutes)
    closed = day <= closed_day
    found = state.get_results_for_accounts([a.user_id for a in accounts], day) if closed else {}
    queued = 0
    missing = [(a.user_id, day) for a in accounts if a.user_id not in found]
    if closed and missing:
        queued = state.enqueue_jobs(missing, now=clock.now())
    rows = [_row(a, found.get(a.user_id)) for a in accounts]
    return OverviewData(
        viewer=account_ref(viewer), day=day, last_closed_day=closed_day,
        first_day=clock.now().date() - dt.timedelta(days=history_days), closed=closed,
        query=query, total_accounts=len(rows), summary=_summary(rows), queued_jobs=queued,
        rows=sort_rows(filter_rows(rows, query), query),
    )


def _row(account: Account, result: DayResult | None) -> OverviewRow:
    ref = account_ref(account)
    if result is None:
        return OverviewRow(ref, RowStatus.NOT_COMPUTED, None, None, None, None, False)
    return OverviewRow(ref, row_status(result), result.score,
                       dict(result.metrics) if result.metrics is not None else None,
                       result.eligibility.value, result.counts.get("processed_long"),
                       result.stale)


def row_status(result: DayResult) -> RowStatus:
    scored = result.score is not None and result.metrics is not None
    return RowStatus.SCORED if scored else RowStatus.INELIGIBLE


def _summary(rows: list[OverviewRow]) -> dict[str, int]:
    summary = {str(score): 0 for score in range(1, 6)}
    summary.update({RowStatus.INELIGIBLE.value: 0, RowStatus.NOT_COMPUTED.value: 0})
    for row in rows:
        summary[str(row.score) if row.score is not None else row.status.value] += 1
    return summary


def filter_rows(rows: list[OverviewRow], query: OverviewQuery) -> list[OverviewRow]:
    """The rows matching every filter of ``query``."""
    needle = query.q.casefold()

    def keep(row: OverviewRow) -> bool:
        if needle and needle not in row.account.username.casefold() and (
                needle != str(row.account.user_id)):
            return False
        if query.status != "all" and row.status.value != query.status:
            return False
        return query.max_score is None or (row.score is not None
                                           and row.score <= query.max_score)

    return [row for row in rows if keep(row)]


def _metric_value(metric: str) -> Callable[[OverviewRow], Any]:
    return lambda r: None if r.metrics is None else (r.metrics[metric], r.score)


#: sort column -> the row's value for it (None: no value, listed last)
_SORT_VALUE: dict[str, Callable[[OverviewRow], Any]] = {
    "score": lambda r: None if r.metrics is None else (r.score, min(r.metrics.values())),
    **{metric: _metric_value(metric) for metric in METRIC_NAMES},
    "volume": lambda r: r.volume,
    "username": lambda r: r.account.username.casefold(),
    "user_id": lambda r: r.account.user_id,
}
#: rows without a value: not computed before ineligible, then by username
_STATUS_RANK = {RowStatus.NOT_COMPUTED: 0, RowStatus.INELIGIBLE: 1, RowStatus.SCORED: 2}


def sort_rows(rows: list[OverviewRow], query: OverviewQuery) -> list[OverviewRow]:
    """Rows by ``query.sort`` in ``query.order``; ties by username (ascending either way).

    Score sorts break ties by the lowest metric score, metric sorts by the score.
    """
    by_name = sorted(rows, key=lambda r: (r.account.username.casefold(), r.account.user_id))
    value = _SORT_VALUE[query.sort]
    valued = [r for r in by_name if value(r) is not None]
    unvalued = [r for r in by_name if value(r) is None]
    valued.sort(key=value, reverse=query.order == "desc")  # stable: name order kept in ties
    unvalued.sort(key=lambda r: _STATUS_RANK[r.status])
    return valued + unvalued
