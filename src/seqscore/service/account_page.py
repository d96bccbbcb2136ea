"""The dashboard's account page: one account's last 90 days, its newest explanation
and event mix.

Like the overview (``overview``), the HTML page and its JSON twin call these
functions and show what they return; closed days without a result are queued.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from seqscore.clock import Clock
from seqscore.errors import Forbidden
from seqscore.scoring.exact import exact_text
from seqscore.service.auth import MSG_FORBIDDEN
from seqscore.service.overview import AccountRef, RowStatus, account_ref, row_status
from seqscore.service.seq import ONE_DAY, last_closed_day
from seqscore.storage.state import StateStore
from seqscore.types import METRIC_NAMES, Account, Day, DayResult

#: Days shown on an account's page, ending with the chosen day.
ACCOUNT_PAGE_DAYS = 90


def account_in_view(state: StateStore, viewer: Account, username: str) -> Account:
    """``viewer`` itself or one of its children, by username; else ``Forbidden``.

    An unknown name and another parent's account answer alike, as on-behalf-of does.
    """
    account = state.get_account_by_username(username)
    if account is None or (account.user_id != viewer.user_id
                           and account.parent_id != viewer.user_id):
        raise Forbidden(MSG_FORBIDDEN)
    return account


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
    return HistoryPoint(day, row_status(result), result.score,
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
