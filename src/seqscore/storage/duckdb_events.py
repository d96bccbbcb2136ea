"""The embedded event store: one DuckDB file, owned by one process.

DuckDB lets a single process write a database file, so the process that opens
the store (``seqscore serve`` in the embedded default) owns it; another process
opening it gets ``EventStoreBusy`` naming the holder. Inside the owning process
writes are serialised by one lock (DuckDB commits are durable: its WAL is synced
on commit), and readers take their own cursors beside the writer.

Beside ``events`` the file holds ``batches``: the keys of the batches appended
recently (one row per batch, so its primary key costs nothing per event), written
in the same transaction as the batch's events. A batch whose key is there is a
retry of a committed batch: it is not stored again. A primary key on the events
themselves would make inserts about 11 times slower; copies that arrive in
different batches are left to ``compact``.

A failed write (disk full, I/O error) raises ``Unavailable`` and leaves the store
as it was before the transaction. When DuckDB invalidates the database after such
a failure (a checkpoint that could not be written), the connection is closed and
opened again on next use, which replays the write-ahead log: the store recovers
by itself once the disk has room again, without a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Iterator, Sequence
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
BATCHES = "batches"
#: Rows of a DuckDB row group. A transaction that appends a row group's worth or more
#: has DuckDB write its rows straight into the file as row groups of their own, the
#: last one partly filled; the checkpoint then merges those partial row groups by
#: rewriting every row group after them. A 5,000,000-event import in transactions of
#: 125,000 rows spent seconds on that at its end and left half of the file's blocks
#: free (1,078 MB for 543 MB of data). Below a row group, appended rows go through
#: the write-ahead log and fill the table's row groups in order.
ROW_GROUP_ROWS = 122_880
_BATCH_KEYS = pa.schema([pa.field("batch_key", pa.binary()), pa.field("account_id", pa.int64()),
                         pa.field("received_at", pa.timestamp("us", tz="UTC")),
                         pa.field("events", pa.int64())])


class EventStoreBusy(Unavailable):
    """Another process holds the event store's file."""


