"""Per-key, per-endpoint request limits (SendGrid's ``X-RateLimit-*``).

A fixed one-minute window per (key id, endpoint), aligned on the wall clock's
minutes. Two counters:

- ``RateLimiter`` counts in process memory: right for the embedded default,
  where one process serves everything.
- ``SharedRateLimiter`` counts in the state store, one UPSERT per request, so
  the limit holds across every API process behind a load balancer (their
  clocks must agree to a second or so, as NTP keeps them).

``make_rate_limiter`` picks one from the ``rate_limit_store`` setting: ``auto``
(the default) shares the count when the state store is PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from seqscore.errors import RateLimited
from seqscore.storage.state import StateStore

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class RateStatus:
    limit: int
    remaining: int
    reset_epoch_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_s),
        }


class Limiter(Protocol):
    def hit(self, key_id: str, endpoint: str) -> RateStatus:
        """Count one request; raise ``RateLimited`` (with the status) past the limit."""
        ...


class RateLimiter:
    """Counts in this process's memory."""

    def __init__(self, per_minute: int, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._limit = per_minute
        self._wall_clock = wall_clock
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key_id: str, endpoint: str) -> RateStatus:
        """Count one request; raise ``RateLimited`` (with the status) past the limit."""
        now = int(self._wall_clock())
        window_start = now - now % WINDOW_SECONDS
        reset = window_start + WINDOW_SECONDS
        bucket = (key_id, endpoint)
        with self._lock:
            start, count = self._windows.get(bucket, (window_start, 0))
            if start != window_start:
                count = 0
                if len(self._windows) > 100_000:
                    self._windows = {
                        k: v for k, v in self._windows.items() if v[0] == window_start
                    }
            count += 1
            self._windows[bucket] = (window_start, count)
        if count > self._limit:
            raise RateLimited(self._limit, reset)
        return RateStatus(self._limit, self._limit - count, reset)


class SharedRateLimiter:
    """Counts in the state store: a (key_id, endpoint, window_start) row per key,
    endpoint and minute, incremented by one UPSERT ... RETURNING count per request
    (atomic across processes). Each process deletes windows older than the previous
    one once a minute, so the table holds about two minutes of keys.

    Raises ``Unavailable`` when the state store is (as every other request would)."""

    def __init__(self, state: StateStore, per_minute: int, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._limit = per_minute
        self._wall_clock = wall_clock
        self._purged_before = 0
        self._lock = threading.Lock()

    def hit(self, key_id: str, endpoint: str) -> RateStatus:
        """Count one request; raise ``RateLimited`` (with the status) past the limit."""
        now = int(self._wall_clock())
        window_start = now - now % WINDOW_SECONDS
        reset = window_start + WINDOW_SECONDS
        self._purge(window_start - WINDOW_SECONDS)
        count = self._state.count_request(key_id, endpoint, window_start)
        if count > self._limit:
            raise RateLimited(self._limit, reset)
        return RateStatus(self._limit, self._limit - count, reset)

    def _purge(self, before: int) -> None:
        with self._lock:
            if before <= self._purged_before:
                return
            self._purged_before = before
        self._state.forget_rate_windows_before(before)


#: Values of the ``rate_limit_store`` setting.
RATE_LIMIT_STORES = ("auto", "memory", "state")


def make_rate_limiter(store: str, per_minute: int, state: StateStore) -> Limiter:
    """The limiter ``store`` names: ``memory`` (this process), ``state`` (the state
    store, shared by every process), or ``auto``: ``state`` on PostgreSQL, else
    ``memory`` (an embedded SQLite installation has one serving process)."""
    if store not in RATE_LIMIT_STORES:
        raise ValueError(f"rate_limit_store must be one of {', '.join(RATE_LIMIT_STORES)}: "
                         f"{store!r}")
    if store == "state" or (store == "auto" and state.dialect == "postgresql"):
        return SharedRateLimiter(state, per_minute)
    return RateLimiter(per_minute)
