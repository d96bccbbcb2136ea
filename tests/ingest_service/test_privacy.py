"""No plaintext recipient address reaches any file of the data dir.

A real ``seqscore serve`` (worker on, logging at debug into a file inside the data
dir) receives events whose recipients are distinctive: valid ones, ones quoting the
address in other fields and ids, rejected ones (the quarantine keeps them whole),
refused ones; the worker computes results from them, and a direct import adds more.
Then every byte of every file in the data dir is searched, while the server runs
(DuckDB's write-ahead log holds fresh rows uncompressed) and after it stopped; and,
since DuckDB compresses strings in its file, every stored value is searched through
SQL too. The quarantined events must still be there, whole, once decrypted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from ingest_service_support import CLOSED, Serve, at, body, post

from seqscore.cli import main
from seqscore.settings import Settings
from seqscore.storage.state import StateStore

pytestmark = pytest.mark.slow

LOCALS = ["zq7.canary+one", "Xv9-Canary.Two", "kw3_canary_three"]
ADDRESSES = [f"{LOCALS[0]}@example.org", f"{LOCALS[1]}@Gmail.com", f"{LOCALS[2]}@yahoo.com"]
#: What must never be found: each local part in any case, and the encodings it may take.
NEEDLES = sorted({form for local in LOCALS for form in (
    local, local.lower(), local.upper(), local.lower().replace("@", "%40"),
    local.lower().replace("+", "%2B"))}, key=len)


def canary_events() -> list[dict]:
    events = []
    for n, address in enumerate(ADDRESSES):
        day_ts = at(CLOSED, 8 + n)
        escaped = address.replace("@", "\\u0040")
        events += [
            {"email": address, "timestamp": day_ts, "event": "processed",
             "sg_event_id": f"p{n}", "sg_message_id": f"m{n}.0"},
            {"email": address, "timestamp": day_ts + 1, "event": "delivered",
             "sg_event_id": f"d{n}", "sg_message_id": f"m{n}.0",
             "note": f"sent to {address}; escaped {escaped}",
             "url": f"https://x.test/?to={address.replace('@', '%40')}"},
            {"email": address, "timestamp": day_ts + 2, "event": "open",
             "sg_event_id": f"id-for-{address}", "sg_message_id": f"{address}.msg"},
            {"email": address, "timestamp": day_ts + 3, "event": "bounce",
             "status": f"5.1.1 <{address}>", "bounce_classification": "Invalid Address"},
            # rejected, kept whole in the quarantine:
            {"email": address, "timestamp": "some time", "event": "delivered"},
            {"email": address, "timestamp": day_ts, "event": "exploded"},
        ]
    return events


def find_plaintext(folder: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle in NEEDLES:
            for encoded in {needle.encode(), needle.encode("utf-16-le")}:
                if encoded in data:
                    found.append((str(path.relative_to(folder)), needle))
    return found


def test_no_plaintext_address_reaches_any_file_of_the_data_dir(tmp_path: Path):
    data = tmp_path / "data"
    server = Serve(data, worker=True, log=data / "serve.log", SEQSCORE_LOG_LEVEL="debug")
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(main, list(args), env=server.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    data.mkdir(parents=True)
    run("accounts", "create", "acme")
    run("accounts", "create", "signed")
    key = json.loads(run("keys", "create", "acme", "--scopes", "events.write"))["api_key"]
    signed_key = json.loads(run("keys", "create", "signed"))["api_key"]
    run("accounts", "set-webhook-key", "signed",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GR"
        "qe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
    payload = body(*canary_events())
    assert any(n.encode() in payload for n in NEEDLES)  # the search would see them
    with server:
        status, answer = post(server.url, payload, {"Authorization": f"Bearer {key}"})
        assert (status, answer["accepted"], answer["rejected"]) == (200, 12, 6)
        status, _ = post(server.url, payload, {"Authorization": f"Bearer {signed_key}"})
        assert status == 403  # refused: logged, nothing stored
        state = StateStore.open(Settings(data_dir=data).resolved_state_url)
        try:
            deadline = time.monotonic() + 60
            while not state.get_results(1, CLOSED, CLOSED):  # the worker computes the day
                assert time.monotonic() < deadline, "the worker computed nothing"
                time.sleep(0.2)
        finally:
            state.close()
        assert find_plaintext(data) == []
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in canary_events()))
    run("import", str(history), "--account", "acme")
    run("compute", "--date", CLOSED.isoformat())
    run("quarantine", "list")
    assert find_plaintext(data) == []

    # The stored values themselves (DuckDB compresses its file: search them through SQL).
    from seqscore.storage.duckdb_events import DuckDBEventStore

    store = DuckDBEventStore(data / "events.duckdb")
    try:
        stored_text = json.dumps(store.sql("SELECT * FROM events"), default=str)
        assert store.count() >= 12
    finally:
        store.close()
    state = StateStore.open(Settings(data_dir=data).resolved_state_url)
    try:
        results = json.dumps([r.__repr__() for r in state.get_results(1, CLOSED, CLOSED)
                              .values()])
        kept = state.list_quarantined(limit=100)
    finally:
        state.close()
    for needle in NEEDLES:
        assert needle not in stored_text and needle not in results
    assert {k.reason for k in kept} == {'unparsable "timestamp": "some time"',
                                        'unknown event type "exploded"'}
    assert all(not any(n.encode() in k.sealed_payload for n in NEEDLES) for k in kept)

    # ...and yet the quarantine keeps them whole: decrypted, the addresses are there.
    shown = json.loads(run("quarantine", "show", *(str(k.quarantine_id) for k in kept)))
    assert sorted({e["event"]["email"] for e in shown}) == sorted(ADDRESSES)
