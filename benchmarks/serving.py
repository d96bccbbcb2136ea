"""What the benchmarks share: a real server on a loopback port, and /proc readings.

Used by benchmarks/ingest.py, benchmarks/api_seq.py and benchmarks/soak.py (run as
scripts: their own folder is on ``sys.path``, so ``from serving import ...`` works).

- ``Server``: a process (``seqscore serve`` or a baseline app) on a free port of
  127.0.0.1, in its own session, with its output in a log file; ``start`` spawns
  it, ``wait_ready`` polls ``GET /api/v1/health``, ``stop`` sends SIGTERM to the
  group (SIGKILL after ``timeout``).
- ``process_tree``, ``cpu_seconds_by_pid``, ``tree_cpu_seconds``,
  ``tree_memory_bytes``: a process and its descendants, read from /proc.
- ``benchmark_env``: the caller's environment less every ``SEQSCORE_*`` setting.
- ``basic``: HTTP Basic credentials of an API key, as SendGrid's webhook sends them.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


class BenchError(Exception):
    """Setup or correctness failure: the run is aborted (exit 2)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def benchmark_env() -> dict[str, str]:
    """The environment for a server under test: none of the caller's SEQSCORE_* (a state
    URL, a model, a frozen clock...); each benchmark sets its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEQSCORE_")}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode()


# ---------------------------------------------------------------- /proc readings


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds_by_pid(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of ``pid`` and of each of its descendants."""
    found = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            found[member] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds_by_pid(pid).values())


def tree_memory_bytes(pid: int) -> int:
    """Memory of ``pid`` and its descendants: the sum of their proportional set sizes
    (PSS: a page shared by n processes counts 1/n in each), else of their resident sets."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError):
            rollup = Path(f"/proc/{member}/smaps_rollup")
            source, field_name = ((rollup, "Pss:") if rollup.exists()
                                  else (Path(f"/proc/{member}/status"), "VmRSS:"))
            for line in source.read_text().splitlines():
                if line.startswith(field_name):
                    total += int(line.split()[1]) * 1024
                    break
    return total


# ------------------------------------------------------------------- the server


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        """Spawn the process (``{port}`` in ``argv`` is replaced); see ``wait_ready``."""
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 90.0) -> Server:
        """Until ``GET /api/v1/health`` answers 200; BenchError if the process exits."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} server exited ({self.proc.returncode}); log:\n"
                                 + self.log.read_text(errors="replace")[-3000:])
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                try:
                    conn.request("GET", "/api/v1/health")
                    if conn.getresponse().status == 200:
                        return self
                finally:
                    conn.close()
            time.sleep(0.1)
        raise BenchError(f"{self.name} server not ready after {timeout:.0f}s")

    def check_loop_and_parser(self) -> str:
        """uvloop and httptools must be loaded in the server process (one worker)."""
        assert self.proc is not None
        maps = Path(f"/proc/{self.proc.pid}/maps")
        if not maps.exists():
            return "not checked (no /proc)"
        text = maps.read_text(errors="replace")
        missing = [m for m in ("uvloop", "httptools") if m not in text]
        if missing:
            raise BenchError(f"{self.name}: {', '.join(missing)} not loaded in the server")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists() and children.read_text().strip():
            raise BenchError(f"{self.name}: the server has worker processes; want one")
        return "uvloop + httptools, one process"

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the server process itself."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=10)
