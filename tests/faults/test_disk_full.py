"""The data dir's disk fills up under ``seqscore serve`` while a sender posts batches.

The data dir is a small size-limited tmpfs, nearly filled by a ballast file. Batches
are posted until the disk is full: every refused batch is answered 503 in SendGrid's
error shape (never 500); what is stored stays readable (the DuckDB file and the SQLite
state open and count correctly). Then the filesystem is made bigger: ingestion
recovers by itself, without a restart, and every acknowledged event is stored, once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from faults_support import Serve, body, event, post, request, sendgrid_error, sqlite_ok

from seqscore.cli import main
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore.storage.state import StateStore
from seqscore_testing import require_or_skip

pytestmark = pytest.mark.slow

EVENTS_PER_BATCH = 40
FREE_AT_START = 1536 << 10  # bytes left beside the ballast


def mount_tmpfs(path: Path, size_mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                           str(path)], capture_output=True, text=True, check=False)
    require_or_skip(done.returncode == 0,
                    f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    if shutil.which("mount") is None or os.geteuid() != 0:
        require_or_skip(False, "mounting a tmpfs needs root and mount(8)")
    mount_tmpfs(path, size_mb)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_answers_503_and_ingestion_recovers_by_itself(tmp_path: Path) -> None:
    with small_disk(tmp_path / "data", 32) as data:
        # a small write-ahead log: DuckDB's checkpoints too run out of room, which
        # invalidates its database until it is opened again (the server does that)
        server = Serve(data, worker=False, log=tmp_path / "serve.log",
                       SEQSCORE_INGEST_PROCESSES="0", SEQSCORE_EVENTS_WAL_MB="1")
        result = CliRunner().invoke(main, ["accounts", "create", "acme"], env=server.env)
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(main, ["keys", "create", "acme", "--scopes",
                                           "events.write"], env=server.env)
        key = json.loads(result.output)["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        try:
            server.start()
            free = shutil.disk_usage(data).free
            (data / "ballast").write_bytes(bytes(free - FREE_AT_START))

            sent: dict[int, bytes] = {}
            acknowledged: set[int] = set()
            statuses: dict[int, int] = {}

            def send(n: int) -> int:
                payload = sent.setdefault(n, body(*[
                    event(n * EVENTS_PER_BATCH + i) for i in range(EVENTS_PER_BATCH)]))
                status, answer = post(server.url, payload, auth, 20)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    acknowledged.add(n)
                else:
                    assert status == 503 and sendgrid_error(answer), (status, answer)
                return status

            # fill the disk: post new batches until ten in a row are refused
            refused_in_a_row, n = 0, 0
            while refused_in_a_row < 10:
                assert n < 3000, "the disk never filled up"
                refused_in_a_row = refused_in_a_row + 1 if send(n) == 503 else 0
                n += 1
            assert shutil.disk_usage(data).free < 256 << 10
            assert len(acknowledged) > 10 and statuses.get(503, 0) >= 10
            status, answer, _ = request(server.url, "GET", "/api/v1/health")
            assert status in (200, 503) and (status == 200 or sendgrid_error(answer))

            # room again: the refused batches are retried until accepted, no restart
            subprocess.run(["mount", "-o", "remount,size=96m", str(data)], check=True)
            freed = time.monotonic()
            pid = server.pid
            recovered_s = None
            for m in sorted(set(sent) - acknowledged):
                deadline = time.monotonic() + 30
                while send(m) != 200:
                    assert time.monotonic() < deadline, "ingestion did not recover"
                    time.sleep(0.1)
                if recovered_s is None:
                    recovered_s = time.monotonic() - freed
            for m in range(n, n + 20):  # and new batches are taken too
                assert send(m) == 200
            assert server.pid == pid and server.process is not None
            assert server.process.poll() is None  # the same process, never restarted
            print(f"\nacknowledged {len(acknowledged)} batches "
                  f"({len(acknowledged) * EVENTS_PER_BATCH} events); answers {statuses}; "
                  f"first batch accepted {recovered_s:.2f} s after the disk had room")
            server.stop()
        finally:
            server.kill()

        # nothing corrupt; every acknowledged event stored, once
        assert sqlite_ok(data / "state.sqlite3")
        state = StateStore.open(f"sqlite:///{data / 'state.sqlite3'}")
        store = DuckDBEventStore(data / "events.duckdb")
        try:
            assert [a.username for a in state.list_accounts()] == ["acme"]
            ids = {e for (e,) in store.sql("SELECT event_id FROM events")}
            assert store.count() == len(ids) == len(acknowledged) * EVENTS_PER_BATCH
            assert len(acknowledged) == len(sent)
        finally:
            store.close()
            state.close()
