"""seqscore's own score API: one day's result explained, and history past 90 days.

Both answer from stored results only (``DayResult.counts``, ``rates`` and the
``explanation`` that ``scoring.score_day`` wrote); the API never scans events.
A stored explanation is read tolerantly: a part it lacks (a result written by an
older version) is left out or null, never invented.

What is queued (and so what ``Accepted`` means, as in ``seq``): a closed day
without a result, when it is at most ``history_days`` old. Older days are
never recomputed by a request: the event store keeps ``events_retention_days``
(default 120), so an older day's windows are no longer complete and a
recomputation would store wrong numbers. Such days are reported as not kept
(``NotKept``, ``"status": "unavailable"``); ``seqscore compute`` backfills them
on purpose when their events are there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from seqscore.clock import Clock
from seqscore.errors import FieldError, InvalidInput
from seqscore.scoring.exact import decimal_text, exact_text
from seqscore.service.seq import ONE_DAY, Accepted, last_closed_day, seq_entry
from seqscore.service.seq_params import RangeParams, parse_range
from seqscore.storage.state import StateStore
from seqscore.types import METRIC_NAMES, Account, Day, DayResult

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ONE_PROVIDER = re.compile(r"^provider (?P<provider>\S+) long window$")


class Status:
    """``status`` of a day in an answer."""

    COMPUTED = "computed"
    #: events arrived after it was computed; its recomputation is queued
    STALE = "stale"
    #: closed, no result yet, queued
    PENDING = "pending"
    #: closed, no result kept, too old to be recomputed by a request
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class NotKept:
    """No result is kept for a closed day older than ``history_days``; nothing queued."""

    history_days: int


@dataclass(frozen=True, slots=True)
class History:
    """One entry per closed day of the range, oldest first; ``queued_jobs`` were queued."""

    entries: list[dict[str, Any]]
    queued_jobs: int


def _msg(text: str) -> str:
    return f"failed to parse request: {text}"


def parse_day(raw: str, *, today: Day, retention_days: int) -> Day:
    """The ``date`` of an explanation request; raises ``InvalidInput`` (field ``date``)
    when it is not a YYYY-MM-DD day, is more than ``retention_days`` days before
    ``today`` (whole UTC days) or after ``today``."""
    day = None
    if _DATE_RE.fullmatch(raw):
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            day = None
    if day is None:
        text = _msg('"date" must be a valid day written YYYY-MM-DD, such as 2026-11-19')
    elif (today - day).days > retention_days:
        text = _msg(f'"date" cannot be more than {retention_days} days in the past')
    elif day > today:
        text = _msg('"date" cannot be in the future')
    else:
        return day
    raise InvalidInput([FieldError("date", text)])


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _fraction(value: object) -> Fraction | None:
    try:
        return Fraction(str(value)) if value is not None else None
    except (ValueError, ZeroDivisionError):
        return None


def _band(edges: list[Any], direction: str, rate_pct: Fraction | None) -> dict[str, Any]:
    """The band ``rate_pct`` fell in, ``from_pct <= rate < to_pct`` (null: unbounded),
    and the score that band gives (spec: an edge counts as reached)."""
    exact = [f for f in map(_fraction, edges) if f is not None]
    known = direction in ("lower_is_better", "higher_is_better")
    if rate_pct is None or len(exact) != len(edges) or not exact or not known:
        return {"band_pct": None, "band_score": None}
    ascending = sorted(exact)
    reached = sum(1 for edge in ascending if edge <= rate_pct)
    low = exact_text(ascending[reached - 1]) if reached else None
    high = exact_text(ascending[reached]) if reached < len(ascending) else None
    score = 5 - reached if direction == "lower_is_better" else 1 + reached
    return {"band_pct": {"from": low, "to": high}, "band_score": score}


def _measure_scope(name: str, windows: Mapping[str, Any]) -> dict[str, Any]:
    """Which window (and for open_rate which providers) a measure's name says it covers."""
    window = "short" if "short window" in name else "long" if "long window" in name else None
    match = _ONE_PROVIDER.match(name)
    provider = (match.group("provider") if match else "top" if name.startswith("top providers")
                else "all" if name.startswith("all providers") else None)
    days = windows.get(window) if window else None
    return {"window": window, "window_days": days if isinstance(days, int) else None,
            "provider": provider}


def _rate(numerator: int, denominator: int) -> dict[str, Any]:
    pct = Fraction(100 * numerator, denominator) if denominator else Fraction(0)
    text, exact = decimal_text(pct)
    return {"numerator": numerator, "denominator": denominator, "rate_pct": text,
            "rate_pct_exact": exact, "rate_pct_fraction": str(pct)}


def _metric_detail(name: str, result: DayResult, stored: dict[str, Any],
                   weights: Mapping[str, Any], windows: Mapping[str, Any]) -> dict[str, Any]:
    text = _dict(_dict(stored.get("metrics")).get(name))
    numerator, denominator = result.rates.get(name, (0, 1))
    rate = _rate(numerator, denominator)
    for key in rate:  # the measure as counted (a zero denominator stays 0 there)
        if key in text:
            rate[key] = text[key]
    measure = str(text.get("measure", "")) or None
    direction = str(text.get("direction", "")) or None
    edges = [str(edge) for edge in _list(text.get("band_edges_pct"))]
    weight = _fraction(weights.get(name))
    return {
        "score": result.metrics.get(name) if result.metrics is not None else None,
        **rate,
        "measure": measure,
        **_measure_scope(measure or "", windows),
        "rule": text.get("rule"),
        "direction": direction,
        "band_edges_pct": edges,
        **_band(edges, direction or "", _fraction(rate["rate_pct_fraction"])),
        "weight": exact_text(weight) if weight is not None else None,
        "candidates": _list(text.get("candidates")),
    }


