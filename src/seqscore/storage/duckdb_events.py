"""The embedded event store: one DuckDB file, owned by one process.

DuckDB lets a single process write a database file, so the process that opens
the store (``seqscore serve`` in the embedded default) owns it; another process
opening it gets ``EventStoreBusy`` naming the holder. Inside the owning process
writes are serialised by one lock (DuckDB commits are durable: its WAL is synced
on commit), and readers take their own cursors beside the writer.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa

from seqscore.errors import Unavailable
from seqscore.event_schema import EVENT_SCHEMA
from seqscore.storage.events import AppendOutcome

TABLE = "events"


class EventStoreBusy(Unavailable):
    """Another process holds the event store's file."""


def _connect(path: Path, memory_limit: str, threads: int | None) -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {"memory_limit": memory_limit}
    if threads:
        config["threads"] = threads
    try:
        return duckdb.connect(str(path), config=config)
    except duckdb.IOException as exc:
        message = str(exc)
        if "lock" in message.lower():
            holder = re.search(r"PID (\d+)", message)
            who = f"process {holder.group(1)}" if holder else "another process"
            raise EventStoreBusy(
                f"the event store {path} is in use by {who} (probably `seqscore serve`); "
                "send the work through that server, or stop it first"
            ) from exc
        raise


class DuckDBEventStore:
    def __init__(self, path: str | Path, *, memory_limit: str = "1GB",
                 threads: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = _connect(self.path, memory_limit, threads)
        self._write_lock = threading.Lock()
        empty = EVENT_SCHEMA.empty_table()
        self._con.register("_empty_events", empty)
        self._con.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} AS SELECT * FROM _empty_events LIMIT 0")
        self._con.unregister("_empty_events")

    def append(self, batch: pa.Table) -> AppendOutcome:
        """Insert a batch in one transaction (durable on return); all or nothing."""
        if batch.num_rows == 0:
            return AppendOutcome(0)
        if batch.schema != EVENT_SCHEMA:
            batch = batch.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
        with self._write_lock:
            cur = self._con.cursor()
            try:
                cur.register("_batch", batch)
                cur.execute("BEGIN TRANSACTION")
                try:
                    cur.execute(f"INSERT INTO {TABLE} SELECT * FROM _batch")
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            finally:
                cur.close()
        return AppendOutcome(batch.num_rows)

    @contextmanager
    def reading(self) -> Iterator[Any]:
        cur = self._con.cursor()
        try:
            yield ibis.duckdb.from_connection(cur).table(TABLE)
        finally:
            cur.close()

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query on a fresh cursor (for tools and tests)."""
        cur = self._con.cursor()
        try:
            return cur.execute(query, params or []).fetchall()
        finally:
            cur.close()

    def days_with_events(self, account_id: int) -> list[dt.date]:
        return [r[0] for r in self.sql(
            f"SELECT DISTINCT day FROM {TABLE} WHERE account_id = ? ORDER BY day", [account_id])]

    def delete_before(self, day: dt.date) -> int:
        with self._write_lock:
            cur = self._con.cursor()
            try:
                row = cur.execute(f"DELETE FROM {TABLE} WHERE day < ?", [day]).fetchone()
                return int(row[0]) if row else 0
            finally:
                cur.close()

    def compact(self) -> int:
        """Keep the first-ingested copy of each (account_id, event_id); drop the rest."""
        with self._write_lock:
            cur = self._con.cursor()
            try:
                before = self.count()
                cur.execute("BEGIN TRANSACTION")
                cur.execute(
                    f"CREATE TEMP TABLE _keep AS SELECT * FROM {TABLE} "
                    "QUALIFY row_number() OVER (PARTITION BY account_id, event_id "
                    "ORDER BY ingested_at, ts) = 1"
                )
                kept = int(cur.execute("SELECT count(*) FROM _keep").fetchone()[0])  # type: ignore[index]
                if kept == before:
                    cur.execute("ROLLBACK")
                    return 0
                cur.execute(f"DELETE FROM {TABLE}")
                cur.execute(f"INSERT INTO {TABLE} SELECT * FROM _keep ORDER BY day, account_id")
                cur.execute("DROP TABLE _keep")
                cur.execute("COMMIT")
                return before - kept
            finally:
                cur.close()

    def count(self) -> int:
        return int(self.sql(f"SELECT count(*) FROM {TABLE}")[0][0])

    def close(self) -> None:
        self._con.close()
