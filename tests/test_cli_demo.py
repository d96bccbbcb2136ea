"""`seqscore demo` loads realistic senders through the real ingest path and scores them."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.cli import main
from seqscore.service.services import Services
from seqscore.settings import Settings

SPECIAL = {"purchased-list", "complaint-heavy", "low-volume"}


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"no {pattern!r} in:\n{text}"
    return match.group(1)


def test_demo_loads_scores_and_prints_a_working_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    args = ["demo", "--data-dir", str(data_dir), "--no-serve", "--accounts", "14",
            "--days", "45", "--volume-scale", "0.5"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    key = found(r"SEQSCORE_API_KEY=(SG\.\S+)", result.output)
    closed = found(r"subusers/scores\?date=(\d{4}-\d{2}-\d{2})", result.output)
    for phase in ("accounts", "events", "results"):  # one timing line per phase
        assert float(found(rf"phase {phase}: ([\d.]+) s", result.output)) >= 0

    services = Services.open(Settings(data_dir=data_dir, worker=False))
    try:
        client = TestClient(create_app(services))
        answer = client.get(f"/v3/engagementquality/subusers/scores?date={closed}",
                            headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        entries = {e["username"]: e for e in answer.json()["result"]}
        assert len(entries) == 13  # every child of the demo parent
        assert entries.keys() >= SPECIAL
        assert "score" not in entries["low-volume"]  # ineligible: no score, no metrics
        assert entries["purchased-list"]["metrics"]["bounce_rate"] <= 2
        assert entries["healthy-newsletter"]["score"] >= 4
    finally:
        services.close()

    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0
    assert "Reusing the demo" in again.output
    assert found(r"SEQSCORE_API_KEY=(SG\.\S+)", again.output) != key
