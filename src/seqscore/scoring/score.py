"""Counts to a day's SEQ score: pure functions, exact arithmetic (spec/scoring-model.md).

``score_day`` reads one ``WindowCounts`` and a ``ScoringModel`` and returns a
``ScoreDecision``: eligibility, the overall score, the five metric scores, each
metric's rate as exact integers, and a JSON-able explanation of every step. No
clock, no I/O, no settings: the same counts and model always give the same result.

Rates are ``Fraction``s; a zero denominator gives rate 0. Band decisions compare
the exact percent ``100 * numerator / denominator`` with the model's edges.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction

from seqscore.scoring.exact import exact_text, ratio_decimal_text, ratio_text
from seqscore.scoring.model import Band, Direction, ScoringModel, SpamDenominator
from seqscore.types import METRIC_NAMES, DayResult, Eligibility, ProviderCounts, WindowCounts

#: JSON-able explanation (str, int, bool, None, lists and dicts of them only).
Explanation = dict[str, object]

#: When both checks fail, the first reason in this order is the eligibility;
#: open tracking first because the account holder can fix it at once.
ELIGIBILITY_ORDER = (Eligibility.OPEN_TRACKING_OFF, Eligibility.LOW_VOLUME)


@dataclass(frozen=True, slots=True)
class Measure:
    """One candidate measure of a metric: ``numerator / denominator``.

    ``available`` says whether the metric's rule lets this measure be chosen
    (for most measures: its denominator is at least ``min_denominator``).
    """

    name: str
    numerator: int
    denominator: int
    available: bool

    def below(self, other: Measure) -> bool:
        """This measure's rate < ``other``'s, exactly, in integers (a zero denominator
        is rate 0; counts are never negative)."""
        return (self.numerator if self.denominator else 0) * (other.denominator or 1) < (
            other.numerator if other.denominator else 0) * (self.denominator or 1)


#: (rule as text, every candidate measure, the chosen one)
Selection = tuple[str, list[Measure], Measure]
#: The account-day's providers that the open rate measures (``select_top_providers``).
TopProviders = tuple[ProviderCounts, ...]


@dataclass(frozen=True, slots=True)
class ScoreDecision:
    """The outcome of scoring one account-day.

    ``score`` and ``metrics`` are ``None`` unless ``eligibility`` is ``ELIGIBLE``.
    ``rates`` maps each metric to the (numerator, denominator) of its chosen
    measure, as counted; a zero denominator is reported as ``(0, 1)`` (rate 0).
    ``counts`` holds the scalar window counts; ``explanation`` is JSON-able.
    """

    eligibility: Eligibility
    score: int | None
    metrics: dict[str, int] | None
    rates: dict[str, tuple[int, int]]
    counts: dict[str, int]
    explanation: Explanation
    model_version: str


def select_top_providers(providers: Iterable[ProviderCounts], n: int) -> tuple[ProviderCounts, ...]:
    """The ``n`` providers with the most ``delivered_long``, ties by name ascending.

    Providers with no delivery in the long window are never selected.
    """
    candidates = (p for p in providers if p.delivered_long > 0)
    return tuple(sorted(candidates, key=lambda p: (-p.delivered_long, p.provider))[:n])


def band_score(band: Band, rate_pct: Fraction) -> int:
    """The 1..5 score of a rate in percent under ``band``.

    Counts the edges the rate has reached (edge <= rate): each one costs a point
    when lower is better and earns one when higher is better, so a rate exactly on
    an edge takes the worse score (lower is better) or the better (higher is better).
    """
    return _band_score(band, rate_pct.numerator, rate_pct.denominator)


def _band_score(band: Band, pct_numerator: int, pct_denominator: int) -> int:
    """``band_score`` of the percent ``pct_numerator / pct_denominator`` (denominator
    > 0), in integers: an edge p/q is reached when p * denominator <= numerator * q."""
    reached = 0
    for edge in band.edges_pct:
        if edge.numerator * pct_denominator <= pct_numerator * edge.denominator:
            reached += 1
    return 5 - reached if band.direction == Direction.LOWER_IS_BETTER else 1 + reached


def _measure_score(band: Band, measure: Measure) -> int:
    """``band_score`` of a measure's rate (a zero denominator is rate 0)."""
    if not measure.denominator:
        return _band_score(band, 0, 1)
    return _band_score(band, 100 * measure.numerator, measure.denominator)


