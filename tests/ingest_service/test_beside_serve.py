"""The CLI beside a running ``seqscore serve`` on the same data dir: the server owns the
event store, so commands that need it go through the server or say who holds it, and
commands that need only the state store just work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ingest_service_support import Serve, body, event, post

from seqscore.cli import main

pytestmark = pytest.mark.slow


def test_cli_commands_beside_a_running_server(tmp_path: Path):
    data = tmp_path / "data"
    server = Serve(data, worker=False)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env=server.env, catch_exceptions=False)

    assert run("accounts", "create", "acme").exit_code == 0
    key = json.loads(run("keys", "create", "acme", "--scopes", "events.write").output)["api_key"]
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(json.dumps(event(i)).encode() + b"\n" for i in range(50)))
    with server:
        # the event store is the server's: a direct import says who holds it and what to do
        direct = run("import", str(history), "--account", "acme")
        assert direct.exit_code == 1
        assert f"in use by process {server.pid}" in direct.output
        assert "--url" in direct.output
        computing = run("compute")
        assert computing.exit_code == 1 and f"process {server.pid}" in computing.output
        # so do the other commands that write events
        compacting = run("compact")
        assert compacting.exit_code == 1 and f"process {server.pid}" in compacting.output
        demo = run("demo", "--no-serve", "--accounts", "2", "--days", "2")
        assert demo.exit_code == 1 and f"process {server.pid}" in demo.output
        worker = subprocess.run([sys.executable, "-m", "seqscore", "worker"], env={
            **os.environ, **server.env}, capture_output=True, text=True, timeout=60)
        assert worker.returncode == 1 and f"process {server.pid}" in worker.stderr
        # ... and through it, the import works
        through = run("import", str(history), "--url", server.url, "--key", key)
        assert through.exit_code == 0, through.output
        assert json.loads(through.output)["accepted"] == 50

        status, answer = post(server.url, body(event(99), {"event": "nope"}),
                              {"Authorization": f"Bearer {key}"})
        assert (status, answer["rejected"]) == (200, 1)
        listed = json.loads(run("quarantine", "list").output)
        assert [(q["account"], q["reason"]) for q in listed] == [
            ("acme", 'unknown event type "nope"')]
        shown = json.loads(run("quarantine", "show", str(listed[0]["id"])).output)
        assert shown[0]["event"] == {"event": "nope"}

        # a verification key set from the CLI applies to the server's next POST
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert run("accounts", "set-webhook-key", "acme",
                   base64.b64encode(public).decode()).exit_code == 0
        status, _ = post(server.url, body(event(100)), {"Authorization": f"Bearer {key}"})
        assert status == 403
        assert run("accounts", "set-webhook-key", "acme", "--clear").exit_code == 0
        status, _ = post(server.url, body(event(100)), {"Authorization": f"Bearer {key}"})
        assert status == 200
    # stopped: the store is free again
    again = run("import", str(history), "--account", "acme")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["duplicates"] == 50


@pytest.mark.parametrize(("args", "message"), [
    (["acme", "not-a-key"], "not valid base64"),
    (["acme"], "give PUBLIC_KEY, or --clear"),
    (["nobody", "--clear"], "no account named 'nobody'"),
])
def test_set_webhook_key_checks_its_arguments(tmp_path, args, message):
    env = {"SEQSCORE_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    runner.invoke(main, ["accounts", "create", "acme"], env=env, catch_exceptions=False)
    result = runner.invoke(main, ["accounts", "set-webhook-key", *args], env=env,
                           catch_exceptions=False)
    assert result.exit_code != 0 and message in result.output
