"""The dashboard's use cases: a parent's accounts for one day, one account's last 90 days.

Both the HTML pages and their JSON twins (``/api/v1/dashboard/...``) call these
functions and show exactly what they return. Like the SEQ API they read stored
results only and queue what is missing for a closed day (``queued_jobs``);
unlike it they answer at once with what exists, marking the rest
``not_computed`` instead of answering 202.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

from seqscore.clock import Clock
from seqscore.errors import FieldError, Forbidden, InvalidInput
from seqscore.scoring.exact import exact_text
from seqscore.service.auth import MSG_FORBIDDEN
from seqscore.service.seq import ONE_DAY, last_closed_day
from seqscore.service.seq_params import parse_page
from seqscore.storage.state import StateStore
from seqscore.types import METRIC_NAMES, Account, Day, DayResult

#: Days shown on an account's page, ending with the chosen day.
ACCOUNT_PAGE_DAYS = 90
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
    return OverviewRow(ref, _status(result), result.score,
                       dict(result.metrics) if result.metrics is not None else None,
                       result.eligibility.value, result.counts.get("processed_long"),
                       result.stale)


def _status(result: DayResult) -> RowStatus:
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


def account_in_view(state: StateStore, viewer: Account, username: str) -> Account:
    """``viewer`` itself or one of its children, by username; else ``Forbidden``.

    An unknown name and another parent's account answer alike, as on-behalf-of does.
    """
    account = state.get_account_by_username(username)
    if account is None or (account.user_id != viewer.user_id
                           and account.parent_id != viewer.user_id):
        raise Forbidden(MSG_FORBIDDEN)
    return account


# ------------------------------------------------------------------- account page


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    day: Day
    status: RowStatus
    score: int | None
    metrics: dict[str, int] | None
    eligibility: str | None
    volume: int | None


@dataclass(frozen=True, slots=True)
class Candidate:
    measure: str
    available: bool
    chosen: bool
    rate_pct: str
    numerator: int | None
    denominator: int | None


@dataclass(frozen=True, slots=True)
class MetricExplanation:
    metric: str
    score: int | None
    #: the chosen measure's rate in percent, as text ("0.1"; rounded when it does not end)
    rate_pct: str
    rate_pct_exact: bool
    numerator: int | None
    denominator: int | None
    measure: str
    rule: str
    #: "lower_is_better" or "higher_is_better"
    direction: str
    #: percent edges of scores 5, 4, 3, 2
    band_edges_pct: list[str]
    weight: str
    candidates: list[Candidate]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The stored explanation of one result, in the shape the page shows it."""

    model_version: str
    eligibility: str
    eligibility_reasons: list[str]
    open_tracking: bool | None
    min_messages: int | None
    windows_days: dict[str, int]
    metrics: list[MetricExplanation]
    weighted_mean: str | None
    rounded: int | None
    lowest_metric_score: int | None
    cap: int | None
    cap_applied: bool | None
    score: int | None


@dataclass(frozen=True, slots=True)
class EventMix:
    """Event counts of the long window the result was computed from."""

    window_days: int
    processed: int
    delivered: int
    #: invalid-address plus block bounces
    bounces: int
    invalid_bounces: int
    block_bounces: int
    spam_reports: int
    #: distinct messages with a human open
    unique_opens: int


@dataclass(frozen=True, slots=True)
class AccountHistory:
    viewer: AccountRef
    account: AccountRef
    #: the chosen day: the newest day of the history
    day: Day
    first_day: Day
    last_closed_day: Day
    #: one point per day, oldest first, uncomputed days included
    points: list[HistoryPoint]
    #: the newest computed day of the history (the chosen day when it is computed)
    explained_day: Day | None
    explanation: Explanation | None
    event_mix: EventMix | None
    queued_jobs: int