def _lowest(measures: Sequence[Measure]) -> Measure | None:
    """The first available measure with the lowest rate (ties keep the first)."""
    chosen = None
    for m in measures:
        if m.available and (chosen is None or m.below(chosen)):
            chosen = m
    return chosen


def _highest(measures: Sequence[Measure]) -> Measure | None:
    """The first available measure with the highest rate (ties keep the first)."""
    chosen = None
    for m in measures:
        if m.available and (chosen is None or chosen.below(m)):
            chosen = m
    return chosen


@functools.lru_cache(maxsize=64)
def _open_rate_rule(least: int, top: int) -> str:
    return (f"lowest available (denominator >= {least}) of: top {top} providers "
            "summed over the short window, summed over the long window, each top provider over "
            "the long window; else all providers over the long window")


@functools.lru_cache(maxsize=64)
def _highest_rule(least: int) -> str:
    return f"highest of short window (only when processed_short >= {least}) and long window"


def _open_rate(c: WindowCounts, model: ScoringModel, top: TopProviders) -> Selection:
    least = model.min_denominator

    def summed(window: str, opened: int, delivered: int) -> Measure:
        return Measure(f"top providers {window} window", opened, delivered, delivered >= least)

    measures = [
        summed("short", sum(p.opened_short for p in top), sum(p.delivered_short for p in top)),
        summed("long", sum(p.opened_long for p in top), sum(p.delivered_long for p in top)),
        *(Measure(f"provider {p.provider} long window", p.opened_long, p.delivered_long,
                  p.delivered_long >= least) for p in top),
    ]
    chosen = _lowest(measures)
    fallback = Measure("all providers long window fallback", c.opened_long, c.delivered_long,
                       chosen is None)
    rule = _open_rate_rule(least, model.top_providers)
    return rule, [*measures, fallback], chosen or fallback


def _highest_of_windows(numerators: tuple[int, int], c: WindowCounts,
                        model: ScoringModel, top: TopProviders) -> Selection:
    least = model.min_denominator
    measures = [
        Measure("short window", numerators[0], c.processed_short, c.processed_short >= least),
        Measure("long window", numerators[1], c.processed_long, True),
    ]
    rule = _highest_rule(least)
    chosen = _highest(measures)
    assert chosen is not None  # the long window is always available
    return rule, measures, chosen


def _spam_rate(c: WindowCounts, model: ScoringModel, top: TopProviders) -> Selection:
    least = model.min_denominator
    if model.spam_denominator == SpamDenominator.OPENERS:
        kind, denominators = "engaged recipients", (c.engaged_recipients_short,
                                                    c.engaged_recipients_long)
    else:
        kind, denominators = "delivered", (c.delivered_short, c.delivered_long)
    short_ok = denominators[0] >= least
    measures = [
        Measure(f"short window over {kind}", c.spam_reports_short, denominators[0], short_ok),
        Measure(f"long window over {kind}", c.spam_reports_long, denominators[1], not short_ok),
    ]
    rule = f"short window when its {kind} >= {least}, else long window"
    return rule, measures, measures[0] if short_ok else measures[1]


def _engagement_recency(c: WindowCounts, model: ScoringModel,
                        top: TopProviders) -> Selection:
    measure = Measure("long window recipients engaged in engagement window",
                      c.sent_engaged_recipients, c.sent_recipients_long, True)
    rule = (f"recipients sent to in the long window ({model.long_window_days} days) with a human "
            f"open or click in the engagement window ({model.engagement_window_days} days), "
            "over recipients sent to in the long window")
    return rule, [measure], measure


#: Each metric's measure selection, from the counts, the model and the account-day's
#: top providers (``select_top_providers``, chosen once per result).
_SELECTORS: dict[str, Callable[[WindowCounts, ScoringModel, TopProviders], Selection]] = {
    "engagement_recency": _engagement_recency,
    "open_rate": _open_rate,
    "bounce_classification": lambda c, model, top: _highest_of_windows(
        (c.block_bounces_short, c.block_bounces_long), c, model, top),
    "bounce_rate": lambda c, model, top: _highest_of_windows(
        (c.invalid_bounces_short, c.invalid_bounces_long), c, model, top),
    "spam_rate": _spam_rate,
}


