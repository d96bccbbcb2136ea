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
from collections.abc import Sequence
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
    #: Only one process at a time can write the store (the process that opened it):
    #: no other process can be computing from it either.
    single_process: bool

    def append(self, batch: pa.Table, *, batch_key: bytes | None = None) -> AppendOutcome:
        """Store a batch of ``EVENT_SCHEMA`` rows atomically and durably.

        ``batch_key`` identifies the batch's content (a keyed digest of the body it
        came from): a batch whose key was committed before is a retry, and is not
        stored again (``duplicates``)."""
        ...

    def append_many(self, batches: Sequence[tuple[pa.Table, bytes | None]]
                    ) -> list[AppendOutcome]:
        """``append`` of several batches in one transaction (group commit); all or
        nothing. One outcome per batch, in order."""
        ...

    def forget_batches_before(self, instant: dt.datetime) -> int:
        """Forget the keys of batches received before ``instant``; returns how many."""
        ...

    def reading(self) -> AbstractContextManager[Any]:
        """A context giving an Ibis table of all stored events (duplicates possible)."""
        ...

    def days_with_events(self, account_id: int) -> list[dt.date]:
        ...

    def delete_before(self, day: dt.date) -> int:
        """Delete events whose ``day`` is before ``day``; returns how many."""
        ...

    def compact(self, *, ingested_since: dt.datetime | None = None) -> int:
        """Remove repeated copies of (account_id, event_id); returns how many.

        ``ingested_since``: only among the days that received events since then."""
        ...

    def count(self) -> int:
        """Stored rows (copies included)."""
        ...

    def close(self) -> None:
        ...


def open_event_store(
    url: str, *, memory_limit: str = "1GB", threads: int | None = None, wal_mb: int = 128,
    compact_grace_seconds: float | None = None, compact_target_bytes: int | None = None,
) -> EventStore:
    """Open the event store a URL names: ``duckdb:///path/to/events.duckdb``, or a
    Parquet lake: ``parquet:///path/to/folder`` or an object-store URL pyarrow
    knows (``s3://bucket/prefix``, ``gs://...``; see ``parquet_events``).

    ``wal_mb``: DuckDB checkpoints its write-ahead log into the file beyond this size.
    ``compact_grace_seconds``, ``compact_target_bytes``: the lake's compaction
    (``ParquetEventStore``); ignored by DuckDB."""
    if url.startswith("duckdb://"):
        from seqscore.storage.duckdb_events import DuckDBEventStore

        return DuckDBEventStore(url.removeprefix("duckdb:///"), memory_limit=memory_limit,
                                threads=threads, wal_mb=wal_mb)
    from seqscore.storage.parquet_events import ParquetEventStore, is_lake_url

    if is_lake_url(url):
        lake: dict[str, Any] = {"memory_limit": memory_limit, "threads": threads}
        if compact_grace_seconds is not None:
            lake["grace_seconds"] = compact_grace_seconds
        if compact_target_bytes is not None:
            lake["target_file_bytes"] = compact_target_bytes
        return ParquetEventStore.from_url(url, **lake)
    raise ValueError(f"unsupported event store URL {url!r}: use duckdb:///path, "
                     "parquet:///path or an object-store URL (s3://bucket/prefix)")