def _reasons(result: DayResult, stored: Mapping[str, Any]) -> list[str]:
    reasons = [str(r) for r in _list(stored.get("eligibility_reasons"))]
    if not reasons and result.score is None:
        reasons = [result.eligibility.value]  # a result stored without its explanation
    return reasons


def explain_result(account: Account, result: DayResult) -> dict[str, Any]:
    """The explanation answer of one stored result (docs/api.md, "Explanations").

    Starts with the /v3 score entry (``score`` and ``metrics`` only when
    eligible), then the eligibility and its reasons, the counts, each metric's
    chosen measure with its exact rate and band, and the weighted mean and cap.
    """
    stored = dict(result.explanation)
    windows = _dict(stored.get("windows_days"))
    weights = _dict(stored.get("weights"))
    composite_keys = ("weighted_mean", "weighted_mean_decimal", "weighted_mean_decimal_exact",
                      "rounded", "lowest_metric_score", "cap", "cap_applied")
    return {
        **seq_entry(account, result.day, result),
        "status": Status.STALE if result.stale else Status.COMPUTED,
        "eligible": result.score is not None,
        "eligibility": result.eligibility.value,
        "eligibility_reasons": _reasons(result, stored),
        "model_version": result.model_version,
        "computed_at": result.computed_at.isoformat().replace("+00:00", "Z"),
        "open_tracking": stored.get("open_tracking"),
        "min_messages": stored.get("min_messages"),
        "min_denominator": stored.get("min_denominator"),
        "spam_denominator": stored.get("spam_denominator"),
        "windows_days": windows,
        "counts": dict(result.counts),
        "top_providers": _list(stored.get("top_providers")),
        "metric_details": {name: _metric_detail(name, result, stored, weights, windows)
                           for name in METRIC_NAMES},
        "weights": {name: exact_text(w) for name in METRIC_NAMES
                    if (w := _fraction(weights.get(name))) is not None},
        **{key: stored.get(key) for key in composite_keys},
    }


def history_entry(account: Account, day: Day, result: DayResult | None,
                  status: str) -> dict[str, Any]:
    """A /v3 score entry plus ``status`` and, when computed, ``eligibility``."""
    entry = seq_entry(account, day, result)
    entry["status"] = status
    if result is not None:
        entry["eligibility"] = result.eligibility.value
        entry["model_version"] = result.model_version
    return entry


class ExplainService:
    """Explanations and long history (see the module doc). Reads results; queues
    missing closed days no older than ``history_days``."""

    def __init__(self, state: StateStore, clock: Clock, *, settle_minutes: int,
                 history_days: int, retention_days: int) -> None:
        self._state = state
        self._clock = clock
        self._settle_minutes = settle_minutes
        self.history_days = history_days
        self.retention_days = retention_days

    def today(self) -> Day:
        return self._clock.now().date()

    def parse_day(self, raw: str) -> Day:
        return parse_day(raw, today=self.today(), retention_days=self.retention_days)

    def parse_range(self, query: Mapping[str, str]) -> RangeParams:
        """``from``/``to`` with /v3's rules and messages, reaching back
        ``retention_days`` instead of 90."""
        return parse_range(query, today=self.today(), history_days=self.retention_days)

    def _recomputable(self, day: Day) -> bool:
        return (self.today() - day).days <= self.history_days

    def explain(self, account: Account, day: Day) -> dict[str, Any] | Accepted | NotKept:
        """``account``'s result for ``day`` explained; ``Accepted`` when the day is not
        closed (nothing queued) or has no result yet (queued)."""
        now = self._clock.now()
        if day > last_closed_day(now, self._settle_minutes):
            return Accepted(0)
        result = self._state.get_results(account.user_id, day, day).get(day)
        if result is not None:
            return explain_result(account, result)
        if not self._recomputable(day):
            return NotKept(self.history_days)
        return Accepted(self._state.enqueue_jobs([(account.user_id, day)], now=now))

    def history(self, account: Account, first: Day, last: Day) -> History | Accepted:
        """One entry per closed day of [first, last], oldest first. ``Accepted`` (nothing
        queued) when no day of the range is closed."""
        now = self._clock.now()
        closed_last = min(last, last_closed_day(now, self._settle_minutes))
        if closed_last < first:
            return Accepted(0)
        found = self._state.get_results(account.user_id, first, closed_last)
        days = [first + ONE_DAY * i for i in range((closed_last - first).days + 1)]
        entries, missing = [], []
        for day in days:
            result = found.get(day)
            if result is not None:
                status = Status.STALE if result.stale else Status.COMPUTED
            elif self._recomputable(day):
                status = Status.PENDING
                missing.append((account.user_id, day))
            else:
                status = Status.UNAVAILABLE
            entries.append(history_entry(account, day, result, status))
        queued = self._state.enqueue_jobs(missing, now=now) if missing else 0
        return History(entries, queued)
