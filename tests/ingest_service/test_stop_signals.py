"""``seqscore serve`` and ``seqscore worker`` stop gracefully on SIGTERM (what systemd,
Docker and Kubernetes send) and SIGINT (Ctrl-C): exit 0, say so, print no traceback,
and close their stores, so that no write-ahead log is left for the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_service_support import Serve, body, event, post

pytestmark = pytest.mark.slow

STOP_SIGNALS = [signal.SIGTERM, signal.SIGINT]


def write_ahead_logs(data: Path) -> list[str]:
    """DuckDB's ``*.wal`` and SQLite's ``*-wal``: both are folded into the database
    and removed when the last connection closes cleanly."""
    return sorted(p.name for p in data.rglob("*") if p.name.endswith(("wal", "wal2")))


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes],
                  timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.05)


@pytest.mark.parametrize("stop", STOP_SIGNALS, ids=lambda s: s.name)
def test_serve_stops_gracefully_and_closes_its_stores(tmp_path: Path, stop: signal.Signals):
    data, log = tmp_path / "data", tmp_path / "serve.log"
    server = Serve(data, log=log, SEQSCORE_LOG_LEVEL="info")
    _, keys = server.create_senders(["acme"])
    with server:
        status, answer = post(server.url, body(*(event(i) for i in range(20))),
                              {"Authorization": f"Bearer {keys['acme']}"})
        assert (status, answer["accepted"]) == (200, 20)
        assert write_ahead_logs(data)  # the batch is in the logs until a clean close
        assert server.process is not None
        server.process.send_signal(stop)
        assert server.process.wait(timeout=30) == 0
    output = log.read_text(errors="replace")
    assert "Finished server process" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert write_ahead_logs(data) == []


@pytest.mark.parametrize("stop", STOP_SIGNALS, ids=lambda s: s.name)
def test_worker_stops_after_its_round_and_closes_its_stores(tmp_path: Path,
                                                            stop: signal.Signals):
    data, log = tmp_path / "data", tmp_path / "worker.log"
    env = {**Serve(data).env, "SEQSCORE_LOG_LEVEL": "info"}
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "seqscore", "worker"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_line(log, "started", worker)
        assert write_ahead_logs(data)
        worker.send_signal(stop)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
    output = log.read_text(errors="replace")
    assert f"{stop.name} received: stopping after the current round" in output
    assert "stopped" in output.split("received")[1]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert write_ahead_logs(data) == []
