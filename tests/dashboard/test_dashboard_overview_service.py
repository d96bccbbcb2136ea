"""The dashboard's pure parts: sorting, filtering, parameters, band ranges and charts."""

from __future__ import annotations

import datetime as dt

import pytest

from seqscore.dashboard.charts import compact, day_chart
from seqscore.dashboard.views import band_ranges
from seqscore.errors import InvalidInput
from seqscore.service.account_page import MetricExplanation
from seqscore.service.overview import (
    AccountRef,
    OverviewQuery,
    OverviewRow,
    RowStatus,
    filter_rows,
    parse_overview_query,
    sort_rows,
)
from seqscore.types import METRIC_NAMES


def row(name: str, score: int | None = None, lowest: int | None = None, *,
        status: RowStatus | None = None, volume: int | None = 1000,
        user_id: int = 0) -> OverviewRow:
    metrics = None
    if score is not None:
        metrics = dict.fromkeys(METRIC_NAMES, score) | {"spam_rate": lowest or score}
    status = status or (RowStatus.SCORED if score is not None else RowStatus.INELIGIBLE)
    return OverviewRow(AccountRef(user_id or hash(name) % 10_000, name, "subuser"), status,
                       score, metrics, None if status == RowStatus.NOT_COMPUTED else "eligible",
                       volume, False)


ROWS = [row("b", 4), row("a", 4), row("c", 2), row("d", 4, lowest=3),
        row("e", status=RowStatus.NOT_COMPUTED, volume=None), row("f"), row("g", 5)]


def names(rows: list[OverviewRow]) -> list[str]:
    return [r.account.username for r in rows]


def test_default_sort_is_worst_first_then_unscored():
    assert names(sort_rows(ROWS, OverviewQuery())) == ["c", "d", "a", "b", "g", "e", "f"]


def test_descending_keeps_name_order_in_ties_and_unscored_last():
    query = OverviewQuery(sort="score", order="desc")
    assert names(sort_rows(ROWS, query)) == ["g", "a", "b", "d", "c", "e", "f"]


def test_metric_sort_breaks_ties_by_score():
    query = OverviewQuery(sort="spam_rate")
    assert names(sort_rows(ROWS, query)) == ["c", "d", "a", "b", "g", "e", "f"]


def test_volume_sort_puts_unknown_volume_last():
    rows = [row("x", 3, volume=5), row("y", 3, volume=50), row("z", volume=None)]
    assert names(sort_rows(rows, OverviewQuery(sort="volume", order="desc"))) == ["y", "x", "z"]


@pytest.mark.parametrize(("query", "expected"), [
    (OverviewQuery(q="A"), ["a"]),
    (OverviewQuery(status="ineligible"), ["f"]),
    (OverviewQuery(status="not_computed"), ["e"]),
    (OverviewQuery(max_score=2), ["c"]),
    (OverviewQuery(max_score=4, status="scored"), ["b", "a", "c", "d"]),
])
def test_filters(query, expected):
    assert names(filter_rows(ROWS, query)) == expected


def test_filter_by_exact_user_id():
    rows = [row("a", 3, user_id=12), row("b", 3, user_id=123)]
    assert names(filter_rows(rows, OverviewQuery(q="12"))) == ["a"]


def test_parse_overview_query_defaults_and_errors():
    assert parse_overview_query({}) == OverviewQuery()
    assert parse_overview_query({"sort": "", "max_score": ""}) == OverviewQuery()
    with pytest.raises(InvalidInput) as caught:
        parse_overview_query({"sort": "x", "order": "up", "status": "gone", "max_score": "6",
                              "q": "x" * 101})
    assert [e.field for e in caught.value.errors] == ["sort", "order", "status", "q",
                                                       "max_score"]


def explanation(direction: str, edges: list[str]) -> MetricExplanation:
    return MetricExplanation("spam_rate", 4, "0.08", True, 8, 10_000, "m", "r", direction,
                             edges, "0.30", [])


def test_band_ranges_lower_is_better():
    ranges = band_ranges(explanation("lower_is_better", ["0.05", "0.10", "0.20", "0.30"]))
    assert [(r.score, r.text) for r in ranges] == [
        (5, "< 0.05 %"), (4, "0.05 to < 0.10 %"), (3, "0.10 to < 0.20 %"),
        (2, "0.20 to < 0.30 %"), (1, "≥ 0.30 %")]


def test_band_ranges_higher_is_better():
    ranges = band_ranges(explanation("higher_is_better", ["20", "15", "10", "5"]))
    assert [(r.score, r.text) for r in ranges] == [
        (5, "≥ 20 %"), (4, "15 to < 20 %"), (3, "10 to < 15 %"), (2, "5 to < 10 %"),
        (1, "< 5 %")]


def test_band_ranges_without_edges():
    assert band_ranges(explanation("", [])) == []


def test_chart_has_one_point_per_value_and_breaks_at_gaps():
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(6)]
    chart = day_chart("c", "Score", days, [1, 2, None, 4, 5, 5])
    assert [p.value for p in chart.points] == [1, 2, 4, 5, 5]
    assert chart.path.count("M") == 2 and chart.path.count("L") == 3
    assert [p.css for p in chart.points] == ["s1", "s2", "s4", "s5", "s5"]
    assert chart.points[0].y > chart.points[-1].y  # 5 is drawn above 1
    assert chart.points[0].label == "2026-11-01: 1"
    assert "5 of 6 days have a value" in chart.desc
    assert "lowest 1 on 2026-11-01" in chart.desc and "1 days without a value" in chart.desc
    assert [t.label for t in chart.x_ticks] == ["Nov 1"]


def test_volume_chart_scales_from_zero():
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(3)]
    chart = day_chart("v", "Volume", days, [0, 500, 1000], scores=False,
                      value_text=lambda v: f"{v:,}")
    assert chart.bands == []
    assert [t.label for t in chart.y_ticks] == ["0", "200", "400", "600", "800", "1,000"]
    assert chart.points[0].y == chart.bottom and chart.points[-1].y == chart.top


@pytest.mark.parametrize("high", [1, 7, 9, 10, 55, 99, 100, 999, 1000, 4321, 90_000, 99_999,
                                  338_471, 1_000_000, 123_456_789])
def test_volume_ticks_are_round_and_few(high):
    days = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    ticks = [int(t.label) for t in day_chart("v", "V", days, [0, high], scores=False).y_ticks]
    assert ticks[0] == 0 and ticks[-1] <= high and 2 <= len(ticks) <= 6
    step = ticks[1] - ticks[0]
    assert str(step).strip("0") in {"1", "2", "5"}


def test_compact_labels():
    assert [compact(v) for v in (950, 1000, 12_500, 300_000, 1_500_000)] == [
        "950", "1k", "12.5k", "300k", "1.5M"]


def test_chart_without_values():
    days = [dt.date(2026, 11, 1)]
    chart = day_chart("c", "Score", days, [None])
    assert chart.points == [] and chart.path == ""
    assert "no values yet" in chart.desc
