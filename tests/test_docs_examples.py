"""The examples in docs/api.md work as printed, against a real server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from live_server import serving
from seqscore.api.app import create_app
from seqscore.clock import SystemClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import World

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
DOC_URL = "http://127.0.0.1:8000"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def live(tmp_path: Path):
    """A server on the real clock with a parent, a child and 9 days of results.

    The examples ask for "yesterday" and "the last 7 days" by the real date. With
    the default settle delay, yesterday is still open (202) for the first hour of
    every UTC day, so these tests would fail after midnight; a settle of 0 closes
    yesterday at midnight and keeps the answer independent of the time of day.
    """
    settings = Settings(data_dir=tmp_path / "data", worker=False, settle_minutes=0)
    services = Services.open(settings, clock=SystemClock())
    world = World(services)
    parent = world.account("acme")
    child = world.account("acme-news", parent=parent)
    today = dt.datetime.now(dt.UTC).date()
    for back in range(0, 9):
        world.result(parent, today - dt.timedelta(days=back))
        world.result(child, today - dt.timedelta(days=back))
    with serving(create_app(services)) as url:
        yield url, world.key(parent)
    services.close()


def test_the_curl_example_answers_200_with_scores(live):
    url, key = live
    [curl] = [b for b in _blocks("sh") if "curl" in b]
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(["bash", "-c", curl.replace(DOC_URL, url)], capture_output=True,
                         text=True, env={**os.environ, "SEQSCORE_API_KEY": key}, check=True)
    result = json.loads(out.stdout)["result"]
    assert len(result) >= 7 and all(e["score"] == 4 for e in result)


def test_the_sendgrid_python_example_prints_every_child(live):
    url, key = live
    [python] = _blocks("python")
    out = subprocess.run([sys.executable, "-c", python.replace(DOC_URL, url)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "SEQSCORE_API_KEY": key})
    assert out.stdout.splitlines() == ["200", "acme-news 4"]
