"""Properties of score_day over arbitrary counts (Hypothesis)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from seqscore.scoring.model import DEFAULT_MODEL, Direction, ScoringModel, SpamDenominator
from seqscore.scoring.score import ScoreDecision, band_score, score_day
from seqscore.types import Eligibility, ProviderCounts, WindowCounts

OPENERS = dataclasses.replace(DEFAULT_MODEL, version="v1-openers",
                              spam_denominator=SpamDenominator.OPENERS)
models = st.sampled_from([DEFAULT_MODEL, OPENERS])
count = st.integers(min_value=0, max_value=20_000)
small = st.integers(min_value=0, max_value=400)


@st.composite
def providers(draw: st.DrawFn) -> tuple[ProviderCounts, ...]:
    names = draw(st.lists(st.sampled_from(["gmail", "microsoft", "yahoo", "apple", "a.example",
                                           "b.example", "c.example", "d.example"]),
                          unique=True, max_size=8))
    result = []
    for name in names:
        delivered_long = draw(st.integers(min_value=0, max_value=5_000))
        delivered_short = draw(st.integers(min_value=0, max_value=delivered_long))
        result.append(ProviderCounts(name, delivered_short, draw(st.integers(0, delivered_short)),
                                     delivered_long, draw(st.integers(0, delivered_long))))
    return tuple(result)


@st.composite
def window_counts(draw: st.DrawFn) -> WindowCounts:
    processed_long = draw(count)
    sent_recipients_long = draw(count)
    return WindowCounts(
        account_id=1, day=dt.date(2024, 6, 30),
        processed_short=draw(st.integers(0, processed_long)), processed_long=processed_long,
        delivered_short=draw(count), delivered_long=draw(count), opened_long=draw(count),
        invalid_bounces_short=draw(small), invalid_bounces_long=draw(small),
        block_bounces_short=draw(small), block_bounces_long=draw(small),
        spam_reports_short=draw(small), spam_reports_long=draw(small),
        engaged_recipients_short=draw(count), engaged_recipients_long=draw(count),
        sent_recipients_long=sent_recipients_long,
        sent_engaged_recipients=draw(st.integers(0, sent_recipients_long)),
        providers=draw(providers()),
    )


def decide(c: WindowCounts, model: ScoringModel) -> ScoreDecision:
    return score_day(c, model, open_tracking=True)


@given(window_counts(), models, st.booleans())
def test_scores_in_range_when_eligible(c: WindowCounts, model: ScoringModel,
                                       open_tracking: bool) -> None:
    decision = score_day(c, model, open_tracking=open_tracking)
    if decision.eligibility == Eligibility.ELIGIBLE:
        assert decision.score is not None and 1 <= decision.score <= 5
        assert decision.metrics is not None
        assert all(1 <= s <= 5 for s in decision.metrics.values())
        assert decision.score <= min(decision.metrics.values()) + 1
    else:
        assert decision.score is None and decision.metrics is None
    assert all(den > 0 and num >= 0 for num, den in decision.rates.values())


@given(window_counts(), models)
def test_deterministic_and_json(c: WindowCounts, model: ScoringModel) -> None:
    first = decide(c, model)
    again = decide(dataclasses.replace(c, providers=c.providers[::-1]), model)
    assert first == again
    assert json.dumps(first.explanation, sort_keys=True) == json.dumps(again.explanation,
                                                                       sort_keys=True)


def assert_not_better(before: ScoreDecision, after: ScoreDecision, metric: str) -> None:
    if before.metrics is None:
        assert after.metrics is None
        return
    assert after.metrics is not None and after.score is not None and before.score is not None
    assert after.metrics[metric] <= before.metrics[metric]
    assert after.score <= before.score


windows = st.sampled_from([("short",), ("long",), ("short", "long")])
extra = st.integers(min_value=1, max_value=500)


@given(window_counts(), models, windows, extra)
def test_more_spam_reports_never_score_better(c: WindowCounts, model: ScoringModel,
                                              which: tuple[str, ...], k: int) -> None:
    worse = dataclasses.replace(c, **{f"spam_reports_{w}": getattr(c, f"spam_reports_{w}") + k
                                      for w in which})
    assert_not_better(decide(c, model), decide(worse, model), "spam_rate")


@given(window_counts(), windows, extra,
       st.sampled_from([("invalid_bounces", "bounce_rate"),
                        ("block_bounces", "bounce_classification")]))
def test_more_bounces_never_score_better(c: WindowCounts, which: tuple[str, ...], k: int,
                                         kind: tuple[str, str]) -> None:
    field, metric = kind
    worse = dataclasses.replace(c, **{f"{field}_{w}": getattr(c, f"{field}_{w}") + k
                                      for w in which})
    assert_not_better(decide(c, DEFAULT_MODEL), decide(worse, DEFAULT_MODEL), metric)


@given(window_counts(), st.data(), extra)
def test_fewer_opens_never_score_better(c: WindowCounts, data: st.DataObject, k: int) -> None:
    index = data.draw(st.integers(0, len(c.providers))) if c.providers else 0
    providers = list(c.providers)
    if index < len(providers):
        p = providers[index]
        providers[index] = dataclasses.replace(p, opened_short=max(0, p.opened_short - k),
                                               opened_long=max(0, p.opened_long - k))
    worse = dataclasses.replace(c, providers=tuple(providers),
                                opened_long=max(0, c.opened_long - k))
    assert_not_better(decide(c, DEFAULT_MODEL), decide(worse, DEFAULT_MODEL), "open_rate")


@given(window_counts(), extra)
def test_fewer_engaged_recipients_never_score_better(c: WindowCounts, k: int) -> None:
    worse = dataclasses.replace(c, sent_engaged_recipients=max(0, c.sent_engaged_recipients - k))
    assert_not_better(decide(c, DEFAULT_MODEL), decide(worse, DEFAULT_MODEL),
                      "engagement_recency")


@given(window_counts(), models)
def test_integer_decisions_agree_with_fractions(c: WindowCounts, model: ScoringModel) -> None:
    """score_day decides in integers (cross-multiplied rates, weights over one common
    denominator); the same decisions taken with Fractions must agree."""
    d = decide(c, model)
    explained = d.explanation["metrics"]
    assert isinstance(explained, dict)
    for metric, (numerator, denominator) in d.rates.items():
        rate_pct = Fraction(100 * numerator, denominator)
        band = model.bands[metric]
        if d.metrics is not None:
            assert d.metrics[metric] == band_score(band, rate_pct)
        candidates = [Fraction(100 * m["numerator"], m["denominator"] or 1)
                      * (1 if m["denominator"] else 0)
                      for m in explained[metric]["candidates"] if m["available"]]
        if len(candidates) > 1 and metric != "spam_rate":  # spam: a rule, not a comparison
            pick = min if band.direction == Direction.HIGHER_IS_BETTER else max
            assert rate_pct == pick(candidates)
    if d.metrics is not None:
        mean = sum((model.weights[m] * s for m, s in d.metrics.items()), Fraction(0))
        assert d.explanation["weighted_mean"] == str(mean)
        rounded = int(mean + Fraction(1, 2))
        assert d.score == min(rounded, min(d.metrics.values()) + model.cap_above_lowest)
