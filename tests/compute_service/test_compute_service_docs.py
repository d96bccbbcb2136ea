"""The /api/v1/scores examples of docs/api.md work as printed, against a real server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from live_server import serving
from seqscore.api.app import create_app
from seqscore.clock import SystemClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import World

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
DOC_URL = "http://127.0.0.1:8000"
SECTION = "## Explanations and history: /api/v1/scores"


def _examples() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server on the real clock: acme and its subuser acme-news, each with a result
    for the day before yesterday."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    services = Services.open(Settings(data_dir=tmp_path / "data", worker=False),
                             clock=SystemClock())
    world = World(services)
    acme = world.account("acme")
    news = world.account("acme-news", parent=acme)
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    world.result(acme, day, score=5)
    world.result(news, day, score=3)
    try:
        with serving(create_app(services)) as url:
            yield url, world.key(acme)
    finally:
        services.close()


def _run(example: str, url: str, key: str) -> Any:
    out = subprocess.run(["bash", "-c", example.replace(DOC_URL, url)], capture_output=True,
                         text=True, env={**os.environ, "SEQSCORE_API_KEY": key}, check=True)
    return json.loads(out.stdout)


def test_the_explanation_and_history_examples_answer_as_documented(
        live: tuple[str, str]) -> None:
    url, key = live
    own, child, history = _examples()
    assert (_run(own, url, key)["username"], _run(own, url, key)["score"]) == ("acme", 5)
    assert (_run(child, url, key)["username"], _run(child, url, key)["score"]) == (
        "acme-news", 3)
    result = _run(history, url, key)["result"]
    assert {e["username"] for e in result} == {"acme-news"}
    assert len(result) >= 199  # 200 days back; today (and maybe yesterday) not closed
    assert [e["score"] for e in result if e["status"] == "computed"] == [3]
    assert {e["status"] for e in result} == {"computed", "pending", "unavailable"}
