"""A local import stores its chunks in groups: several chunks per transaction of the
event store, in file order, each chunk still answered with its own counts, all or
nothing per group."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
import pytest
from ingest_service_support import CLOSED, event

from seqscore.clock import FrozenClock
from seqscore.errors import Unavailable
from seqscore.service.importer import LocalSink, import_file
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.storage.duckdb_events import ROW_GROUP_ROWS
from seqscore.storage.events import AppendOutcome
from seqscore_testing import TEST_NOW


class CountingAppender:
    """The event store's ``append_many``, counting transactions and their batches."""

    def __init__(self, services: Services, *, fail: bool = False) -> None:
        self._append_many = services.events.append_many
        self.fail = fail
        self.groups: list[int] = []
        self.rows: list[int] = []  # rows per transaction
        self.lock = threading.Lock()

    def __call__(self, batches: Sequence[tuple[pa.Table, bytes | None]]) -> list[AppendOutcome]:
        with self.lock:
            self.groups.append(len(batches))
            self.rows.append(sum(table.num_rows for table, _ in batches))
        if self.fail:
            raise Unavailable("the event store failed: disk full")
        return self._append_many(batches)


@pytest.fixture
def services(tmp_path: Path):
    opened = Services.open(Settings(data_dir=tmp_path / "data", worker=False,
                                    ingest_processes=0),
                           clock=FrozenClock(TEST_NOW))
    yield opened
    opened.close()


def jsonl(path: Path, count: int, *, bad_every: int = 0) -> Path:
    lines = []
    for n in range(count):
        if bad_every and n % bad_every == 0:
            lines.append(msgspec.json.encode(event(n, day=CLOSED, email="not-an-address")))
        else:
            lines.append(msgspec.json.encode(event(n, day=CLOSED)))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_chunks_are_stored_in_groups_with_their_own_counts(services, tmp_path):
    acme = services.accounts.create_account("acme", email="acme@example.test")
    append = CountingAppender(services)
    # 5,000 events: 3 chunks of at most 2,000; groups of at least 2,500 rows
    sink = LocalSink(services.ingest, acme, append, bulk_rows=2_500)
    path = jsonl(tmp_path / "e.jsonl", 5_000, bad_every=1_000)
    try:
        report = import_file(path, sink)
        again = import_file(path, sink)  # every chunk recognised by its key
    finally:
        sink.close()
    assert (report.records, report.accepted, report.rejected, report.duplicates) == (
        5_000, 4_995, 5, 0)
    assert (again.accepted, again.rejected, again.duplicates) == (0, 5, 4_995)
    assert services.events.count() == 4_995
    # the first two chunks in one transaction, the last alone (the file ended)
    assert append.groups[:2] == [2, 1]
    assert sum(append.groups) == 6
    rejected = (tmp_path / "e.jsonl.rejected.jsonl").read_bytes().splitlines()
    assert [msgspec.json.decode(line)["line"] for line in rejected] == [
        1, 1_001, 2_001, 3_001, 4_001]


def test_a_failed_group_fails_the_import_and_stores_none_of_it(services, tmp_path):
    acme = services.accounts.create_account("acme", email="acme@example.test")
    append = CountingAppender(services, fail=True)
    sink = LocalSink(services.ingest, acme, append, bulk_rows=100_000)
    try:
        with pytest.raises(Unavailable, match="disk full"):
            import_file(jsonl(tmp_path / "e.jsonl", 4_500), sink)
    finally:
        sink.close()
    assert services.events.count() == 0
    assert append.groups == [3]


def test_the_writer_does_not_wait_for_rows_that_cannot_come(services, tmp_path):
    """Fewer rows in flight than a group: stored once nothing more arrives."""
    acme = services.accounts.create_account("acme", email="acme@example.test")
    append = CountingAppender(services)
    sink = LocalSink(services.ingest, acme, append, bulk_rows=1_000_000)
    started = dt.datetime.now()
    try:
        report = import_file(jsonl(tmp_path / "e.jsonl", 4_100), sink, in_flight=1)
    finally:
        sink.close()
    assert report.accepted == 4_100
    assert services.events.count() == 4_100
    assert dt.datetime.now() - started < dt.timedelta(seconds=30)


def test_a_group_stays_below_max_rows(services, tmp_path):
    """A chunk that would take its group to ``max_rows`` goes into the next group."""
    acme = services.accounts.create_account("acme", email="acme@example.test")
    append = CountingAppender(services)
    sink = LocalSink(services.ingest, acme, append, bulk_rows=2_500, max_rows=3_000)
    try:
        report = import_file(jsonl(tmp_path / "e.jsonl", 5_000), sink)
    finally:
        sink.close()
    assert (report.accepted, report.rejected, report.duplicates) == (5_000, 0, 0)
    assert append.rows == [2_000, 2_000, 1_000]  # 4,000 and 3,000 would reach max_rows
    assert services.events.count() == 5_000


def test_an_import_leaves_the_event_store_in_full_row_groups(services, tmp_path):
    """Transactions below a DuckDB row group fill the table's row groups in order, so the
    checkpoint has nothing to rewrite: no partial row group inside the table, and no
    file of twice the data's size (transactions of 125,000 rows left half of it free)."""
    acme = services.accounts.create_account("acme", email="acme@example.test")
    count = 2 * ROW_GROUP_ROWS + 20_000
    sink = LocalSink(services.ingest, acme, services.events.append_many)
    try:
        report = import_file(jsonl(tmp_path / "e.jsonl", count), sink)
    finally:
        sink.close()
    assert report.accepted == count
    path = services.settings.data_dir / "events.duckdb"
    services.close()  # checkpoints the write-ahead log into the file
    con = duckdb.connect(str(path), read_only=True)
    try:
        row_groups = [n for (n,) in con.execute(
            "SELECT max(count) FROM pragma_storage_info('events') WHERE column_id = 0 "
            "GROUP BY row_group_id ORDER BY row_group_id").fetchall()]
        total, free = con.execute(
            "SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchone()
    finally:
        con.close()
    assert row_groups == [ROW_GROUP_ROWS, ROW_GROUP_ROWS, 20_000]
    assert free <= total // 10, (free, total)
