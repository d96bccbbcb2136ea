"""``seqscore import``: every format into the data dir, re-runs, rejected lines, a pool of
parsers, a damaged file; and the same files through a running server (``--url``)."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ingest_service_support import CLOSED, TEST_NOW, event

from live_server import serving
from seqscore.api.app import create_app
from seqscore.cli import main
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import JobState
from seqscore_testing import World

FIELDS = ["email", "timestamp", "event", "sg_event_id", "sg_message_id"]


@pytest.fixture
def cli(tmp_path: Path, state_url: str):
    """run(*args) -> click Result, on a data dir of its own, clock frozen at TEST_NOW."""
    env = {"SEQSCORE_DATA_DIR": str(tmp_path / "data"), "SEQSCORE_STATE_URL": state_url,
           "SEQSCORE_NOW": TEST_NOW.isoformat()}
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert run("accounts", "create", "acme").exit_code == 0
    return run


def services_of(tmp_path: Path, state_url: str) -> Services:
    return Services.open(Settings(data_dir=tmp_path / "data", state_url=state_url, worker=False),
                         clock=FrozenClock(TEST_NOW))


def answer(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


def lines_of(events: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(events, indent=1).encode()
    if fmt == "jsonl":
        return b"".join(json.dumps(e).encode() + b"\n" for e in events)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(events)
    return text.getvalue().encode()


def sample(n: int = 30) -> list[dict[str, Any]]:
    events = [event(i) for i in range(n)]
    events[4]["event"] = "vanished"  # rejected by the parser
    events[9]["timestamp"] = "never"
    return events


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_import_reads_every_format_and_reports_the_receivers_counts(cli, tmp_path, state_url,
                                                                    fmt, compress):
    data = lines_of(sample(), fmt)
    path = tmp_path / f"events.{fmt}"
    path.write_bytes(gzip.compress(data) if compress else data)
    first = answer(cli("import", str(path), "--account", "acme"))
    assert (first["accepted"], first["rejected"], first["duplicates"]) == (28, 2, 0)
    rejected = [json.loads(line) for line in
                (tmp_path / f"events.{fmt}.rejected.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected] == ['unknown event type "vanished"',
                                                'unparsable "timestamp": "never"']
    if fmt == "jsonl":
        assert [r["line"] for r in rejected] == [5, 10]
        assert json.loads(rejected[0]["record"])["event"] == "vanished"
    again = answer(cli("import", str(path), "--account", "acme"))  # safe to re-run
    assert (again["accepted"], again["rejected"], again["duplicates"]) == (0, 2, 28)
    services = services_of(tmp_path, state_url)
    try:
        assert services.events.count() == 28
        assert services.state.list_quarantined() == []  # the import's rejects stay beside it
    finally:
        services.close()


def test_lines_that_are_not_json_are_rejected_with_their_line(cli, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(json.dumps(event(1)).encode() + b"\n{not json\n"
                     + json.dumps(event(2)).encode() + b"\n")
    result = answer(cli("import", str(path), "--account", "acme"))
    assert (result["accepted"], result["rejected"]) == (2, 1)
    (reject,) = [json.loads(x) for x in (tmp_path / "mixed.jsonl.rejected.jsonl").read_text()
                 .splitlines()]
    assert reject["line"] == 2 and reject["record"] == "{not json"


def test_a_clean_re_run_removes_an_old_rejected_file(cli, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(lines_of(sample(), "jsonl"))
    answer(cli("import", str(path), "--account", "acme"))
    path.write_bytes(lines_of([event(100)], "jsonl"))
    result = answer(cli("import", str(path), "--account", "acme"))
    assert result["files"][0]["rejected_file"] is None
    assert not (tmp_path / "e.jsonl.rejected.jsonl").exists()


def test_parsing_in_worker_processes_stores_the_same_rows(tmp_path, state_url):
    events = [event(i, email=f"p{i}@gmail.com") for i in range(5000)]
    path = tmp_path / "big.jsonl"
    path.write_bytes(lines_of(events, "jsonl"))
    env = {"SEQSCORE_DATA_DIR": str(tmp_path / "data"), "SEQSCORE_STATE_URL": state_url,
           "SEQSCORE_NOW": TEST_NOW.isoformat()}
    runner = CliRunner()
    runner.invoke(main, ["accounts", "create", "acme"], env=env, catch_exceptions=False)
    result = answer(runner.invoke(main, ["import", str(path), "--account", "acme",
                                         "--processes", "2"], env=env, catch_exceptions=False))
    assert result["accepted"] == 5000
    services = services_of(tmp_path, state_url)
    try:
        rows = services.events.sql("SELECT event_id, recipient, provider FROM events "
                                   "ORDER BY event_id")
        expected = services.ingest.parser.parse(
            lines_of(events, "json"), account_id=1, ingested_at=TEST_NOW).table
        assert rows == sorted(zip(expected["event_id"].to_pylist(),
                                  expected["recipient"].to_pylist(),
                                  expected["provider"].to_pylist(), strict=True))
    finally:
        services.close()


def test_a_damaged_file_keeps_what_came_before_and_fails_naming_the_place(cli, tmp_path):
    data = gzip.compress(lines_of([event(i) for i in range(20_000)], "jsonl"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    result = cli("import", str(path), "--account", "acme")
    assert result.exit_code == 1
    assert "cut.jsonl.gz" in result.output and "truncated" in result.output
    counts = json.loads(result.output[result.output.index("{"):result.output.rindex("}") + 1])
    assert counts["accepted"] >= 2000  # the chunks before the damage are stored


@pytest.mark.parametrize(("args", "message"), [
    (["--key", "SG.x"], "--key and --on-behalf-of go with --url"),
    (["--url", "http://127.0.0.1:1"], "--url needs --key"),
    ([], "give --account USERNAME"),
])
def test_import_options_are_checked(cli, tmp_path, args, message):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"")
    result = cli("import", str(path), *args)
    assert result.exit_code == 2 and message in result.output


def test_importing_for_an_unknown_account_says_so(cli, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(lines_of([event(1)], "jsonl"))
    result = cli("import", str(path), "--account", "nobody")
    assert result.exit_code == 1 and "no account named 'nobody'" in result.output


# -- through a running server -----------------------------------------------------------------


def test_import_through_the_server_with_url_and_key(tmp_path, state_url):
    services = services_of(tmp_path, state_url)
    try:
        parent = services.accounts.create_account("parent")
        child = services.accounts.create_account("child", parent=parent)
        key = services.accounts.create_key(parent, name="import",
                                           scopes=frozenset({"events.write"})).api_key
        path = tmp_path / "history.jsonl"
        path.write_bytes(lines_of(sample(60), "jsonl"))
        runner = CliRunner()
        with serving(create_app(services)) as url:
            args = ["import", str(path), "--url", url, "--key", key, "--on-behalf-of", "child"]
            first = answer(runner.invoke(main, args, catch_exceptions=False))
            rejected = (tmp_path / "history.jsonl.rejected.jsonl").read_text().splitlines()
            again = answer(runner.invoke(main, args, catch_exceptions=False))
            refused = runner.invoke(main, ["import", str(path), "--url", url, "--key",
                                           "SG.aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                                           "bbbbbbbbbbbbbb"], catch_exceptions=False)
        assert (first["accepted"], first["rejected"], first["duplicates"]) == (58, 2, 0)
        assert [json.loads(x)["line"] for x in rejected] == [5, 10]
        assert (again["accepted"], again["duplicates"]) == (0, 58)
        assert refused.exit_code == 1 and "401" in refused.output
        assert {r[0] for r in services.events.sql("SELECT account_id FROM events")} == {
            child.user_id}
    finally:
        services.close()


def test_a_local_import_marks_results_stale_and_queues_a_few_jobs(cli, tmp_path, state_url):
    """History imported beside stored results queues their recomputation, as the receiver
    does: one job per (account, day) it can change, not one per event."""
    services = services_of(tmp_path, state_url)
    try:
        world = World(services)
        acme = services.state.require_account("acme")
        result_days = [CLOSED - dt.timedelta(days=i) for i in range(20)]
        for day in result_days:
            world.result(acme, day)
    finally:
        services.close()
    first_late = CLOSED - dt.timedelta(days=9)
    events = [event(n, day=first_late if n % 2 else CLOSED - dt.timedelta(days=7))
              for n in range(5000)]
    path = tmp_path / "history.jsonl"
    path.write_bytes(lines_of(events, "jsonl"))
    assert answer(cli("import", str(path), "--account", "acme"))["accepted"] == 5000

    services = services_of(tmp_path, state_url)
    try:
        pending = services.state.list_jobs(JobState.PENDING)
        stored = services.state.get_results(acme.user_id, result_days[-1], CLOSED)
    finally:
        services.close()
    assert sorted(j.day for j in pending) == [first_late + dt.timedelta(days=i)
                                              for i in range(10)]
    assert {d for d, r in stored.items() if r.stale} == {j.day for j in pending}


def test_the_progress_bar_shows_events_per_second_on_a_terminal(cli, tmp_path, state_url):
    """On a terminal (here a pseudo-terminal), the import draws a progress bar with the
    events read and their rate; piped, it draws none (the other tests)."""
    path = tmp_path / "history.jsonl"
    path.write_bytes(lines_of([event(i) for i in range(3000)], "jsonl"))
    controller, terminal = os.openpty()
    # a terminal of 30 rows and 120 columns (a new one has 0 columns: no room for a bar)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = {**os.environ, "SEQSCORE_DATA_DIR": str(tmp_path / "data"),
           "SEQSCORE_STATE_URL": state_url, "SEQSCORE_NOW": TEST_NOW.isoformat()}
    proc = subprocess.Popen([sys.executable, "-m", "seqscore", "import", str(path),
                             "--account", "acme"], env=env, stdout=subprocess.PIPE,
                            stderr=terminal)
    os.close(terminal)
    drawn = bytearray()
    while True:  # read the terminal while the command runs, so that it never blocks
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the command has closed its end
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(controller)
    assert proc.returncode == 0, drawn.decode(errors="replace")
    assert json.loads(out)["accepted"] == 3000
    text = drawn.decode(errors="replace")
    assert "history.jsonl" in text
    assert re.search(r"3,000 events, [\d,]+ events/s", text), text
    assert "100%" in text
