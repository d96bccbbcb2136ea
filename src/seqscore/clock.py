"""The one source of "now". Every component takes a Clock; tests and demos set it."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until moved (``set``/``advance``); thread-safe."""

    def __init__(self, instant: dt.datetime) -> None:
        self._lock = threading.Lock()
        self._now = _as_utc(instant)

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, instant: dt.datetime) -> None:
        with self._lock:
            self._now = _as_utc(instant)

    def advance(self, delta: dt.timedelta) -> None:
        with self._lock:
            self._now += delta


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO-8601 instant or date (``2026-11-20`` means 12:00 UTC that day)."""
    text = text.strip()
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        return dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return _as_utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def _as_utc(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def clock_from_setting(now_override: str | None) -> Clock:
    return FrozenClock(parse_instant(now_override)) if now_override else SystemClock()
