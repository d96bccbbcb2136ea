"""score_day: band edges, measure selection, composite score, eligibility (hand-computed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from fractions import Fraction

import pytest

from seqscore.scoring.model import DEFAULT_MODEL, ScoringModel, SpamDenominator
from seqscore.scoring.score import (
    ScoreDecision,
    band_score,
    score_day,
    select_top_providers,
    to_day_result,
)
from seqscore.types import DayResult, Eligibility, ProviderCounts, WindowCounts

DAY = dt.date(2024, 6, 30)

#: Every metric scores 5: no spam or bounces, 30 % opens, 80 % engaged.
GOOD = WindowCounts(
    account_id=7, day=DAY,
    processed_short=10_000, processed_long=10_000,
    delivered_short=10_000, delivered_long=10_000, opened_long=3_000,
    invalid_bounces_short=0, invalid_bounces_long=0,
    block_bounces_short=0, block_bounces_long=0,
    spam_reports_short=0, spam_reports_long=0,
    engaged_recipients_short=2_000, engaged_recipients_long=8_000,
    sent_recipients_long=10_000, sent_engaged_recipients=8_000,
    providers=(ProviderCounts("gmail", 10_000, 3_000, 10_000, 3_000),),
)


def counts(**changes: object) -> WindowCounts:
    return dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]


def with_metric_numerator(metric: str, n: int) -> WindowCounts:
    """GOOD with ``metric``'s numerator n over 10,000 in every window and measure."""
    if metric == "spam_rate":
        return counts(spam_reports_short=n, spam_reports_long=n)
    if metric == "bounce_rate":
        return counts(invalid_bounces_short=n, invalid_bounces_long=n)
    if metric == "bounce_classification":
        return counts(block_bounces_short=n, block_bounces_long=n)
    if metric == "open_rate":
        return counts(opened_long=n, providers=(ProviderCounts("gmail", 10_000, n, 10_000, n),))
    assert metric == "engagement_recency"
    return counts(sent_engaged_recipients=n)


def decide(c: WindowCounts, model: ScoringModel = DEFAULT_MODEL) -> ScoreDecision:
    return score_day(c, model, open_tracking=True)


def metric_text(decision: ScoreDecision, metric: str) -> dict[str, object]:
    metrics = decision.explanation["metrics"]
    assert isinstance(metrics, dict)
    return metrics[metric]  # type: ignore[no-any-return]


# (metric, numerator over 10,000, expected metric score): each edge, one event either side.
EDGE_CASES = [
    # spam_rate, lower is better, edges 0.05 0.10 0.20 0.30 %
    ("spam_rate", 4, 5), ("spam_rate", 5, 4), ("spam_rate", 6, 4),
    ("spam_rate", 9, 4), ("spam_rate", 10, 3), ("spam_rate", 11, 3),
    ("spam_rate", 19, 3), ("spam_rate", 20, 2), ("spam_rate", 21, 2),
    ("spam_rate", 29, 2), ("spam_rate", 30, 1), ("spam_rate", 31, 1),
    # bounce_rate, lower is better, edges 1 2 5 10 %
    ("bounce_rate", 99, 5), ("bounce_rate", 100, 4), ("bounce_rate", 101, 4),
    ("bounce_rate", 199, 4), ("bounce_rate", 200, 3), ("bounce_rate", 201, 3),
    ("bounce_rate", 499, 3), ("bounce_rate", 500, 2), ("bounce_rate", 501, 2),
    ("bounce_rate", 999, 2), ("bounce_rate", 1000, 1), ("bounce_rate", 1001, 1),
    # bounce_classification, lower is better, edges 0.1 0.5 1 3 %
    ("bounce_classification", 9, 5), ("bounce_classification", 10, 4),
    ("bounce_classification", 11, 4), ("bounce_classification", 49, 4),
    ("bounce_classification", 50, 3), ("bounce_classification", 51, 3),
    ("bounce_classification", 99, 3), ("bounce_classification", 100, 2),
    ("bounce_classification", 101, 2), ("bounce_classification", 299, 2),
    ("bounce_classification", 300, 1), ("bounce_classification", 301, 1),
    # open_rate, higher is better, edges 20 15 10 5 %
    ("open_rate", 1999, 4), ("open_rate", 2000, 5), ("open_rate", 2001, 5),
    ("open_rate", 1499, 3), ("open_rate", 1500, 4), ("open_rate", 1501, 4),
    ("open_rate", 999, 2), ("open_rate", 1000, 3), ("open_rate", 1001, 3),
    ("open_rate", 499, 1), ("open_rate", 500, 2), ("open_rate", 501, 2),
    # engagement_recency, higher is better, edges 50 35 20 10 %
    ("engagement_recency", 4999, 4), ("engagement_recency", 5000, 5),
    ("engagement_recency", 5001, 5), ("engagement_recency", 3499, 3),
    ("engagement_recency", 3500, 4), ("engagement_recency", 3501, 4),
    ("engagement_recency", 1999, 2), ("engagement_recency", 2000, 3),
    ("engagement_recency", 2001, 3), ("engagement_recency", 999, 1),
    ("engagement_recency", 1000, 2), ("engagement_recency", 1001, 2),
]


