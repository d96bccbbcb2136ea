"""``seqscore import`` on damaged files, as real ``seqscore import`` processes.

A damaged file (a gzip stream cut in the middle, a JSON array cut inside an object, a
CSV quote never closed) stores every record before the damage, then fails naming the
file and the line or byte, with exit status 1. Re-running on the repaired file stores
the rest and counts exactly: what the first run stored is ``duplicates``, not
``accepted`` again, and no event row is stored twice (the part of a chunk stored before
the damage is remembered in ``FILE.import-cuts.json``). Files that are not events at
all (binary data, UTF-16 text, a CSV header without the event columns) fail at once,
storing nothing. Records that are bad on their own (invalid UTF-8, broken quoting in
one CSV record) are rejected with their line and the import succeeds (exit 0).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faults_support import TEST_NOW, event, sqlite_ok

from live_server import serving
from seqscore.api.app import create_app
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.storage.duckdb_events import DuckDBEventStore

N = 5000  # three chunks of up to 2,000 events: the damage falls inside the second
FIELDS = ["email", "timestamp", "event", "sg_event_id", "sg_message_id"]


class Importer:
    """``seqscore import`` into a data dir of its own, for the account ``acme``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.env = {**os.environ, "SEQSCORE_DATA_DIR": str(self.data),
                    "SEQSCORE_NOW": TEST_NOW.isoformat(), "SEQSCORE_INGEST_PROCESSES": "0"}
        self.env.pop("SEQSCORE_STATE_URL", None)
        self.env.pop("SEQSCORE_EVENTS_URL", None)
        assert self.seqscore("accounts", "create", "acme").returncode == 0

    def seqscore(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "seqscore", *args], env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)

    def run(self, path: Path) -> tuple[int, dict[str, Any], str]:
        """(exit status, the file's counts, stderr)."""
        done = self.seqscore("import", str(path), "--account", "acme")
        out = done.stdout
        assert "{" in out, (done.returncode, out, done.stderr)
        counts = json.loads(out[out.index("{"):])["files"][0]
        return done.returncode, counts, done.stderr

    def stored(self) -> tuple[int, int]:
        """(event rows, distinct event ids) in the event store; checks the state store."""
        assert sqlite_ok(self.data / "state.sqlite3")
        store = DuckDBEventStore(self.data / "events.duckdb")
        try:
            rows, distinct = store.sql("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        finally:
            store.close()
        return int(rows), int(distinct)


class RemoteImporter(Importer):
    """``seqscore import --url --key`` through a server running in this process."""

    def __init__(self, root: Path, services: Services, url: str) -> None:
        self.root, self.data, self.services = root, root / "data", services
        self.env = {**os.environ}
        account = services.accounts.create_account("acme")
        self.key = services.accounts.create_key(account, name="import",
                                                scopes=frozenset({"events.write"})).api_key
        self.url = url

    def run(self, path: Path) -> tuple[int, dict[str, Any], str]:
        done = self.seqscore("import", str(path), "--url", self.url, "--key", self.key)
        out = done.stdout
        assert "{" in out, (done.returncode, out, done.stderr)
        return done.returncode, json.loads(out[out.index("{"):])["files"][0], done.stderr

    def stored(self) -> tuple[int, int]:
        assert sqlite_ok(self.data / "state.sqlite3")
        store = self.services.events
        assert isinstance(store, DuckDBEventStore)
        rows, distinct = store.sql("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        return int(rows), int(distinct)


@pytest.fixture
def importer(tmp_path: Path) -> Importer:
    return Importer(tmp_path)


@pytest.fixture
def remote_importer(tmp_path: Path) -> Iterator[RemoteImporter]:
    services = Services.open(Settings(data_dir=tmp_path / "data", worker=False),
                             clock=FrozenClock(TEST_NOW))
    try:
        with serving(create_app(services)) as url:
            yield RemoteImporter(tmp_path, services, url)
    finally:
        services.close()


def events() -> list[dict[str, Any]]:
    return [event(n) for n in range(N)]


def jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in items)


def csv_bytes(items: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(items)
    return text.getvalue().encode()


def check_damaged_then_repaired(importer: Importer, path: Path, damaged: bytes, whole: bytes,
                                before: int, where: str) -> None:
    """Import ``damaged`` (``before`` records precede the damage, which the error
    places at ``where``), then the repaired ``whole`` twice, then ``damaged`` again."""
    path.write_bytes(damaged)
    status, counts, stderr = importer.run(path)
    assert status == 1, (counts, stderr)
    assert str(path) in stderr and where in stderr, stderr
    assert counts["error"] and where in counts["error"]
    assert (counts["accepted"], counts["duplicates"], counts["rejected"]) == (before, 0, 0)
    assert importer.stored() == (before, before)
    assert 0 < before < N and before % 2000, "the damage falls inside a chunk"

    path.write_bytes(whole)  # repaired in place, as a download done again is
    status, counts, stderr = importer.run(path)
    assert status == 0, stderr
    assert (counts["accepted"], counts["duplicates"], counts["rejected"]) == (N - before,
                                                                              before, 0)
    assert counts["error"] is None
    assert importer.stored() == (N, N)  # nothing stored twice

    status, counts, _ = importer.run(path)  # and again: everything recognised
    assert (status, counts["accepted"], counts["duplicates"]) == (0, 0, N)
    path.write_bytes(damaged)  # the damaged copy once more: nothing new either
    status, counts, _ = importer.run(path)
    assert (status, counts["accepted"], counts["duplicates"]) == (1, 0, before)
    assert importer.stored() == (N, N)


def test_a_gzip_stream_cut_in_the_middle(importer: Importer) -> None:
    whole = gzip.compress(jsonl(events()), mtime=0)
    damaged = whole[:len(whole) * 55 // 100]
    readable = zlib.decompressobj(wbits=31).decompress(damaged)  # what can be read of it
    check_damaged_then_repaired(importer, importer.root / "events.jsonl.gz", damaged, whole,
                                before=readable.count(b"\n"),
                                where=f"byte {len(readable)} of the decompressed data")


def test_a_json_array_cut_inside_an_object(importer: Importer) -> None:
    items = [json.dumps(e, indent=1).encode() for e in events()]
    whole = b"[\n" + b",\n".join(items) + b"\n]\n"
    before = 3210
    start = len(b"[\n") + sum(len(item) + 2 for item in items[:before])  # of the one cut
    cut = start + len(items[before]) // 2
    line = whole[:start].count(b"\n") + 1
    check_damaged_then_repaired(importer, importer.root / "events.json", whole[:cut], whole,
                                before=before, where=f"line {line}, byte {start}")


def test_through_the_server_a_cut_file_then_the_repaired_one(
        remote_importer: RemoteImporter) -> None:
    items = [json.dumps(e).encode() for e in events()]
    whole = b"[" + b",\n".join(items) + b"]"
    before = 2345
    start = 1 + sum(len(item) + 2 for item in items[:before])
    check_damaged_then_repaired(remote_importer, remote_importer.root / "events.json",
                                whole[:start + 20], whole, before=before,
                                where=f"line {before + 1}, byte {start}")


def test_a_csv_quote_never_closed(importer: Importer) -> None:
    whole = csv_bytes(events())
    lines = whole.split(b"\n")
    before = 2600  # the record on line before + 2 opens a quote; the file ends inside it
    damaged = b"\n".join([*lines[:before + 1], b'"' + lines[before + 1], *lines[before + 2:]])
    check_damaged_then_repaired(importer, importer.root / "events.csv", damaged, whole,
                                before=before, where=f"line {before + 2}")


def test_broken_quoting_and_invalid_utf8_in_single_records_are_rejected_with_their_line(
        importer: Importer) -> None:
    items = events()[:300]
    lines = csv_bytes(items).split(b"\n")
    lines[11] = lines[11].replace(b"person", b'"person"x', 1)  # text after a closing quote
    lines[21] = lines[21].replace(b"person", b"p\xe9rson", 1)  # Latin-1, not UTF-8
    path = importer.root / "events.csv"
    path.write_bytes(b"\n".join(lines))
    status, counts, stderr = importer.run(path)
    assert status == 0, stderr
    assert (counts["accepted"], counts["rejected"], counts["error"]) == (298, 2, None)
    rejects = [json.loads(line) for line in Path(counts["rejected_file"]).read_text().splitlines()]
    assert [r["line"] for r in rejects] == [12, 22]
    assert "CSV" in rejects[0]["reason"] and "UTF-8" in rejects[1]["reason"], rejects
    assert importer.stored() == (298, 298)


def test_a_whole_file_of_invalid_utf8_lines_is_rejected_line_by_line(
        importer: Importer) -> None:
    latin1 = "".join(json.dumps({**event(n), "email": f"zoë{n}@example.com"},
                                ensure_ascii=False) + "\n" for n in range(50))
    path = importer.root / "latin1.jsonl"
    path.write_bytes(latin1.encode("latin-1"))
    status, counts, stderr = importer.run(path)
    assert status == 0, stderr
    assert (counts["records"], counts["accepted"], counts["rejected"]) == (50, 0, 50)
    rejects = [json.loads(line) for line in Path(counts["rejected_file"]).read_text().splitlines()]
    assert [r["line"] for r in rejects] == list(range(1, 51))
    assert all("UTF-8" in r["reason"] for r in rejects)
    assert importer.stored() == (0, 0)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("garbage.json", random.Random(7).randbytes(100_000), "binary data"),
    ("garbage.jsonl.gz", gzip.compress(random.Random(8).randbytes(100_000)), "binary data"),
    ("utf16.csv", csv_bytes(events()[:50]).decode().encode("utf-16"), "UTF-16"),
    ("latin1-header.csv", b"\xe9vent,timestamp\nprocessed,1700000000\n",
     "the CSV header row is not UTF-8 text (line 1, byte 0)"),
    ("no-event-column.csv", b"name,when\nx,1700000000\n", 'names no "event" or "timestamp"'),
], ids=["binary", "binary-gzip", "utf16", "latin1-header", "no-event-column"])
def test_a_file_that_is_not_events_fails_at_once_and_stores_nothing(
        importer: Importer, name: str, content: bytes, message: str) -> None:
    path = importer.root / name
    path.write_bytes(content)
    status, counts, stderr = importer.run(path)
    assert status == 1, (counts, stderr)
    assert f"Error: {path}: " in stderr and message in stderr, stderr
    assert (counts["records"], counts["accepted"], counts["rejected"]) == (0, 0, 0)
    assert not path.with_name(name + ".rejected.jsonl").exists()
    assert not (importer.data / "events.duckdb").exists() or importer.stored() == (0, 0)