def account_history(state: StateStore, clock: Clock, viewer: Account, account: Account,
                    day: Day, *, settle_minutes: int, history_days: int,
                    days: int = ACCOUNT_PAGE_DAYS) -> AccountHistory:
    """``account``'s results for the ``days`` days ending with ``day``, and the newest
    one's explanation and event mix.

    Missing closed days no older than ``history_days`` (the days the SEQ API
    answers for) are queued; older ones are shown as not computed.
    """
    first = day - ONE_DAY * (days - 1)
    closed_day = last_closed_day(clock.now(), settle_minutes)
    oldest_queued = clock.now().date() - dt.timedelta(days=history_days)
    found = state.get_results(account.user_id, first, min(day, closed_day))
    every_day = [first + ONE_DAY * i for i in range(days)]
    missing = [(account.user_id, d) for d in every_day
               if oldest_queued <= d <= closed_day and d not in found]
    queued = state.enqueue_jobs(missing, now=clock.now()) if missing else 0
    points = [_point(d, found.get(d)) for d in every_day]
    newest = max(found) if found else None
    latest = found[newest] if newest is not None else None
    return AccountHistory(
        viewer=account_ref(viewer), account=account_ref(account), day=day, first_day=first,
        last_closed_day=closed_day, points=points, explained_day=newest,
        explanation=explain(latest) if latest is not None else None,
        event_mix=event_mix(latest) if latest is not None and latest.counts else None,
        queued_jobs=queued)


def _point(day: Day, result: DayResult | None) -> HistoryPoint:
    if result is None:
        return HistoryPoint(day, RowStatus.NOT_COMPUTED, None, None, None, None)
    return HistoryPoint(day, _status(result), result.score,
                        dict(result.metrics) if result.metrics is not None else None,
                        result.eligibility.value, result.counts.get("processed_long"))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _decimal(value: object) -> str:
    """An exact number stored as text ("3/20") as a decimal when it ends ("0.15")."""
    try:
        return exact_text(Fraction(str(value))) if value is not None else ""
    except (ValueError, ZeroDivisionError):
        return str(value)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def explain(result: DayResult) -> Explanation:
    """The explanation stored with ``result`` (scoring.score_day's shape), tolerant of
    missing parts: results written by older versions or by tests may lack them."""
    raw = dict(result.explanation)
    stored_metrics = _dict(raw.get("metrics"))
    weights = _dict(raw.get("weights"))
    metrics = []
    for name in METRIC_NAMES:
        text = _dict(stored_metrics.get(name))
        chosen = str(text.get("measure", ""))
        metrics.append(MetricExplanation(
            metric=name,
            score=result.metrics.get(name) if result.metrics is not None else None,
            rate_pct=str(text.get("rate_pct", "")),
            rate_pct_exact=bool(text.get("rate_pct_exact", True)),
            numerator=_int(text.get("numerator")), denominator=_int(text.get("denominator")),
            measure=chosen, rule=str(text.get("rule", "")),
            direction=str(text.get("direction", "")),
            band_edges_pct=[str(edge) for edge in _list(text.get("band_edges_pct"))],
            weight=_decimal(weights.get(name)),
            candidates=[Candidate(
                measure=str(c.get("measure", "")), available=bool(c.get("available")),
                chosen=c.get("measure") == chosen, rate_pct=str(c.get("rate_pct", "")),
                numerator=_int(c.get("numerator")), denominator=_int(c.get("denominator")))
                for c in map(_dict, _list(text.get("candidates")))],
        ))
    open_tracking = raw.get("open_tracking")
    cap_applied = raw.get("cap_applied")
    return Explanation(
        model_version=str(raw.get("model_version", result.model_version)),
        eligibility=result.eligibility.value,
        eligibility_reasons=[str(r) for r in _list(raw.get("eligibility_reasons"))],
        open_tracking=open_tracking if isinstance(open_tracking, bool) else None,
        min_messages=_int(raw.get("min_messages")),
        windows_days={k: v for k, v in _dict(raw.get("windows_days")).items()
                      if isinstance(v, int)},
        metrics=metrics,
        weighted_mean=(None if raw.get("weighted_mean_decimal") is None
                       else str(raw["weighted_mean_decimal"])),
        rounded=_int(raw.get("rounded")),
        lowest_metric_score=_int(raw.get("lowest_metric_score")), cap=_int(raw.get("cap")),
        cap_applied=cap_applied if isinstance(cap_applied, bool) else None,
        score=result.score,
    )


def event_mix(result: DayResult) -> EventMix:
    """The long-window counts of ``result`` (zeros where a count was not stored)."""
    counts = result.counts
    long_days = _dict(dict(result.explanation).get("windows_days")).get("long", 30)
    invalid, block = counts.get("invalid_bounces_long", 0), counts.get("block_bounces_long", 0)
    return EventMix(
        window_days=long_days if isinstance(long_days, int) else 30,
        processed=counts.get("processed_long", 0), delivered=counts.get("delivered_long", 0),
        bounces=invalid + block, invalid_bounces=invalid, block_bounces=block,
        spam_reports=counts.get("spam_reports_long", 0),
        unique_opens=counts.get("opened_long", 0),
    )