@pytest.mark.parametrize(("metric", "numerator", "expected"), EDGE_CASES)
def test_band_edge(metric: str, numerator: int, expected: int) -> None:
    decision = decide(with_metric_numerator(metric, numerator))
    assert decision.metrics is not None
    assert decision.metrics[metric] == expected
    assert decision.rates[metric] == (numerator, 10_000)
    assert metric_text(decision, metric)["score"] == expected


def test_band_edge_rate_is_reported_exactly() -> None:
    text = metric_text(decide(with_metric_numerator("spam_rate", 5)), "spam_rate")
    assert (text["rate_pct"], text["rate_pct_exact"], text["rate_pct_fraction"]) == (
        "0.05", True, "1/20")
    assert text["band_edges_pct"] == ["0.05", "0.1", "0.2", "0.3"]


def test_band_decided_on_exact_fraction_not_float() -> None:
    # 19.9999999999999998 %: a float rounds it to 20 % (score 5); exactly it is below 20.
    n, d = 10**17 - 1, 5 * 10**17
    assert float(n) / float(d) * 100 == 20.0
    c = counts(opened_long=n, delivered_long=d, delivered_short=d,
               providers=(ProviderCounts("gmail", d, n, d, n),))
    decision = decide(c)
    assert decision.metrics is not None and decision.metrics["open_rate"] == 4
    assert metric_text(decision, "open_rate")["rate_pct"] == "19.9999999999999998"


def test_band_score_repeating_rate_below_edge() -> None:
    band = DEFAULT_MODEL.bands["engagement_recency"]
    assert band_score(band, Fraction(100, 3)) == 3  # 33.33… % < 35
    assert band_score(band, Fraction(35)) == 4


# -- spam_rate: short window when delivered_short >= MIN, else long; openers variant

@pytest.mark.parametrize(("delivered_short", "measure", "rate", "score"), [
    (100, "short window over delivered", (0, 100), 5),
    (99, "long window over delivered", (100, 10_000), 1),
])
def test_spam_rate_window_choice(delivered_short: int, measure: str,
                                 rate: tuple[int, int], score: int) -> None:
    decision = decide(counts(delivered_short=delivered_short, spam_reports_short=0,
                             spam_reports_long=100))
    assert metric_text(decision, "spam_rate")["measure"] == measure
    assert decision.rates["spam_rate"] == rate
    assert decision.metrics is not None and decision.metrics["spam_rate"] == score


OPENERS = dataclasses.replace(DEFAULT_MODEL, version="v1-openers",
                              spam_denominator=SpamDenominator.OPENERS)


@pytest.mark.parametrize(("engaged_short", "measure", "rate", "score"), [
    (1_000, "short window over engaged recipients", (2, 1_000), 2),  # 0.2 % on an edge
    (99, "long window over engaged recipients", (2, 5_000), 5),  # 0.04 %
])
def test_spam_rate_openers_denominator(engaged_short: int, measure: str,
                                       rate: tuple[int, int], score: int) -> None:
    c = counts(engaged_recipients_short=engaged_short, engaged_recipients_long=5_000,
               spam_reports_short=2, spam_reports_long=2)
    decision = decide(c, OPENERS)
    assert metric_text(decision, "spam_rate")["measure"] == measure
    assert decision.rates["spam_rate"] == rate
    assert decision.metrics is not None and decision.metrics["spam_rate"] == score
    assert decide(c).metrics["spam_rate"] == 5  # type: ignore[index]  # 2/10,000 delivered


# -- bounces: the highest of short (only when processed_short >= MIN) and long

@pytest.mark.parametrize("metric,field", [("bounce_rate", "invalid_bounces"),
                                          ("bounce_classification", "block_bounces")])