def _connect(path: Path, memory_limit: str, threads: int | None,
             wal_mb: int) -> duckdb.DuckDBPyConnection:
    # A checkpoint rewrites the row group being filled: at DuckDB's default of 16 MB of
    # WAL, appends cost about twice the CPU they cost at 128 MB.
    config: dict[str, Any] = {"memory_limit": memory_limit,
                              "checkpoint_threshold": f"{wal_mb}MB"}
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
    single_process = True  # DuckDB's file lock: one writing process

    def __init__(self, path: str | Path, *, memory_limit: str = "1GB",
                 threads: int | None = None, wal_mb: int = 128) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._options = (memory_limit, threads, wal_mb)
        con = _connect(self.path, *self._options)
        self._con: duckdb.DuckDBPyConnection | None = con
        self._con_lock = threading.Lock()
        self._closed = False
        self._write_lock = threading.Lock()
        self._derived_lock = threading.Lock()
        empty = EVENT_SCHEMA.empty_table()
        con.register("_empty_events", empty)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} AS SELECT * FROM _empty_events LIMIT 0")
        con.unregister("_empty_events")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {BATCHES} (batch_key BLOB PRIMARY KEY, "
            "account_id BIGINT NOT NULL, received_at TIMESTAMPTZ NOT NULL, events BIGINT NOT NULL)")

    def append(self, batch: pa.Table, *, batch_key: bytes | None = None) -> AppendOutcome:
        """Insert a batch in one transaction (durable on return); all or nothing.

        See ``append_many``."""
        return self.append_many([(batch, batch_key)])[0]

    def append_many(self, batches: Sequence[tuple[pa.Table, bytes | None]]
                    ) -> list[AppendOutcome]:
        """Insert several batches in one transaction (durable on return); all or nothing.

        ``batch_key`` (optional) identifies a batch's content: a batch whose key
        was committed before, or appears earlier in ``batches``, is a retry and is
        not stored (its rows count as duplicates). One outcome per batch, in order.
        """
        tables = [t if t.schema == EVENT_SCHEMA else t.select(EVENT_SCHEMA.names).cast(
            EVENT_SCHEMA) for t, _ in batches]
        outcomes = [AppendOutcome(t.num_rows) for t in tables]
        if not any(t.num_rows for t in tables):
            return outcomes
        keyed = [(i, key, tables[i]) for i, (_, key) in enumerate(batches)
                 if key is not None and tables[i].num_rows]
        with self._write_lock, self._cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                repeated = self._record_keys(cur, keyed)
                stored = [t for i, t in enumerate(tables) if t.num_rows and i not in repeated]
                if stored:
                    cur.register("_batch", pa.concat_tables(stored))
                    cur.execute(f"INSERT INTO {TABLE} SELECT * FROM _batch")
                    cur.unregister("_batch")
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # a failed COMMIT has ended it
                    cur.execute("ROLLBACK")
                raise
        for i in repeated:
            outcomes[i] = AppendOutcome(0, tables[i].num_rows)
        return outcomes

    def _record_keys(self, cur: duckdb.DuckDBPyConnection,
                     keyed: list[tuple[int, bytes, pa.Table]]) -> set[int]:
        """Record the keys of batches not seen before; returns the positions of the
        others (committed before, or earlier in the same group)."""
        if not keyed:
            return set()
        cur.register("_keys", pa.table({"batch_key": pa.array([k for _, k, _ in keyed],
                                                                pa.binary())}))
        seen = {bytes(row[0]) for row in cur.execute(
            f"SELECT k.batch_key FROM _keys k JOIN {BATCHES} b USING (batch_key)").fetchall()}
        cur.unregister("_keys")
        repeated: set[int] = set()
        new: list[tuple[bytes, pa.Table]] = []
        for i, key, table in keyed:
            if key in seen:
                repeated.add(i)
            else:
                seen.add(key)
                new.append((key, table))
        if new:
            cur.register("_new_keys", pa.Table.from_arrays([
                pa.array([k for k, _ in new], pa.binary()),
                pa.array([t["account_id"][0].as_py() for _, t in new], pa.int64()),
                pa.array([t["ingested_at"][0].as_py() for _, t in new],
                         _BATCH_KEYS.field("received_at").type),
                pa.array([t.num_rows for _, t in new], pa.int64())], schema=_BATCH_KEYS))
            cur.execute(f"INSERT INTO {BATCHES} SELECT * FROM _new_keys")
            cur.unregister("_new_keys")
        return repeated

    def forget_batches_before(self, instant: dt.datetime) -> int:
        """Forget the keys of batches received before ``instant``: a retry of one of
        them is stored again (and compacted away). Returns how many."""
        with self._write_lock, self._cursor() as cur:
            row = cur.execute(f"DELETE FROM {BATCHES} WHERE received_at < ?",
                              [instant]).fetchone()
            return int(row[0]) if row else 0

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor of the connection, opened again if DuckDB invalidated it.

        DuckDB's failures become ``Unavailable``; a fatal one (the database is
        invalidated) closes the connection, so that the next use opens it again."""
        with self._con_lock:
            if self._closed:
                raise Unavailable(f"the event store {self.path} is closed")
            if self._con is None:
                try:
                    self._con = _connect(self.path, *self._options)
                except duckdb.Error as exc:
                    raise Unavailable(f"the event store {self.path} cannot be opened: "
                                      f"{exc}") from exc
            con = self._con
        cur = con.cursor()
        try:
            yield cur
        except duckdb.FatalException as exc:
            with self._con_lock:
                if self._con is con:
                    self._con = None
                    with contextlib.suppress(duckdb.Error):
                        con.close()
            raise Unavailable(f"the event store failed (it is opened again on next use): "
                              f"{exc}") from exc
        except (duckdb.IOException, duckdb.TransactionException) as exc:
            raise Unavailable(f"the event store failed: {exc}") from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                cur.close()

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self._cursor() as cur:
            yield ibis.duckdb.from_connection(cur).table(TABLE)

    @contextmanager
    def derived_tables(self, *, exclusive: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on this file for tables derived from the events and kept beside them
        (the compute's day facts, ``seqscore.compute.daycache``); ``exclusive`` holds
        them for one user at a time (to rebuild them). Never writes ``events``."""
        lock = self._derived_lock if exclusive else contextlib.nullcontext()
        with lock, self._cursor() as cur:
            yield cur

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query on a fresh cursor (for tools and tests)."""
        with self._cursor() as cur:
            return cur.execute(query, params or []).fetchall()

    def days_with_events(self, account_id: int) -> list[dt.date]:
        return [r[0] for r in self.sql(
            f"SELECT DISTINCT day FROM {TABLE} WHERE account_id = ? ORDER BY day", [account_id])]

    def delete_before(self, day: dt.date) -> int:
        with self._write_lock, self._cursor() as cur:
            row = cur.execute(f"DELETE FROM {TABLE} WHERE day < ?", [day]).fetchone()
            return int(row[0]) if row else 0

    def compact(self, *, ingested_since: dt.datetime | None = None) -> int:
        """Keep the first-ingested copy of each (account_id, event_id); drop the rest.

        With ``ingested_since``, only the days that received events since then are
        looked at (copies of one event share its day): the scheduler's frequent,
        cheap pass. Without, the whole table is rewritten in (day, account) order.
        """
        if ingested_since is not None:
            return self._compact_days(ingested_since)
        with self._write_lock, self._cursor() as cur:
            before = self.count()
            cur.execute("BEGIN TRANSACTION")
            try:
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
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise
            return before - kept

    def _compact_days(self, ingested_since: dt.datetime) -> int:
        # Looking for copies groups every row of the days concerned: on a large store
        # that takes seconds, so it runs beside the writer (appends go on) and only
        # the deletion of the few copies found holds it.
        with self._cursor() as cur:
            copied = find_copies(cur, ingested_since)
        if not copied.num_rows:
            return 0
        with self._write_lock, self._cursor() as cur:
            return delete_copies(cur, copied)

    def count(self) -> int:
        return int(self.sql(f"SELECT count(*) FROM {TABLE}")[0][0])

    def close(self) -> None:
        with self._con_lock:
            con, self._con, self._closed = self._con, None, True
        if con is not None:
            con.close()


def find_copies(cur: duckdb.DuckDBPyConnection, ingested_since: dt.datetime) -> pa.Table:
    """The (account_id, event_id, day) stored more than once among the days that
    received events since ``ingested_since`` (copies of one event share its day).
    Reads a snapshot: safe beside appends."""
    return cur.sql(
        f"SELECT account_id, event_id, day FROM {TABLE} WHERE day IN ("
        f"SELECT DISTINCT day FROM {TABLE} WHERE ingested_at >= ?) "
        "GROUP BY account_id, event_id, day HAVING count(*) > 1",
        params=[ingested_since]).to_arrow_table()


def delete_copies(cur: duckdb.DuckDBPyConnection, copied: pa.Table) -> int:
    """Delete every row of the ``copied`` events but the first ingested (by
    ``ingested_at``, then ``ts``), looking at all their rows as of now: a copy
    appended since ``find_copies`` goes too. Run as the writer. Returns how many."""
    cur.register("_copied", copied)
    try:
        row = cur.execute(
            f"DELETE FROM {TABLE} WHERE rowid IN (SELECT rowid FROM ("
            "SELECT e.rowid, row_number() OVER (PARTITION BY e.account_id, e.event_id "
            "ORDER BY e.ingested_at, e.ts) AS copy "
            f"FROM {TABLE} e JOIN _copied c USING (account_id, event_id, day) "
            "WHERE e.day IN (SELECT DISTINCT day FROM _copied)) WHERE copy > 1)").fetchone()
    finally:
        cur.unregister("_copied")
    return int(row[0]) if row else 0
