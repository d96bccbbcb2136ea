"""Realistic SendGrid event streams for demos, tests and benchmarks.

``generate`` yields webhook batches ``(account username, events)`` as SendGrid
would post them to a receiver; ``write_jsonl`` writes each account's events to
``<directory>/<username>.jsonl`` (one event per line, in arrival order: what
``import --account USERNAME`` reads); ``posts`` yields ``generate``'s batches
as webhook bodies, ready to post or ingest (``merged_posts``: fewer, larger
ones). All take the account plans
(``default_plans``) or just a seed. Everything is deterministic: the same plans
and days give the same bytes, whatever the machine.

Days: the stream covers ``days`` UTC days ending with ``end_day`` (default:
the day before ``today``; the generator never reads a clock). Events dated
after ``end_day`` are not generated; events dated within it that arrive after
it (late ones) come in the last batches.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from seqscore.demo.mail import DAY_SECONDS, MailSimulation
from seqscore.demo.plans import AccountPlan, default_plans
from seqscore.demo.webhook import (
    DEFAULT_QUIRKS,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    Outbox,
    Quirks,
    batches,
)

__all__ = ["DEFAULT_DAYS", "Batch", "JsonlFile", "Period", "Post", "generate", "merged_posts",
           "period", "posts", "write_jsonl"]

DEFAULT_DAYS = 120
_EPOCH = dt.date(1970, 1, 1)


class Post(NamedTuple):
    """One webhook POST as bytes: the account it is for, the body (a JSON array) and
    how many events it holds."""

    account: str
    body: bytes
    events: int


class Batch(NamedTuple):
    """One webhook POST: the account it is for (payloads do not say) and its events.

    ``events`` are dicts ready to serialise; ``webhook.batch_body`` gives the
    exact body the size limit was checked on.
    """

    account: str
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Period:
    """The UTC days a stream covers: ``days`` days ending with ``end_day``."""

    end_day: dt.date
    days: int

    @property
    def start_day(self) -> dt.date:
        return self.end_day - dt.timedelta(days=self.days - 1)

    @property
    def start_ts(self) -> int:
        """Unix seconds of the first day's 00:00 UTC."""
        return (self.start_day - _EPOCH).days * DAY_SECONDS

    @property
    def end_ts(self) -> int:
        """Unix seconds just after the last day (exclusive bound of event times)."""
        return ((self.end_day - _EPOCH).days + 1) * DAY_SECONDS


def period(*, days: int = DEFAULT_DAYS, end_day: dt.date | None = None,
           today: dt.date | None = None) -> Period:
    """``days`` days ending with ``end_day``, or with the day before ``today``.

    Raises ``ValueError`` when neither is given, or ``days`` < 1.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if end_day is None:
        if today is None:
            raise ValueError("give end_day or today (the generator reads no clock)")
        end_day = today - dt.timedelta(days=1)
    return Period(end_day, days)


@dataclass(frozen=True, slots=True)
class JsonlFile:
    """One written file: the account, where, and how many lines (events, duplicates included)."""

    account: str
    path: Path
    events: int


class _AccountStream:
    """One account's simulation and outbox: per day, its batches in arrival order."""

    def __init__(self, plan: AccountPlan, span: Period, quirks: Quirks, max_bytes: int,
                 max_events: int) -> None:
        self.rng = rng = random.Random(f"{plan.seed}/{plan.username}")
        self.outbox = Outbox(rng, quirks, start_ts=span.start_ts, end_ts=span.end_ts)
        self.mail = MailSimulation(plan, rng, start_ts=span.start_ts, days=span.days,
                                   end_ts=span.end_ts, post=self.outbox.post)
        self.limits = max_bytes, max_events

    def _cut(self, events: list[dict[str, Any]]
             ) -> Iterator[tuple[list[dict[str, Any]], list[bytes]]]:
        max_bytes, max_events = self.limits
        return batches(events, self.rng, self.outbox.batch_retry, max_bytes=max_bytes,
                       max_events=max_events)

    def day(self, day: int) -> Iterator[tuple[list[dict[str, Any]], list[bytes]]]:
        """Simulate ``day`` and yield the batches arriving on it."""
        self.mail.run_day(day)
        yield from self._cut(self.outbox.arrived(day))

    def rest(self) -> Iterator[tuple[list[dict[str, Any]], list[bytes]]]:
        """The batches arriving after the last day (late events of its last hours)."""
        for day in self.outbox.pending_days():
            yield from self._cut(self.outbox.arrived(day))


def _plans(source: Sequence[AccountPlan] | int, volume_scale: float) -> list[AccountPlan]:
    if isinstance(source, int):
        return default_plans(source, volume_scale=volume_scale)
    plans = list(source)
    if len({p.username for p in plans}) != len(plans):
        raise ValueError("account usernames must be unique")
    return plans