@pytest.mark.parametrize(("processed_short", "short", "long", "measure", "rate"), [
    (100, 5, 100, "short window", (5, 100)),  # 5 % beats 1 %
    (99, 5, 100, "long window", (100, 10_000)),  # 5.05 % not available
    (1_000, 0, 300, "long window", (300, 10_000)),  # long is higher
])
def test_bounce_highest_of_windows(metric: str, field: str, processed_short: int, short: int,
                                   long: int, measure: str, rate: tuple[int, int]) -> None:
    c = counts(processed_short=processed_short,
               **{f"{field}_short": short, f"{field}_long": long})
    decision = decide(c)
    assert metric_text(decision, metric)["measure"] == measure
    assert decision.rates[metric] == rate


def test_bounce_scores_from_highest_window() -> None:
    decision = decide(counts(processed_short=100, invalid_bounces_short=5,
                             invalid_bounces_long=100))
    assert decision.metrics is not None and decision.metrics["bounce_rate"] == 2  # 5 %


# -- open_rate

def test_open_rate_lowest_of_short_and_long() -> None:
    c = counts(opened_long=2_500,
               providers=(ProviderCounts("gmail", 1_000, 100, 10_000, 2_500),))
    decision = decide(c)
    assert metric_text(decision, "open_rate")["measure"] == "top providers short window"
    assert decision.rates["open_rate"] == (100, 1_000)
    assert decision.metrics is not None and decision.metrics["open_rate"] == 3  # 10 %


@pytest.mark.parametrize(("delivered_short", "measure", "score"), [
    (100, "top providers short window", 1),  # 0 opens in 100: available, lowest
    # 25 % over the long window ties with gmail's own measure; the first listed is reported
    (99, "top providers long window", 5),
])
def test_open_rate_summed_measure_only_at_min(delivered_short: int, measure: str,
                                              score: int) -> None:
    c = counts(opened_long=2_500,
               providers=(ProviderCounts("gmail", delivered_short, 0, 10_000, 2_500),))
    decision = decide(c)
    assert metric_text(decision, "open_rate")["measure"] == measure
    assert decision.metrics is not None and decision.metrics["open_rate"] == score