@functools.lru_cache(maxsize=1 << 16)
def _ratio_texts(numerator: int, denominator: int) -> tuple[str, bool, str]:
    """(decimal text, exact?, fraction text) of the percent ``100 * n / d`` (0 if d is 0)."""
    if not denominator:
        return "0", True, "0"
    pct_text, pct_exact = ratio_decimal_text(100 * numerator, denominator)
    return pct_text, pct_exact, ratio_text(100 * numerator, denominator)


def _candidate_text(measure: Measure) -> dict[str, object]:
    pct_text, pct_exact, fraction_text = _ratio_texts(measure.numerator, measure.denominator)
    return {
        "measure": measure.name,
        "available": measure.available,
        "numerator": measure.numerator,
        "denominator": measure.denominator,
        "rate_pct": pct_text,
        "rate_pct_exact": pct_exact,
        "rate_pct_fraction": fraction_text,
    }


def _eligibility(c: WindowCounts, model: ScoringModel,
                 open_tracking: bool) -> tuple[Eligibility, list[str]]:
    failing = {
        Eligibility.OPEN_TRACKING_OFF: not open_tracking,
        Eligibility.LOW_VOLUME: c.processed_long < model.min_messages,
    }
    reasons = [reason for reason in ELIGIBILITY_ORDER if failing[reason]]
    return (reasons[0] if reasons else Eligibility.ELIGIBLE), [str(r) for r in reasons]


_SCALAR_FIELDS = tuple(f.name for f in fields(WindowCounts)
                       if f.name not in {"account_id", "day", "providers"})


def scalar_counts(counts: WindowCounts) -> dict[str, int]:
    """The integer counts of ``counts`` by field name (no ids, day or providers)."""
    return {name: getattr(counts, name) for name in _SCALAR_FIELDS}


def _negative(p: ProviderCounts) -> bool:
    return min(p.delivered_short, p.opened_short, p.delivered_long, p.opened_long) < 0


def score_day(counts: WindowCounts, model: ScoringModel, *, open_tracking: bool) -> ScoreDecision:
    """Score one account-day from its window counts (spec/scoring-model.md).

    Eligible when ``open_tracking`` and ``processed_long >= model.min_messages``;
    otherwise ``score`` and ``metrics`` are ``None`` (reason order:
    ``ELIGIBILITY_ORDER``), while rates and measures are still computed and
    explained. Each metric's measure is chosen by the spec's rule, its exact
    percent rate banded by ``band_score``; the score is the weighted mean rounded
    half up (2.5 -> 3), capped at the lowest metric score + ``cap_above_lowest``.
    Ties between measures keep the first in the order listed in the explanation.
    Raises ``ValueError`` for a negative count.
    """
    scalars = scalar_counts(counts)
    if min(scalars.values()) < 0 or any(map(_negative, counts.providers)):
        negative = [name for name, value in scalars.items() if value < 0] + [
            f"providers.{p.provider}" for p in counts.providers if _negative(p)]
        raise ValueError(f"negative counts: {', '.join(negative)}")

    eligibility, reasons = _eligibility(counts, model, open_tracking)
    eligible = eligibility == Eligibility.ELIGIBLE
    metric_scores: dict[str, int] = {}
    rates: dict[str, tuple[int, int]] = {}
    metric_texts: dict[str, object] = {}
    static = _static_texts(model)
    top = select_top_providers(counts.providers, model.top_providers)
    for metric in METRIC_NAMES:
        rule, measures, chosen = _SELECTORS[metric](counts, model, top)
        band = model.bands[metric]
        metric_scores[metric] = _measure_score(band, chosen)
        rates[metric] = (chosen.numerator, chosen.denominator) if chosen.denominator else (0, 1)
        candidates = [_candidate_text(m) for m in measures]
        chosen_text = candidates[measures.index(chosen)]
        metric_texts[metric] = {
            "rule": rule,
            "measure": chosen.name,
            "numerator": chosen_text["numerator"],
            "denominator": chosen_text["denominator"],
            "rate_pct": chosen_text["rate_pct"],
            "rate_pct_exact": chosen_text["rate_pct_exact"],
            "rate_pct_fraction": chosen_text["rate_pct_fraction"],
            "direction": static.directions[metric],
            "band_edges_pct": list(static.band_edges[metric]),
            "score": metric_scores[metric] if eligible else None,
            "candidates": candidates,
        }

    explanation: Explanation = {
        "model_version": model.version,
        "eligibility": str(eligibility),
        "eligibility_reasons": reasons,
        "open_tracking": open_tracking,
        "min_messages": model.min_messages,
        "min_denominator": model.min_denominator,
        "windows_days": {"short": model.short_window_days, "long": model.long_window_days,
                         "engagement": model.engagement_window_days},
        "spam_denominator": str(model.spam_denominator),
        "top_providers": [
            {"provider": p.provider, "delivered_short": p.delivered_short,
             "opened_short": p.opened_short, "delivered_long": p.delivered_long,
             "opened_long": p.opened_long}
            for p in top],
        "metrics": metric_texts,
    }
    if not eligible:
        explanation.update(_composite_text(None, model))
        return ScoreDecision(eligibility, None, None, rates, scalars, explanation, model.version)
    composite = _composite(metric_scores, model)
    explanation.update(_composite_text(composite, model))
    return ScoreDecision(eligibility, composite.score, metric_scores, rates, scalars, explanation,
                         model.version)


