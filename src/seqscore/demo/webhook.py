"""How SendGrid posts events: arrival lag, late and repeated events, batches.

SendGrid batches the events of each sending server about every 30 s or at
768 KB, and retries a batch it had no 2xx for during up to 24 hours: events
arrive seconds after they happen, a few hours late, some twice, and a whole
batch now and then twice (``Quirks``). The ``Outbox`` of an account collects
events by arrival day; ``batches`` cuts one day's arrivals into bodies within
SendGrid's limits.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Final

import msgspec

__all__ = [
    "DEFAULT_QUIRKS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "NO_QUIRKS",
    "Outbox",
    "Quirks",
    "batch_body",
    "batches",
    "encode_event",
]

#: SendGrid's batch limits: 768 KB of JSON and (our choice, never exceeded) 2,500 events.
MAX_BATCH_BYTES: Final = 768 * 1024
MAX_BATCH_EVENTS: Final = 2_500
DAY_SECONDS: Final = 86_400
#: An event normally arrives 5..45 s after its timestamp (batching every ~30 s).
_LAG_MIN_S, _LAG_SPAN_S = 5, 40
_LATE_MIN_S, _LATE_MAX_S = 1_800, DAY_SECONDS

encode_event = msgspec.json.Encoder().encode
"""Compact JSON of one event (the bytes counted against ``MAX_BATCH_BYTES``)."""


def batch_body(events: list[dict[str, Any]]) -> bytes:
    """The webhook body of a batch: a compact JSON array, as sized by ``batches``."""
    return b"[" + b",".join(map(encode_event, events)) + b"]"


@dataclass(frozen=True, slots=True)
class Quirks:
    """How often real payloads misbehave, each in percent.

    ``duplicate_pct`` of events are posted a second time, identical, minutes to
    hours later; ``late_pct`` arrive 30 min to 24 h after their timestamp (in a
    later batch, often a later day); ``string_timestamp_pct`` carry their
    timestamp as a numeric string; ``batch_retry_pct`` of batches are posted
    again whole after the next one.
    """

    duplicate_pct: float = 0.1
    late_pct: float = 0.3
    string_timestamp_pct: float = 0.05
    batch_retry_pct: float = 0.2

    def __post_init__(self) -> None:
        for f in fields(self):
            if not 0.0 <= getattr(self, f.name) <= 100.0:
                raise ValueError(f"{f.name} must be a percentage in 0..100")
        per_event = self.duplicate_pct + self.late_pct + self.string_timestamp_pct
        if per_event > 100.0:
            raise ValueError("per-event quirks must add up to at most 100 %")


DEFAULT_QUIRKS: Final = Quirks()
#: Every event once, on time, with an integer timestamp.
NO_QUIRKS: Final = Quirks(0.0, 0.0, 0.0, 0.0)


class _Bucket:
    """One arrival day: arrival times (Unix seconds) and events, in posting order.

    Parallel lists rather than (arrival, event) tuples: millions of small tuples
    would keep the cyclic garbage collector busy for nothing.
    """

    __slots__ = ("arrivals", "events")

    def __init__(self) -> None:
        self.arrivals: list[int] = []
        self.events: list[dict[str, Any]] = []

    def in_order(self) -> list[dict[str, Any]]:
        """Events by arrival time; ties keep posting order (the sort is stable)."""
        events = self.events
        return [events[i] for i in sorted(range(len(events)), key=self.arrivals.__getitem__)]


class Outbox:
    """One account's events by the UTC day they arrive at the receiver.

    ``post`` takes events in any order; ``arrived(day)`` returns a day's events
    in arrival order once no later ``post`` can arrive on that day (for the
    simulation: once the day's messages are sent). Events dated at or after
    ``end_ts`` are dropped: they have not happened yet.
    """

    def __init__(self, rng: random.Random, quirks: Quirks, *, start_ts: int,
                 end_ts: int) -> None:
        self._rng, self._start, self._end = rng, start_ts, end_ts
        self._buckets: dict[int, _Bucket] = {}
        self._dup = quirks.duplicate_pct / 100
        self._late = self._dup + quirks.late_pct / 100
        self._string = self._late + quirks.string_timestamp_pct / 100
        self._lag_scale = _LAG_SPAN_S / (1.0 - self._string)
        self.batch_retry = quirks.batch_retry_pct / 100

    def _put(self, arrival: int, event: dict[str, Any]) -> None:
        day = (arrival - self._start) // DAY_SECONDS
        bucket = self._buckets.get(day)
        if bucket is None:
            bucket = self._buckets[day] = _Bucket()
        bucket.arrivals.append(arrival)
        bucket.events.append(event)

    def post(self, ts: int, event: dict[str, Any]) -> None:
        """Queue ``event`` (dated ``ts``, Unix seconds) with its arrival time."""
        if ts >= self._end:
            return
        rng = self._rng
        u = rng.random()
        if u >= self._string:  # the common case, inlined: on time, once
            arrival = ts + _LAG_MIN_S + int((u - self._string) * self._lag_scale)
            day = (arrival - self._start) // DAY_SECONDS
            bucket = self._buckets.get(day)
            if bucket is None:
                bucket = self._buckets[day] = _Bucket()
            bucket.arrivals.append(arrival)
            bucket.events.append(event)
        elif u < self._dup:
            first = ts + _LAG_MIN_S + int(rng.random() * _LAG_SPAN_S)
            self._put(first, event)
            self._put(first + 60 + int(rng.lognormvariate(7.5, 1.0)) % DAY_SECONDS, event)
        elif u < self._late:
            self._put(ts + _LATE_MIN_S + int(rng.random() * (_LATE_MAX_S - _LATE_MIN_S)),
                      event)
        else:
            event["timestamp"] = str(ts)
            self._put(ts + _LAG_MIN_S + int(rng.random() * _LAG_SPAN_S), event)

    def arrived(self, day: int) -> list[dict[str, Any]]:
        """The events arriving on ``day`` (0-based from ``start_ts``), in arrival order."""
        bucket = self._buckets.pop(day, None)
        return [] if bucket is None else bucket.in_order()

    def pending_days(self) -> list[int]:
        """Days that still hold events, ascending."""
        return sorted(self._buckets)


def batches(events: list[dict[str, Any]], rng: random.Random, retry: float, *,
            max_bytes: int = MAX_BATCH_BYTES, max_events: int = MAX_BATCH_EVENTS,
            ) -> Iterator[tuple[list[dict[str, Any]], list[bytes]]]:
    """Cut ``events`` (in arrival order) into batches: (events, their encoded JSON).

    A batch's body (``batch_body``: ``[`` + events joined by ``,`` + ``]``) is at
    most ``max_bytes`` and holds at most ``max_events`` events; a single event
    larger than ``max_bytes`` goes alone. With probability ``retry`` (0..1) a
    batch is yielded again after the next one (or last of all).
    """
    held: tuple[list[dict[str, Any]], list[bytes]] | None = None
    chunk: list[dict[str, Any]] = []
    parts: list[bytes] = []
    size = 1  # "[" and "]" less the first event's comma
    for event in events:
        data = encode_event(event)
        if chunk and (size + len(data) + 1 > max_bytes or len(chunk) >= max_events):
            yield chunk, parts
            if held is not None:
                yield held
                held = None
            if retry and rng.random() < retry:
                held = (chunk, parts)
            chunk, parts, size = [], [], 1
        chunk.append(event)
        parts.append(data)
        size += len(data) + 1
    if chunk:
        yield chunk, parts
        if retry and rng.random() < retry:
            yield chunk, parts
    if held is not None:
        yield held