def generate(source: Sequence[AccountPlan] | int, *, days: int = DEFAULT_DAYS,
             end_day: dt.date | None = None, today: dt.date | None = None,
             volume_scale: float = 1.0, quirks: Quirks = DEFAULT_QUIRKS,
             max_batch_bytes: int = MAX_BATCH_BYTES,
             max_batch_events: int = MAX_BATCH_EVENTS) -> Iterator[Batch]:
    """Webhook batches of every planned account, in arrival order, day by day.

    ``source``: the plans, or a seed for ``default_plans(seed, volume_scale=...)``
    (``volume_scale`` applies only then; plans carry their own). Period: see
    ``period``. Each day yields, account by account in plan order, the batches
    of the events arriving that day; within an account events are in arrival
    order. Each batch holds at most ``max_batch_events`` events and its compact
    JSON body at most ``max_batch_bytes`` bytes. Lazy: memory holds one day of
    arrivals per account, not the stream.
    """
    for username, events, _ in _batches(source, days=days, end_day=end_day, today=today,
                                        volume_scale=volume_scale, quirks=quirks,
                                        max_batch_bytes=max_batch_bytes,
                                        max_batch_events=max_batch_events):
        yield Batch(username, list(events))


def posts(source: Sequence[AccountPlan] | int, *, days: int = DEFAULT_DAYS,
          end_day: dt.date | None = None, today: dt.date | None = None,
          volume_scale: float = 1.0, quirks: Quirks = DEFAULT_QUIRKS,
          max_batch_bytes: int = MAX_BATCH_BYTES,
          max_batch_events: int = MAX_BATCH_EVENTS) -> Iterator[Post]:
    """``generate``'s batches as the webhook POSTs themselves: the same batches in the
    same order, each as its body (exactly ``batch_body(batch.events)``, but every
    event is encoded once, not twice)."""
    for username, events, parts in _batches(source, days=days, end_day=end_day, today=today,
                                            volume_scale=volume_scale, quirks=quirks,
                                            max_batch_bytes=max_batch_bytes,
                                            max_batch_events=max_batch_events):
        yield Post(username, b"[" + b",".join(parts) + b"]", len(events))


def merged_posts(source: Iterable[Post], *, max_events: int, max_bytes: int
                 ) -> Iterator[Post]:
    """``source``'s posts with each account's consecutive posts merged into one body
    of at most ``max_events`` events and ``max_bytes`` bytes (a post larger on its
    own stays whole): the same events, each account's in the same order, in fewer,
    larger bodies. A body is yielded when the account's next post would not fit, and
    the rest at the end, in order of the accounts' first posts. A repeated post (a
    batch retry) may then share a body with its original."""
    held: dict[str, tuple[list[bytes], int, int]] = {}  # account -> inner parts, events, bytes
    for post in source:
        inner = post.body[1:-1]
        if not inner:
            continue
        parts, events, size = held.get(post.account, ([], 0, 1))
        if parts and (events + post.events > max_events or size + len(inner) + 1 > max_bytes):
            yield Post(post.account, b"[" + b",".join(parts) + b"]", events)
            parts, events, size = [], 0, 1
        parts.append(inner)
        held[post.account] = (parts, events + post.events, size + len(inner) + 1)
    for account, (parts, events, _) in held.items():
        if parts:
            yield Post(account, b"[" + b",".join(parts) + b"]", events)


def _batches(source: Sequence[AccountPlan] | int, *, days: int, end_day: dt.date | None,
             today: dt.date | None, volume_scale: float, quirks: Quirks,
             max_batch_bytes: int, max_batch_events: int,
             ) -> Iterator[tuple[str, list[dict[str, Any]], list[bytes]]]:
    """(username, events, their encoded JSON) per batch: see ``generate``."""
    span = period(days=days, end_day=end_day, today=today)
    streams = [(plan.username, _AccountStream(plan, span, quirks, max_batch_bytes,
                                              max_batch_events))
               for plan in _plans(source, volume_scale)]
    for day in range(span.days):
        for username, stream in streams:
            for events, parts in stream.day(day):
                yield username, events, parts
    for username, stream in streams:
        for events, parts in stream.rest():
            yield username, events, parts


def write_jsonl(directory: str | Path, source: Sequence[AccountPlan] | int, *,
                days: int = DEFAULT_DAYS, end_day: dt.date | None = None,
                today: dt.date | None = None, volume_scale: float = 1.0,
                quirks: Quirks = DEFAULT_QUIRKS, compress: bool = False) -> list[JsonlFile]:
    """Write ``<directory>/<username>.jsonl`` (``.jsonl.gz`` when ``compress``) per account.

    Each file holds exactly the events ``generate`` yields for that account, one
    compact JSON object per line (``\\n``-terminated), in the same order;
    batch retries appear as repeated runs of lines. The directory is created if
    needed; existing files of the same names are replaced. Returns the files in
    plan order.
    """
    span = period(days=days, end_day=end_day, today=today)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[JsonlFile] = []
    for plan in _plans(source, volume_scale):
        path = folder / f"{plan.username}.jsonl{'.gz' if compress else ''}"
        stream = _AccountStream(plan, span, quirks, MAX_BATCH_BYTES, MAX_BATCH_EVENTS)
        count = 0
        out: io.BufferedIOBase
        with (gzip.GzipFile(path, "wb", mtime=0) if compress else path.open("wb")) as out:
            for day in range(span.days):
                for _, parts in stream.day(day):
                    out.write(b"\n".join(parts) + b"\n")
                    count += len(parts)
            for _, parts in stream.rest():
                out.write(b"\n".join(parts) + b"\n")
                count += len(parts)
        written.append(JsonlFile(plan.username, path, count))
    return written