@pytest.mark.parametrize(("yahoo_delivered", "measure", "score"), [
    (100, "provider yahoo long window", 1),  # 0 opens in 100: available, lowest
    (99, "top providers long window", 5),  # 3,000 / 10,099 = 29.7 %
])
def test_open_rate_provider_measure_only_at_min(yahoo_delivered: int, measure: str,
                                                score: int) -> None:
    c = counts(providers=(ProviderCounts("gmail", 1_000, 300, 10_000, 3_000),
                          ProviderCounts("yahoo", 0, 0, yahoo_delivered, 0)))
    decision = decide(c)
    assert metric_text(decision, "open_rate")["measure"] == measure
    assert decision.metrics is not None and decision.metrics["open_rate"] == score


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("zero_opens", "fifth", "score"), [
    ("a.example", "a.example", 1),  # the 5th place goes to a.example (name order)
    ("b.example", "a.example", 5),  # b.example, tied on 500, is sixth: its 0 % never counts
])
def test_open_rate_top_providers_ties_by_name(zero_opens: str, fifth: str, score: int,
                                              reverse: bool) -> None:
    delivered = {"gmail": 5_000, "microsoft": 4_000, "yahoo": 3_000, "apple": 2_000,
                 "b.example": 500, "a.example": 500, "c.example": 400}
    providers = tuple(
        ProviderCounts(name, n, 0 if name == zero_opens else n * 3 // 10,
                       n, 0 if name == zero_opens else n * 3 // 10)
        for name, n in delivered.items())
    decision = decide(counts(providers=providers[::-1] if reverse else providers))
    tops = [p["provider"] for p in decision.explanation["top_providers"]]  # type: ignore[attr-defined]
    assert tops == ["gmail", "microsoft", "yahoo", "apple", fifth]
    assert decision.metrics is not None and decision.metrics["open_rate"] == score


def test_select_top_providers_skips_no_long_delivery() -> None:
    providers = [ProviderCounts("zero", 0, 0, 0, 0), ProviderCounts("one", 1, 0, 1, 0)]
    assert [p.provider for p in select_top_providers(providers, 5)] == ["one"]


def test_open_rate_all_providers_fallback() -> None:
    # 20 small domains of 10 deliveries: top 5 sum to 50 < 100, no provider reaches 100.
    providers = tuple(ProviderCounts(f"d{i:02}.example", 10, 0, 10, 0) for i in range(20))
    decision = decide(counts(providers=providers, delivered_long=200, opened_long=8))
    text = metric_text(decision, "open_rate")
    assert text["measure"] == "all providers long window fallback"
    assert decision.rates["open_rate"] == (8, 200)
    assert decision.metrics is not None and decision.metrics["open_rate"] == 1  # 4 %
    available = [c["available"] for c in text["candidates"]]  # type: ignore[union-attr]
    assert available == [False] * 7 + [True]


def test_zero_denominator_is_rate_zero() -> None:
    decision = decide(counts(providers=(), delivered_long=0, opened_long=0,
                             sent_recipients_long=0, sent_engaged_recipients=0))
    assert decision.rates["open_rate"] == (0, 1)
    assert decision.rates["engagement_recency"] == (0, 1)
    assert decision.metrics == {"engagement_recency": 1, "open_rate": 1,
                                "bounce_classification": 5, "bounce_rate": 5, "spam_rate": 5}


# -- the composite score

#: numerator over 10,000 that gives each metric each score (from the band edges).
RECIPES = {
    "spam_rate": {5: 0, 4: 5, 3: 10, 2: 20, 1: 30},
    "bounce_rate": {5: 0, 4: 100, 3: 200, 2: 500, 1: 1_000},
    "bounce_classification": {5: 0, 4: 10, 3: 50, 2: 100, 1: 300},
    "open_rate": {5: 2_000, 4: 1_500, 3: 1_000, 2: 500, 1: 0},
    "engagement_recency": {5: 5_000, 4: 3_500, 3: 2_000, 2: 1_000, 1: 0},
}


def scored(spam: int, bc: int, br: int, er: int, op: int,
           model: ScoringModel = DEFAULT_MODEL) -> ScoreDecision:
    c = counts(spam_reports_short=RECIPES["spam_rate"][spam],
               spam_reports_long=RECIPES["spam_rate"][spam],
               block_bounces_short=RECIPES["bounce_classification"][bc],
               block_bounces_long=RECIPES["bounce_classification"][bc],
               invalid_bounces_short=RECIPES["bounce_rate"][br],
               invalid_bounces_long=RECIPES["bounce_rate"][br],
               sent_engaged_recipients=RECIPES["engagement_recency"][er],
               opened_long=RECIPES["open_rate"][op],
               providers=(ProviderCounts("gmail", 10_000, RECIPES["open_rate"][op], 10_000,
                                         RECIPES["open_rate"][op]),))
    decision = decide(c, model)
    assert decision.metrics == {"spam_rate": spam, "bounce_classification": bc,
                                "bounce_rate": br, "engagement_recency": er, "open_rate": op}
    return decision


@pytest.mark.parametrize(("scores", "mean", "mean_decimal", "rounded", "cap", "score"), [
    ((5, 5, 5, 5, 5), "5", "5", 5, 6, 5),
    ((2, 3, 2, 3, 3), "5/2", "2.5", 3, 3, 3),  # half up: 2.5 -> 3
    ((3, 2, 2, 3, 2), "49/20", "2.45", 2, 3, 2),
    ((4, 4, 3, 4, 3), "73/20", "3.65", 4, 4, 4),
    ((5, 5, 5, 5, 1), "22/5", "4.4", 4, 2, 2),  # one metric at 1 holds the score at 2
    ((1, 5, 5, 5, 5), "19/5", "3.8", 4, 2, 2),
])
def test_weighted_mean_rounding_and_cap(scores: tuple[int, int, int, int, int], mean: str,
                                        mean_decimal: str, rounded: int, cap: int,
                                        score: int) -> None:
    e = scored(*scores).explanation
    assert (e["weighted_mean"], e["weighted_mean_decimal"], e["rounded"], e["cap"]) == (
        mean, mean_decimal, rounded, cap)
    assert e["cap_applied"] is (cap < rounded)
    assert e["score"] == score
    assert scored(*scores).score == score


def test_cap_above_lowest_setting() -> None:
    no_headroom = dataclasses.replace(DEFAULT_MODEL, version="v1-cap0", cap_above_lowest=0)
    assert scored(4, 5, 5, 5, 5).score == 5  # 4.7 -> 5, cap 5
    assert scored(4, 5, 5, 5, 5, no_headroom).score == 4  # cap 4 + 0


# -- eligibility

@pytest.mark.parametrize(("processed_long", "open_tracking", "eligibility", "reasons"), [
    (1_000, True, Eligibility.ELIGIBLE, []),
    (999, True, Eligibility.LOW_VOLUME, ["low_volume"]),
    (1_000, False, Eligibility.OPEN_TRACKING_OFF, ["open_tracking_off"]),
    (999, False, Eligibility.OPEN_TRACKING_OFF, ["open_tracking_off", "low_volume"]),
])
def test_eligibility(processed_long: int, open_tracking: bool, eligibility: Eligibility,
                     reasons: list[str]) -> None:
    c = counts(processed_long=processed_long, processed_short=processed_long)
    decision = score_day(c, DEFAULT_MODEL, open_tracking=open_tracking)
    assert decision.eligibility == eligibility
    assert decision.explanation["eligibility_reasons"] == reasons
    if eligibility == Eligibility.ELIGIBLE:
        assert decision.score == 5
        assert decision.metrics is not None
    else:
        assert decision.score is None and decision.metrics is None
        assert decision.explanation["score"] is None
        assert metric_text(decision, "spam_rate")["score"] is None
        assert decision.rates["spam_rate"] == (0, 10_000)  # rates are still explained


def test_eligibility_follows_min_messages_setting() -> None:
    model = dataclasses.replace(DEFAULT_MODEL, version="v1-small", min_messages=500)
    assert decide(counts(processed_long=500, processed_short=500), model).score == 5


def test_negative_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="spam_reports_long"):
        decide(counts(spam_reports_long=-1))


