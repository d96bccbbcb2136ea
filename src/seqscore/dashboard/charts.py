"""Line charts as geometry for inline SVG: no JavaScript, one point per day.

``day_chart`` turns a day series into a ``Chart`` (coordinates in the SVG's
own units, ticks, a text summary for ``<title>``/``<desc>``); the template
``_chart.html`` draws it. Days without a value leave a gap in the line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from seqscore.types import Day

LEFT, RIGHT, TOP, BOTTOM = 56, 12, 10, 26


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    value: int
    #: the point's own ``<title>`` ("2026-11-19: 4")
    label: str
    #: CSS class of the point ("s4" for scores)
    css: str


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A horizontal background stripe for one score."""

    y: float
    height: float
    css: str


@dataclass(frozen=True, slots=True)
class Chart:
    chart_id: str
    title: str
    desc: str
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    points: list[Point]
    #: SVG path data of the line, broken where a day has no value
    path: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bands: list[Band]


def _fmt(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _short_day(day: Day) -> str:
    return f"{day:%b} {day.day}"


def day_chart(chart_id: str, title: str, days: Sequence[Day], values: Sequence[int | None], *,
              width: int = 960, height: int = 220, scores: bool = True,
              value_text: Callable[[int], str] = str,
              tick_text: Callable[[int], str] | None = None) -> Chart:
    """A chart of one value per day (oldest first); ``None`` is a gap.

    ``scores``: the y axis runs 1..5 with a coloured stripe per score; else it
    runs from 0 to the largest value. ``value_text`` writes a value in titles and
    the description, ``tick_text`` on the y axis (default: ``value_text``).
    """
    bottom, right = height - BOTTOM, width - RIGHT
    low, high = (1, 5) if scores else (0, max([v for v in values if v is not None], default=0))
    span = max(high - low, 1)
    step = (right - LEFT) / max(len(days) - 1, 1)

    def y_of(value: float) -> float:
        return bottom - (value - low) / span * (bottom - TOP)

    points: list[Point] = []
    path: list[str] = []
    previous: int | None = None
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        if value is None:
            previous = None
            continue
        x, y = LEFT + i * step, y_of(value)
        path.append(f"{'L' if previous is not None else 'M'}{_fmt(x)} {_fmt(y)}")
        points.append(Point(x, y, value, f"{day.isoformat()}: {value_text(value)}",
                            f"s{value}" if scores else "v"))
        previous = value

    if scores:
        y_ticks = [Tick(y_of(s), str(s)) for s in range(1, 6)]
        half = (bottom - TOP) / span / 2
        bands = [Band(y_of(s) - half, 2 * half, f"s{s}") for s in range(1, 6)]
    else:
        y_ticks = [Tick(y_of(v), (tick_text or value_text)(v)) for v in _round_ticks(high)]
        bands = []
    x_ticks = [Tick(LEFT + i * step, _short_day(d)) for i, d in enumerate(days)
               if d.day in (1, 15)]
    return Chart(chart_id, title, _describe(title, days, values, value_text), width, height,
                 LEFT, right, TOP, bottom, points, " ".join(path), y_ticks, x_ticks, bands)


def compact(value: int) -> str:
    """A short axis label: 950, 12k, 1.5M."""
    for limit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".removesuffix(".0") + suffix
    return str(value)


def _round_ticks(high: int) -> list[int]:
    if high <= 0:
        return [0]
    # the smallest 1-2-5 step giving at most five steps up to ``high`` (high / magnitude
    # is below 100, so a step of 20 magnitudes always does)
    magnitude = 10 ** max(len(str(high)) - 2, 0)
    step = next(s * magnitude for s in (1, 2, 5, 10, 20) if high / (s * magnitude) <= 5)
    return list(range(0, high + 1, step))


def _describe(title: str, days: Sequence[Day], values: Sequence[int | None],
              value_text: Callable[[int], str]) -> str:
    known = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
    if not days:
        return f"{title}: no days."
    period = f"{title} from {days[0].isoformat()} to {days[-1].isoformat()}"
    if not known:
        return f"{period}: no values yet."
    low_day, low = min(known, key=lambda dv: (dv[1], dv[0]))
    high_day, high = max(known, key=lambda dv: (dv[1], dv[0]))
    last_day, last = known[-1]
    gaps = len(days) - len(known)
    text = (f"{period}: {len(known)} of {len(days)} days have a value. Latest "
            f"{value_text(last)} on {last_day.isoformat()}; lowest {value_text(low)} on "
            f"{low_day.isoformat()}; highest {value_text(high)} on {high_day.isoformat()}.")
    return text + (f" {gaps} days without a value are gaps in the line." if gaps else "")
