"""The scale-out event store: a Parquet data set partitioned by day (a "lake").

Many processes append to one lake at once (every ``serve --no-worker`` process
and importer), on a local or shared folder or on an object store reached
through pyarrow's filesystems (``s3://``, ``gs://``, ``abfs://``...). The
layout under the lake's root::

    events/day=YYYY-MM-DD/part-<ms>-<uuid>.parquet     appended batches (one file per day)
    events/day=YYYY-MM-DD/compact-<ms>-<uuid>-<n>.parquet   compaction output
    events/day=YYYY-MM-DD/_merged-<ms>-<uuid>.json     compaction manifest (see below)
    batches/received=YYYY-MM-DD/<batch key hex>         markers of committed batches

Files hold every ``EVENT_SCHEMA`` column but ``day``, which is the partition
(hive style, so DuckDB and Spark prune days by path). ``<ms>`` is the Unix
milliseconds the file was written.

Writing. A file appears whole or not at all: on a local filesystem it is
written under a hidden temporary name in its own folder, synced, renamed
(atomic), and the folder synced; on an object store an object is visible only
once its upload completed. Names are unique per writer (uuid4), so writers
never coordinate. ``append_many`` returns after every file of the group is
durable. A group touching several days writes one file per day: a process
dying between two renames leaves part of an unanswered batch visible, which
the sender's retry stores again; the copies are harmless (below).

Duplicates. Readers see every copy; the window aggregation de-duplicates on
(account_id, event_id) exactly, and every other count it makes is over
distinct values, so a copy never changes a result. A batch is recognised as a
retry at write time by its marker (looked up under the day it is received and
the day before: SendGrid retries for 24 hours); markers are written after the
batch's files, so a marker always means a complete batch, and they are not
synced (a lost marker only lets one retry be stored again).

Compaction, safe beside readers. A reader lists the files once, when its read
starts. Compaction of a day writes the merged rows (copies removed) as new
files, then a manifest naming the files they replace. Readers that list after
the manifest skip the replaced files; readers that listed before still find
them, because they are deleted only by a compaction pass at least
``grace_seconds`` after the manifest was written (then the manifest goes too).
A reader holding its list longer than the grace period can fail on a missing
file; the job runner retries a failed job, and the grace period (setting
``events_compact_grace_minutes``) should exceed the longest computation.
Two compactions of one day at once are harmless too: both outputs hold the
same rows (copies), the next pass merges them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from seqscore.event_schema import EVENT_SCHEMA
from seqscore.storage.events import AppendOutcome, EventStore

#: Columns stored in the files: all but ``day``, which is the partition.
FILE_SCHEMA = pa.schema([f for f in EVENT_SCHEMA if f.name != "day"])
EVENTS_DIR = "events"
BATCHES_DIR = "batches"
#: Compaction merges files smaller than half this into files of about this size.
DEFAULT_TARGET_FILE_BYTES = 256 * 1024 * 1024
DEFAULT_GRACE_SECONDS = 6 * 3600

_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")
_DATA_FILE = re.compile(r"^(?:part|compact)-(\d{13})-[0-9a-f]{32}(?:-\d+)?\.parquet$")
_MANIFEST = re.compile(r"^_merged-(\d{13})-[0-9a-f]{32}\.json$")
_TEMP = re.compile(r"^\..*\.tmp$")
#: Object-store schemes routed through ``pyarrow.fs.FileSystem.from_uri``.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs")

#: Reads a snapshot: (events base URI, data file URIs) -> a context giving an Ibis
#: table of ``EVENT_SCHEMA``. The default reads with DuckDB; ``seqscore.compute.spark``
#: gives one reading with Spark.
LakeReader = Callable[[str, Sequence[str]], AbstractContextManager[Any]]


@dataclass(frozen=True, slots=True)
class DataFile:
    path: str  # on the lake's filesystem
    day: dt.date
    size: int
    written_ms: int


@dataclass(frozen=True, slots=True)
class _Day:
    """One day folder as listed: its live data files, and what compaction left behind."""

    day: dt.date
    live: list[DataFile]
    replaced: list[str]  # data files named by a manifest (skipped by readers)
    manifests: list[tuple[str, int]]  # (path, written ms)
    temps: list[tuple[str, int]]  # leftovers of writers that died (path, mtime ms)


def is_lake_url(url: str) -> bool:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme in ("parquet", "file", *REMOTE_SCHEMES)


def _day_dir(day: dt.date) -> str:
    return f"day={day.isoformat()}"


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sql_list(paths: Sequence[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class ParquetEventStore:
    """An ``EventStore`` over a Parquet lake (see the module doc). Thread-safe; any
    number of processes may append, read and compact the same lake at once."""

    single_process = False

    def __init__(self, root: str, *, filesystem: pafs.FileSystem | None = None,
                 memory_limit: str = "1GB", threads: int | None = None,
                 target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
                 grace_seconds: float = DEFAULT_GRACE_SECONDS,
                 reader: LakeReader | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        """``root``: a local folder, or a path on ``filesystem`` (then the lake is
        treated as an object store: no renames, no fsync)."""
        self.fs = filesystem or pafs.LocalFileSystem()
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")
        self.events_dir = f"{self.root}/{EVENTS_DIR}"
        self.batches_dir = f"{self.root}/{BATCHES_DIR}"
        self.target_file_bytes = target_file_bytes
        self.grace_seconds = grace_seconds
        self._clock = wall_clock
        self._reader = reader
        self._made_dirs: set[str] = set()
        config: dict[str, Any] = {"memory_limit": memory_limit}
        if threads:
            config["threads"] = threads
        self._duck = duckdb.connect(config=config)
        self._ensure_dir(self.events_dir)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ParquetEventStore:
        """``parquet:///abs/path`` or ``file:///abs/path`` (a local folder), or an
        object-store URL pyarrow knows (``s3://bucket/prefix``, ``gs://...``)."""
        if url.startswith("parquet://"):
            path = url.removeprefix("parquet://")
            if not path.startswith("/"):
                raise ValueError(f"{url!r}: use parquet:///absolute/path")
            return cls(path, **options)
        filesystem, path = pafs.FileSystem.from_uri(url)
        if isinstance(filesystem, pafs.LocalFileSystem):
            return cls(path, **options)
        return cls(path, filesystem=filesystem, **options)

    def with_reader(self, reader: LakeReader) -> ParquetEventStore:
        """The same lake, read through ``reader`` (e.g. Spark) instead of DuckDB."""
        other = copy.copy(self)
        other._reader = reader
        return other

    # ------------------------------------------------------------------ files

    def _uri(self, path: str) -> str:
        """``path`` as a URI other engines understand (``file:///...``, ``s3://...``)."""
        return f"file://{path}" if self.local else f"{self.fs.type_name}://{path}"

    def _ensure_dir(self, path: str) -> None:
        if not self.local:  # object stores need none, but other filesystems do
            if path not in self._made_dirs:
                self.fs.create_dir(path, recursive=True)
                self._made_dirs.add(path)
            return
        missing: list[str] = []
        current = path
        while not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue
            _fsync_dir(os.path.dirname(folder))  # the new entry must survive a crash

    def _write_file(self, folder: str, name: str, table: pa.Table) -> str:
        """Write ``table`` to ``folder/name`` whole or not at all; durable locally
        once the caller synced ``folder``. Returns the path."""
        self._ensure_dir(folder)
        final = f"{folder}/{name}"
        if not self.local:
            with self.fs.open_output_stream(final) as out:
                pq.write_table(table, out, compression="zstd")
            return final
        temp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(temp, "xb") as out:
                pq.write_table(table, out, compression="zstd")
                out.flush()
                os.fsync(out.fileno())
            os.rename(temp, final)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return final

    def _write_stream(self, folder: str, names: Iterator[str],
                      batches: Iterator[pa.RecordBatch], max_rows: int) -> list[str]:
        """Write record batches into files of at most about ``max_rows`` rows, each
        whole or not at all (as ``_write_file``). Returns the paths written."""
        written: list[str] = []
        pending: list[pa.RecordBatch] = []
        rows = 0

        def flush() -> None:
            nonlocal pending, rows
            if pending:
                table = pa.Table.from_batches(pending).cast(FILE_SCHEMA)
                written.append(self._write_file(folder, next(names), table))
            pending, rows = [], 0

        for batch in batches:
            while batch.num_rows:
                part = batch.slice(0, max_rows - rows)
                batch = batch.slice(part.num_rows)
                pending.append(part)
                rows += part.num_rows
                if rows >= max_rows:
                    flush()
        flush()
        return written

    def _sync(self, folders: Sequence[str]) -> None:
        if self.local:
            for folder in sorted(set(folders)):
                _fsync_dir(folder)

    def _delete_dir(self, path: str) -> None:
        self._made_dirs = {d for d in self._made_dirs if d != path and
                           not d.startswith(path + "/")}
        with suppress(FileNotFoundError):
            self.fs.delete_dir(path)

    def _delete(self, path: str) -> None:
        with suppress(FileNotFoundError):
            self.fs.delete_file(path)

    def _list_days(self) -> list[_Day]:
        """Every day folder, listed in one recursive listing of ``events/``; listed
        again if a compaction pass deleted a manifest (and its files) meanwhile."""
        for _attempt in range(4):
            try:
                return self._list_days_once()
            except _Relist:
                continue
        return self._list_days_once()

    def _list_days_once(self) -> list[_Day]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.events_dir, recursive=True,
                                                        allow_not_found=True))
        by_day: dict[dt.date, list[pafs.FileInfo]] = {}
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            parent = info.path.rsplit("/", 2)
            if len(parent) < 3:
                continue
            match = _DAY_DIR.match(parent[1])
            if match is None:
                continue
            by_day.setdefault(dt.date.fromisoformat(match.group(1)), []).append(info)
        return [self._read_day(day, by_day[day]) for day in sorted(by_day)]

    def _read_day(self, day: dt.date, infos: list[pafs.FileInfo]) -> _Day:
        files: list[DataFile] = []
        manifests: list[tuple[str, int]] = []
        temps: list[tuple[str, int]] = []
        replaced: set[str] = set()
        folder = f"{self.events_dir}/{_day_dir(day)}"
        for info in infos:
            name = info.base_name
            if match := _DATA_FILE.match(name):
                files.append(DataFile(info.path, day, int(info.size or 0),
                                      int(match.group(1))))
            elif match := _MANIFEST.match(name):
                manifests.append((info.path, int(match.group(1))))
                try:
                    with self.fs.open_input_stream(info.path) as stream:
                        names = json.loads(stream.read())["replaced"]
                except FileNotFoundError:
                    raise _Relist from None  # a compaction pass just deleted its files
                replaced.update(f"{folder}/{n}" for n in names)
            elif _TEMP.match(name):
                mtime = info.mtime.timestamp() if info.mtime else 0.0
                temps.append((info.path, int(mtime * 1000)))
        live = [f for f in files if f.path not in replaced]
        live.sort(key=lambda f: (f.written_ms, f.path))
        return _Day(day, live, sorted(replaced), manifests, temps)

    def data_files(self) -> list[DataFile]:
        """The files a reader starting now reads (replaced ones left out)."""
        return [f for d in self._list_days() for f in d.live]

    # ---------------------------------------------------------------- appends

    def append(self, batch: pa.Table, *, batch_key: bytes | None = None) -> AppendOutcome:
        """Append one batch; see ``append_many``."""
        return self.append_many([(batch, batch_key)])[0]

    def append_many(self, batches: Sequence[tuple[pa.Table, bytes | None]]
                    ) -> list[AppendOutcome]:
        """Write the batches as one new file per day they touch; durable on return.

        A batch whose ``batch_key`` has a marker (committed before, received
        today or yesterday) or appears earlier in ``batches`` is not written; its
        rows count as duplicates. One outcome per batch, in order.
        """
        tables = [t if t.schema == EVENT_SCHEMA else t.select(EVENT_SCHEMA.names).cast(
            EVENT_SCHEMA) for t, _ in batches]
        outcomes = [AppendOutcome(t.num_rows) for t in tables]
        repeated: set[int] = set()
        new_keys: list[tuple[bytes, dt.date]] = []
        seen: set[bytes] = set()
        for i, (_, key) in enumerate(batches):
            if key is None or not tables[i].num_rows:
                continue
            received = tables[i]["ingested_at"][0].as_py().date()
            if key in seen or self._has_marker(key, received):
                repeated.add(i)
            else:
                seen.add(key)
                new_keys.append((key, received))
        stored = [t for i, t in enumerate(tables) if t.num_rows and i not in repeated]
        if stored:
            self._write_days(pa.concat_tables(stored))
        for key, received in new_keys:
            self._put_marker(key, received)
        for i in repeated:
            outcomes[i] = AppendOutcome(0, tables[i].num_rows)
        return outcomes

    def _write_days(self, table: pa.Table) -> None:
        written_ms = _now_ms(self._clock)
        folders = []
        for day in sorted(pc.unique(table["day"]).to_pylist()):
            rows = table.filter(pc.equal(table["day"], pa.scalar(day, pa.date32())))
            folder = f"{self.events_dir}/{_day_dir(day)}"
            name = f"part-{written_ms:013d}-{uuid.uuid4().hex}.parquet"
            self._write_file(folder, name, rows.select(FILE_SCHEMA.names).cast(FILE_SCHEMA))
            folders.append(folder)
        self._sync(folders)

    def _marker(self, key: bytes, received: dt.date) -> str:
        return f"{self.batches_dir}/received={received.isoformat()}/{key.hex()}"

    def _has_marker(self, key: bytes, received: dt.date) -> bool:
        for day in (received, received - dt.timedelta(days=1)):
            if self.fs.get_file_info(self._marker(key, day)).type == pafs.FileType.File:
                return True
        return False

    def _put_marker(self, key: bytes, received: dt.date) -> None:
        path = self._marker(key, received)
        folder = path.rsplit("/", 1)[0]
        if self.local:
            os.makedirs(folder, exist_ok=True)
            with open(path, "wb"):
                pass
        else:
            self._ensure_dir(folder)
            with self.fs.open_output_stream(path):
                pass

    def forget_batches_before(self, instant: dt.datetime) -> int:
        """Drop the markers of batches received on days before ``instant``'s day."""
        cutoff = instant.astimezone(dt.UTC).date()
        forgotten = 0
        infos = self.fs.get_file_info(pafs.FileSelector(self.batches_dir,
                                                        allow_not_found=True))
        for info in infos:
            if info.type != pafs.FileType.Directory or not info.base_name.startswith(
                    "received="):
                continue
            if dt.date.fromisoformat(info.base_name.removeprefix("received=")) >= cutoff:
                continue
            forgotten += sum(1 for i in self.fs.get_file_info(
                pafs.FileSelector(info.path, allow_not_found=True))
                if i.type == pafs.FileType.File)
            self._delete_dir(info.path)
        return forgotten

    # ---------------------------------------------------------------- reading

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """An Ibis table of every event (copies included) in the files listed now."""
        paths = [f.path for f in self.data_files()]
        if self._reader is not None:
            with self._reader(self._uri(self.events_dir), [self._uri(p) for p in paths]) as t:
                yield t
            return
        cur = self._duck.cursor()
        try:
            self._register(cur, "events", paths)
            yield ibis.duckdb.from_connection(cur).table("events")
        finally:
            cur.close()

    def _register(self, cur: duckdb.DuckDBPyConnection, name: str, paths: Sequence[str],
                  *, with_day: bool = True) -> None:
        """Make ``name`` a view over the data files ``paths`` (filesystem paths)."""
        columns = ", ".join(EVENT_SCHEMA.names if with_day else FILE_SCHEMA.names)
        if not paths:
            empty = EVENT_SCHEMA if with_day else FILE_SCHEMA
            cur.register(f"{name}_empty", empty.empty_table())
            cur.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {columns} "
                        f"FROM {name}_empty")
        elif self.local:
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {columns} FROM read_parquet("
                f"{_sql_list(paths)}, hive_partitioning = true, "
                "hive_types = {'day': DATE})")
        else:
            dataset = ds.dataset(list(paths), filesystem=self.fs, format="parquet",
                                 partitioning=ds.partitioning(
                                     pa.schema([("day", pa.date32())]), flavor="hive"),
                                 partition_base_dir=self.events_dir)
            cur.register(f"{name}_dataset", dataset)
            cur.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {columns} "
                        f"FROM {name}_dataset")

    def _query(self, sql: str, paths: Sequence[str], params: list[Any] | None = None
               ) -> list[tuple[Any, ...]]:
        cur = self._duck.cursor()
        try:
            self._register(cur, "scan", paths)
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def days_with_events(self, account_id: int) -> list[dt.date]:
        paths = [f.path for f in self.data_files()]
        return [r[0] for r in self._query(
            "SELECT DISTINCT day FROM scan WHERE account_id = ? ORDER BY day", paths,
            [account_id])]

    def count(self) -> int:
        """Stored rows, copies included (from the files' footers)."""
        paths = [f.path for f in self.data_files()]
        return int(self._query("SELECT count(*) FROM scan", paths)[0][0])

    # -------------------------------------------------------------- retention

    def delete_before(self, day: dt.date) -> int:
        """Delete the day folders before ``day``; returns how many rows they held."""
        old = [d for d in self._list_days() if d.day < day]
        rows = 0
        for d in old:
            if d.live:
                rows += int(self._query("SELECT count(*) FROM scan",
                                        [f.path for f in d.live])[0][0])
            self._delete_dir(f"{self.events_dir}/{_day_dir(d.day)}")
        return rows

    # ------------------------------------------------------------- compaction

    def compact(self, *, ingested_since: dt.datetime | None = None,
                days: Sequence[dt.date] | None = None) -> int:
        """Merge files per day, keeping one copy of each (account_id, event_id) among
        the merged rows; returns how many copies were removed.

        With ``ingested_since`` (the scheduler's frequent pass): only the days that
        received files since then, and only their small files (under half the
        target size) are merged. Without: every day (or those in ``days``) is
        rewritten whole when it has more than one file or holds copies, so each
        event is then stored once. Every pass also deletes the files that
        manifests replaced more than ``grace_seconds`` ago. See the module doc.
        """
        since_ms = None if ingested_since is None else int(ingested_since.timestamp() * 1000)
        wanted = None if days is None else set(days)
        removed = 0
        for d in self._list_days():
            self._collect(d)
            if wanted is not None and d.day not in wanted:
                continue
            if since_ms is not None:
                if not any(f.written_ms >= since_ms for f in d.live):
                    continue
                small = [f for f in d.live if f.size < self.target_file_bytes // 2]
                if len(small) >= 2:
                    removed += self._merge(d.day, small)
            elif len(d.live) > 1 or (d.live and self._has_copies(d.live)):
                removed += self._merge(d.day, d.live)
        return removed

    def _has_copies(self, files: Sequence[DataFile]) -> bool:
        total, distinct = self._query(
            "SELECT count(*), count(DISTINCT (account_id, event_id)) FROM scan",
            [f.path for f in files])[0]
        return bool(total != distinct)

    def _merge(self, day: dt.date, inputs: Sequence[DataFile]) -> int:
        """Replace ``inputs`` (files of ``day``) by their rows without copies."""
        folder = f"{self.events_dir}/{_day_dir(day)}"
        paths = [f.path for f in inputs]
        cur = self._duck.cursor()
        try:
            self._register(cur, "merge_input", paths, with_day=False)
            rows_in = int(cur.execute("SELECT count(*) FROM merge_input").fetchall()[0][0])
            bytes_per_row = max(sum(f.size for f in inputs) / max(rows_in, 1), 1.0)
            max_rows = max(int(self.target_file_bytes / bytes_per_row), 1000)
            stamp = f"{_now_ms(self._clock):013d}-{uuid.uuid4().hex}"
            names = (f"compact-{stamp}-{n}.parquet" for n in range(1_000_000))
            reader = cur.sql(
                f"SELECT {', '.join(FILE_SCHEMA.names)} FROM merge_input QUALIFY "
                "row_number() OVER (PARTITION BY account_id, event_id "
                "ORDER BY ingested_at, ts) = 1 ORDER BY account_id, event_id"
            ).to_arrow_reader(100_000)
            outputs = self._write_stream(folder, names, iter(reader), max_rows)
        finally:
            cur.close()
        self._sync([folder])
        rows_out = sum(int(pq.read_metadata(p, filesystem=self.fs).num_rows) for p in outputs)
        manifest = {"replaced": [p.rsplit("/", 1)[1] for p in paths],
                    "outputs": [p.rsplit("/", 1)[1] for p in outputs]}
        self._write_bytes(folder, f"_merged-{stamp}.json", json.dumps(manifest).encode())
        self._sync([folder])
        return rows_in - rows_out

    def _write_bytes(self, folder: str, name: str, data: bytes) -> None:
        if not self.local:
            with self.fs.open_output_stream(f"{folder}/{name}") as out:
                out.write(data)
            return
        temp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        with open(temp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temp, f"{folder}/{name}")

    def _collect(self, d: _Day) -> None:
        """Delete what manifests older than the grace period replaced, then those
        manifests; and temporary files of writers that died."""
        expired = _now_ms(self._clock) - int(self.grace_seconds * 1000)
        old = [(path, ms) for path, ms in d.manifests if ms <= expired]
        if old:
            folder = f"{self.events_dir}/{_day_dir(d.day)}"
            for path, _ in old:
                try:
                    with self.fs.open_input_stream(path) as stream:
                        names = json.loads(stream.read())["replaced"]
                except FileNotFoundError:
                    continue
                for name in names:
                    self._delete(f"{folder}/{name}")
                self._delete(path)
        for path, mtime_ms in d.temps:
            if mtime_ms <= expired:
                self._delete(path)

    def close(self) -> None:
        self._duck.close()


def copy_events(source: EventStore, target: EventStore, *, chunk_rows: int = 1_000_000,
                progress: Callable[[int], None] | None = None) -> int:
    """Copy every stored event of ``source`` into the empty ``target`` (e.g. the
    embedded DuckDB file into a lake), one day at a time, in appends of about
    ``chunk_rows`` rows (a day is split by a hash of ``event_id``); returns how
    many rows were copied (copies included).

    Batch keys are not copied: a retry of a batch received before the move is
    stored again, and de-duplicated as any copy is. Raises ``ValueError`` when
    ``target`` holds events. ``progress`` is called with the rows copied so far.
    """
    if target.count():
        raise ValueError("the target event store is not empty")
    copied = 0
    with source.reading() as table:
        per_day = table.group_by("day").agg(n=table.count()).order_by("day").to_pyarrow()
        for day, rows in zip(per_day["day"].to_pylist(), per_day["n"].to_pylist(),
                             strict=True):
            parts = -(-int(rows) // chunk_rows)
            of_day = table.filter(table.day == day).select(*EVENT_SCHEMA.names)
            for part in range(parts):
                chunk = of_day if parts == 1 else of_day.filter(
                    of_day.event_id.hash().abs() % parts == part)
                batch = chunk.to_pyarrow()
                if batch.num_rows:
                    target.append(batch.cast(EVENT_SCHEMA))
                    copied += batch.num_rows
                    if progress is not None:
                        progress(copied)
    return copied


class _Relist(Exception):
    """A listing raced with a compaction pass's deletions."""