# -- the worked example of docs/scoring.md, computed by hand there

WORKED = WindowCounts(
    account_id=1, day=DAY, processed_short=2_000, processed_long=10_000,
    delivered_short=1_900, delivered_long=9_500, opened_long=1_805,
    invalid_bounces_short=30, invalid_bounces_long=120,
    block_bounces_short=8, block_bounces_long=60,
    spam_reports_short=2, spam_reports_long=5,
    engaged_recipients_short=700, engaged_recipients_long=2_600,
    sent_recipients_long=6_000, sent_engaged_recipients=3_000,
    providers=(ProviderCounts("gmail", 800, 150, 4_000, 840),
               ProviderCounts("microsoft", 500, 80, 2_500, 400),
               ProviderCounts("yahoo", 300, 45, 1_500, 210),
               ProviderCounts("apple", 100, 20, 500, 110),
               ProviderCounts("example.com", 20, 2, 90, 10),
               ProviderCounts("example.org", 10, 1, 50, 5)),
)


def test_worked_example_of_the_docs() -> None:
    decision = decide(WORKED)
    assert decision.eligibility == Eligibility.ELIGIBLE
    assert decision.metrics == {"spam_rate": 3, "bounce_rate": 4, "bounce_classification": 3,
                                "open_rate": 3, "engagement_recency": 5}
    assert decision.rates == {"spam_rate": (2, 1_900), "bounce_rate": (30, 2_000),
                              "bounce_classification": (60, 10_000), "open_rate": (210, 1_500),
                              "engagement_recency": (3_000, 6_000)}
    e = decision.explanation
    assert (e["weighted_mean"], e["weighted_mean_decimal"], e["rounded"]) == ("7/2", "3.5", 4)
    assert (e["lowest_metric_score"], e["cap"], e["cap_applied"], e["score"]) == (3, 4, False, 4)
    assert decision.score == 4
    spam = metric_text(decision, "spam_rate")
    assert (spam["rate_pct"], spam["rate_pct_exact"], spam["rate_pct_fraction"]) == (
        "0.105263", False, "2/19")
    opens = metric_text(decision, "open_rate")
    assert opens["measure"] == "provider yahoo long window"
    assert [c["measure"] for c in opens["candidates"]] == [  # type: ignore[union-attr]
        "top providers short window", "top providers long window",
        "provider gmail long window", "provider microsoft long window",
        "provider yahoo long window", "provider apple long window",
        "provider example.com long window", "all providers long window fallback"]
    assert e["model_version"] == "v1"
    assert json.loads(json.dumps(e)) == e


def test_to_day_result_copies_the_decision() -> None:
    decision = decide(WORKED)
    at = dt.datetime(2024, 7, 1, 1, 0, tzinfo=dt.UTC)
    result = to_day_result(decision, 1, DAY, at)
    assert result == DayResult(
        account_id=1, day=DAY, score=4, metrics=decision.metrics,
        eligibility=Eligibility.ELIGIBLE, model_version="v1", computed_at=at,
        counts=decision.counts, rates=decision.rates, explanation=decision.explanation)
    assert result.counts["processed_long"] == 10_000
    assert "providers" not in result.counts and "account_id" not in result.counts
