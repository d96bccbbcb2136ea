"""``seqscore quarantine list|show``: what an operator sees of rejected events."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from ingest_service_support import TEST_NOW, body, event

from seqscore.cli import main
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import World


def test_list_filters_by_account_and_limits_the_newest_first(tmp_path: Path, state_url: str):
    data = tmp_path / "data"
    services = Services.open(Settings(data_dir=data, state_url=state_url, worker=False),
                             clock=FrozenClock(TEST_NOW))
    try:
        world = World(services)
        acme, other = world.account("acme"), world.account("other")
        for n in range(4):
            services.ingest.ingest(acme, body(event(n), event(100 + n, event=f"bad-{n}")))
        services.ingest.ingest(other, body(event(9, event="bad-other")))
    finally:
        services.close()
    env = {"SEQSCORE_DATA_DIR": str(data), "SEQSCORE_STATE_URL": state_url}

    def run(*args: str):
        return CliRunner().invoke(main, ["quarantine", *args], env=env)

    everything = json.loads(run("list").output)
    assert sorted(q["account"] for q in everything) == ["acme"] * 4 + ["other"]
    listed = json.loads(run("list", "--account", "acme", "--limit", "2").output)
    assert [q["account"] for q in listed] == ["acme", "acme"]
    assert [q["reason"] for q in listed] == ['unknown event type "bad-3"',
                                             'unknown event type "bad-2"']
    assert all(q["index"] == 1 and "event" not in q for q in listed)  # contents: show only
    shown = json.loads(run("show", str(listed[0]["id"])).output)
    assert shown[0]["event"]["event"] == "bad-3"

    unknown = run("list", "--account", "nobody")
    assert unknown.exit_code == 1
    assert "nobody" in unknown.output
