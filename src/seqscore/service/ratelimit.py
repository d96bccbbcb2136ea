"""Per-key, per-endpoint request limits (SendGrid's ``X-RateLimit-*``).

A fixed one-minute window per (key id, endpoint), counted in process memory:
right for the embedded default, where one process serves everything. A
scale-out deployment counts in the shared state store instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from seqscore.errors import RateLimited

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


class RateLimiter:
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
