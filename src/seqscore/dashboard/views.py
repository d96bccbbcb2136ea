"""What the page templates need beyond the service's data: links, band ranges, charts.

Pure functions of the ``seqscore.service.overview`` data; no request, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from urllib.parse import urlencode

from seqscore.dashboard.charts import Chart, compact, day_chart
from seqscore.dashboard.render import METRIC_LABELS
from seqscore.service.account_page import AccountHistory, MetricExplanation
from seqscore.service.overview import OverviewData
from seqscore.types import METRIC_NAMES

#: The order a column sorts in when its header is first clicked.
FIRST_ORDER = {"username": "asc", "user_id": "asc", "volume": "desc"}


def overview_link(data: OverviewData, **changes: object) -> str:
    """The overview URL of ``data``'s day and query, with ``changes`` applied."""
    query = data.query
    params: dict[str, object] = {
        "date": data.day.isoformat(), "sort": query.sort, "order": query.order, "q": query.q,
        "status": query.status, "max_score": query.max_score or "",
    }
    params.update(changes)
    defaults = {"sort": "score", "order": "asc", "q": "", "status": "all", "max_score": ""}
    kept = {k: v for k, v in params.items() if v is not None and defaults.get(k) != v}
    return "/?" + urlencode(kept) if kept else "/"


@dataclass(frozen=True, slots=True)
class SortHeader:
    key: str
    label: str
    href: str
    #: "ascending"/"descending" on the sorted column, else None (aria-sort)
    aria_sort: str | None


def sort_header(data: OverviewData, key: str, label: str) -> SortHeader:
    """A column header link: toggles the order on the sorted column, else sorts by it."""
    query = data.query
    if query.sort == key:
        order = "desc" if query.order == "asc" else "asc"
        aria: str | None = "ascending" if query.order == "asc" else "descending"
    else:
        order, aria = FIRST_ORDER.get(key, "asc"), None
    return SortHeader(key, label, overview_link(data, sort=key, order=order), aria)


@dataclass(frozen=True, slots=True)
class BandRange:
    score: int
    #: the rates (percent) that get this score, e.g. "0.05 to < 0.1 %" or "< 0.05 %"
    text: str


def band_ranges(metric: MetricExplanation) -> list[BandRange]:
    """The rate range of each score 5..1 from the metric's band edges (percent).

    Lower is better: 5 below the first edge, ..., 1 from the last edge up; a rate
    on an edge takes the worse score. Higher is better: 5 from the first edge
    up, ..., 1 below the last; a rate on an edge takes the better score.
    """
    edges = metric.band_edges_pct
    if len(edges) != 4:
        return []
    if metric.direction == "lower_is_better":
        texts = [f"< {edges[0]} %", *(f"{a} to < {b} %" for a, b in pairwise(edges)),
                 f"≥ {edges[3]} %"]
    else:
        texts = [f"≥ {edges[0]} %", *(f"{b} to < {a} %" for a, b in pairwise(edges)),
                 f"< {edges[3]} %"]
    return [BandRange(5 - i, text) for i, text in enumerate(texts)]


def history_charts(history: AccountHistory) -> tuple[Chart, list[Chart], Chart]:
    """The score chart, one chart per metric, and the volume chart."""
    days = [p.day for p in history.points]
    score = day_chart("chart-score", "Score", days, [p.score for p in history.points])
    metrics = [
        day_chart(f"chart-{m}", METRIC_LABELS[m], days,
                  [p.metrics[m] if p.metrics else None for p in history.points],
                  width=480, height=170)
        for m in METRIC_NAMES
    ]
    volume = day_chart("chart-volume", "Processed messages in the 30-day window", days,
                       [p.volume for p in history.points], height=180, scores=False,
                       value_text=lambda v: f"{v:,}", tick_text=compact)
    return score, metrics, volume


@dataclass(frozen=True, slots=True)
class MixBar:
    label: str
    value: int
    #: share of processed messages, for the bar's width (0..1)
    share: float
    css: str


def mix_bars(processed: int, items: list[tuple[str, int, str]]) -> list[MixBar]:
    """Bars for the event mix, each as a share of ``processed`` (capped at 1)."""
    return [MixBar(label, value, min(value / processed, 1.0) if processed else 0.0, css)
            for label, value, css in items]