@dataclass(frozen=True, slots=True)
class _StaticTexts:
    """The parts of an explanation that depend on the model only, written once per model."""

    model: ScoringModel
    directions: dict[str, str]
    band_edges: dict[str, tuple[str, ...]]
    weights: dict[str, str]
    #: the weights over one common denominator:
    #: weight[m] = weight_numerators[m] / weight_denominator
    weight_numerators: dict[str, int]
    weight_denominator: int


_STATIC: dict[int, _StaticTexts] = {}


def _static_texts(model: ScoringModel) -> _StaticTexts:
    """``_StaticTexts`` of ``model``, kept per model object (identity, not equality:
    hashing a model walks all of its mappings)."""
    cached = _STATIC.get(id(model))
    if cached is not None and cached.model is model:
        return cached
    denominator = math.lcm(*(model.weights[m].denominator for m in METRIC_NAMES))
    static = _StaticTexts(
        model,
        {m: str(model.bands[m].direction) for m in METRIC_NAMES},
        {m: tuple(exact_text(edge) for edge in model.bands[m].edges_pct) for m in METRIC_NAMES},
        {m: str(model.weights[m]) for m in METRIC_NAMES},
        {m: model.weights[m].numerator * (denominator // model.weights[m].denominator)
         for m in METRIC_NAMES},
        denominator,
    )
    if len(_STATIC) >= 64:
        _STATIC.clear()  # a process holds one or two models; never grow without bound
    _STATIC[id(model)] = static
    return static


@dataclass(frozen=True, slots=True)
class _Composite:
    #: the weighted mean is mean_numerator / mean_denominator (not reduced)
    mean_numerator: int
    mean_denominator: int
    rounded: int
    lowest: int
    cap: int
    score: int


def _composite(metric_scores: Mapping[str, int], model: ScoringModel) -> _Composite:
    static = _static_texts(model)
    numerator = sum(static.weight_numerators[m] * metric_scores[m] for m in METRIC_NAMES)
    denominator = static.weight_denominator
    rounded = (2 * numerator + denominator) // (2 * denominator)  # half up: 2.5 -> 3
    lowest = min(metric_scores.values())
    cap = lowest + model.cap_above_lowest
    return _Composite(numerator, denominator, rounded, lowest, cap, min(rounded, cap))


def _composite_text(composite: _Composite | None, model: ScoringModel) -> Explanation:
    text: Explanation = {"weights": dict(_static_texts(model).weights)}
    keys = ("weighted_mean", "weighted_mean_decimal", "weighted_mean_decimal_exact", "rounded",
            "lowest_metric_score", "cap", "cap_applied", "score")
    if composite is None:
        return text | dict.fromkeys(keys)
    n, d = composite.mean_numerator, composite.mean_denominator
    mean_text, mean_exact = ratio_decimal_text(n, d)
    values = (ratio_text(n, d), mean_text, mean_exact, composite.rounded,
              composite.lowest, composite.cap, composite.cap < composite.rounded, composite.score)
    return text | dict(zip(keys, values, strict=True))


def to_day_result(decision: ScoreDecision, account_id: int, day: dt.date,
                  computed_at: dt.datetime) -> DayResult:
    """The storable ``DayResult`` of ``decision`` (``computed_at``: an aware UTC instant)."""
    return DayResult(
        account_id=account_id,
        day=day,
        score=decision.score,
        metrics=dict(decision.metrics) if decision.metrics is not None else None,
        eligibility=decision.eligibility,
        model_version=decision.model_version,
        computed_at=computed_at,
        counts=dict(decision.counts),
        rates=dict(decision.rates),
        explanation=decision.explanation,
    )
