"""The event store interface, and opening one by URL.

An event store keeps normalised events (``seqscore.event_schema.EVENT_SCHEMA``),
append-only. ``append`` is all-or-nothing and durable when it returns. Readers
get an Ibis table of the events, possibly holding repeated copies of a retried
event: de-duplication on (account_id, event_id) is the reader's job (the window
aggregation does it exactly) and compaction's, which removes copies so retries
never grow the store without bound.

Only ``open_event_store`` names concrete engines.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    stored: int
    #: events of the batch already in the store (detected at write time), not stored again
    duplicates: int = 0


class EventStore(Protocol):
    def append(self, batch: pa.Table) -> AppendOutcome:
        """Store a batch of ``EVENT_SCHEMA`` rows atomically and durably."""
        ...

    def reading(self) -> AbstractContextManager[Any]:
        """A context giving an Ibis table of all stored events (duplicates possible)."""
        ...

    def days_with_events(self, account_id: int) -> list[dt.date]:
        ...

    def delete_before(self, day: dt.date) -> int:
        """Delete events whose ``day`` is before ``day``; returns how many."""
        ...

    def compact(self) -> int:
        """Remove repeated copies of (account_id, event_id); returns how many."""
        ...

    def count(self) -> int:
        """Stored rows (copies included)."""
        ...

    def close(self) -> None:
        ...


def open_event_store(
    url: str, *, memory_limit: str = "1GB", threads: int | None = None
) -> EventStore:
    """Open the event store a URL names: ``duckdb:///path/to/events.duckdb``."""
    if url.startswith("duckdb://"):
        from seqscore.storage.duckdb_events import DuckDBEventStore

        return DuckDBEventStore(url.removeprefix("duckdb:///"), memory_limit=memory_limit,
                                threads=threads)
    raise ValueError(f"unsupported event store URL {url!r}: use duckdb:///path")
