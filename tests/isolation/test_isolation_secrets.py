"""API keys, recipient addresses and the installation's secrets never appear in plaintext.

A real ``seqscore serve`` (worker on, log level debug, its stdout and stderr captured
in a file outside the data dir) goes through a busy life: keys created through the CLI
and the API, used as Bearer and as Basic credentials, revoked and used again; failed and
successful dashboard logins; events with distinctive recipients in every case, posted
directly and on behalf of a child; rejected events (the quarantine keeps them) whose
invalid field quotes the address; bodies that are not JSON; a bad signature; answers
that are errors of every kind. Then three places are searched for every full API key,
every recipient address (local part in any case, and its encodings) and each
installation secret (``recipient-key``, ``quarantine-key``, ``dashboard-secret``, raw,
hex and base64):

- every byte of every file under the data dir, while the server runs (fresh WAL
  pages) and after it stopped: SQLite and DuckDB files and their logs, the quarantine,
  the secret files (each may hold only its own secret);
- the server's captured log output;
- every response body seen (a key creation answer may hold its own new key, once).

tests/ingest_service/test_privacy.py proves the same for addresses in the data dir
through SQL as well (DuckDB compresses strings); this test adds keys, secrets, logs and
answers.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from seqscore.cli import main
from seqscore.settings import Settings
from seqscore.storage.state import StateStore
from seqscore_testing import TEST_NOW

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest_service"))
from ingest_service_support import Serve

pytestmark = pytest.mark.slow

CLOSED = TEST_NOW.date() - dt.timedelta(days=1)  # the last closed day
CLOSED_S = int(TEST_NOW.timestamp()) - 86_400  # 12:00 UTC on it
LOCALS = ["Qv7.Secret+one", "kx4-Secret.Two", "ZR2_secret_three"]
ADDRESSES = [f"{LOCALS[0]}@example.org", f"{LOCALS[1]}@Gmail.com", f"{LOCALS[2]}@yahoo.com"]
SECRET_FILES = ("recipient-key", "quarantine-key", "dashboard-secret")


def address_needles() -> list[bytes]:
    """Each local part as sent, lower- and upper-cased, and every address in the
    encodings it could take on the way (URL-encoded ``@``, JSON-escaped ``@``)."""
    forms: set[str] = set()
    for local in LOCALS:
        forms |= {local, local.lower(), local.upper(), local.replace("+", "%2B")}
    for address in ADDRESSES:
        forms |= {address.replace("@", "%40").lower(), address.replace("@", "\\u0040")}
    return sorted({f.encode() for f in forms} | {f.encode("utf-16-le") for f in forms})


def secret_needles(data_dir: Path) -> dict[str, list[bytes]]:
    """Per secret file: its secret raw, hex and base64 (the dashboard's file is hex)."""
    found: dict[str, list[bytes]] = {}
    for name in SECRET_FILES:
        raw = (data_dir / name).read_bytes()
        if name == "dashboard-secret":
            raw = bytes.fromhex(raw.decode().strip())
        found[name] = [raw, raw.hex().encode(), raw.hex().upper().encode(),
                       base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]
    return found


def key_needles(key: str) -> list[bytes]:
    """A key as sent, and as Basic credentials carry it."""
    return [key.encode(), key.split(".")[2].encode(),
            base64.b64encode(f"apikey:{key}".encode())]


class Life:
    """Talks to the server and keeps every answer's body."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
        self.bodies: list[tuple[str, bytes]] = []  # (request line, body)
        self.created: dict[str, str] = {}  # full key -> the request line that created it

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.client.request(method, path, **kwargs)
        self.bodies.append((f"{method} {path} -> {answer.status_code}", answer.content))
        return answer


def events(*, rejected: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, address in enumerate(ADDRESSES):
        out += [
            {"email": address, "timestamp": CLOSED_S + n, "event": "processed",
             "sg_event_id": f"p{n}", "sg_message_id": f"m{n}.0"},
            {"email": address.upper(), "timestamp": CLOSED_S + n + 1, "event": "delivered",
             "sg_event_id": f"d{n}", "sg_message_id": f"m{n}.0"},
            {"email": f" {address.lower()} ", "timestamp": CLOSED_S + n + 2, "event": "open",
             "sg_event_id": f"o{n}", "sg_message_id": f"m{n}.0"},
        ]
        if rejected:  # invalid, and the invalid field quotes the address
            out += [{"email": address, "timestamp": address, "event": "delivered"},
                    {"email": address, "timestamp": CLOSED_S, "event": address},
                    {"email": address, "timestamp": CLOSED_S, "event": f"bounce {address}"},
                    {"email": [address], "timestamp": CLOSED_S, "event": "open"}]
    return out


def scan(blobs: list[tuple[str, bytes]], needles: dict[str, list[bytes]]) -> list[str]:
    """Which needle (by name) appears in which blob."""
    return sorted({f"{what} in {where}" for where, blob in blobs
                   for what, forms in needles.items() if any(f in blob for f in forms)})


def data_files(data_dir: Path) -> list[tuple[str, bytes]]:
    return [(str(p.relative_to(data_dir)), p.read_bytes())
            for p in sorted(data_dir.rglob("*")) if p.is_file()]


def test_no_key_address_or_secret_in_files_logs_or_answers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"  # outside the data dir: searched on its own
    server = Serve(data, worker=True, log=log, SEQSCORE_LOG_LEVEL="debug",
                   SEQSCORE_INGEST_PROCESSES="0")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, list(args), env=server.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    cli("accounts", "create", "acme")
    cli("accounts", "create", "acme-kid", "--parent", "acme")
    cli("accounts", "create", "signed")
    admin = json.loads(cli("keys", "create", "acme"))["api_key"]
    signed_key = json.loads(cli("keys", "create", "signed"))["api_key"]
    cli("accounts", "set-webhook-key", "signed",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GR"
        "qe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
    keys = [admin, signed_key]
    payload = json.dumps(events(rejected=True)).encode()
    assert all(a.encode() in payload for a in ADDRESSES)

    with server:
        life = Life(server.url)
        bearer = {"Authorization": f"Bearer {admin}"}
        # keys made and used through the API
        made = life.send("POST", "/v3/api_keys", headers=bearer,
                         json={"name": "webhook", "scopes": ["events.write"]}).json()
        hook = made["api_key"]
        life.created[hook] = "POST /v3/api_keys"
        kid = life.send("POST", "/v3/api_keys", headers={**bearer, "on-behalf-of": "acme-kid"},
                        json={"name": "kid"}).json()["api_key"]
        life.created[kid] = "POST /v3/api_keys"
        doomed = life.send("POST", "/v3/api_keys", headers=bearer,
                           json={"name": "doomed"}).json()
        life.created[doomed["api_key"]] = "POST /v3/api_keys"
        keys += [hook, kid, doomed["api_key"]]
        assert life.send("DELETE", f"/v3/api_keys/{doomed['api_key_id']}",
                         headers=bearer).status_code == 204
        # events: Bearer, Basic, on behalf of a child; rejects; not JSON; bad signature
        basic = base64.b64encode(f"apikey:{hook}".encode()).decode()
        answer = life.send("POST", "/api/v1/events/sendgrid", content=payload,
                           headers={"Authorization": f"Basic {basic}"}, params={"errors": "all"})
        assert answer.status_code == 200 and answer.json()["rejected"] == 12, answer.text
        assert life.send("POST", "/api/v1/events/sendgrid", content=payload,
                         headers={**bearer, "on-behalf-of": "acme-kid"}).status_code == 200
        assert life.send("POST", "/api/v1/events/sendgrid",
                         content=payload + b"]" + ADDRESSES[0].encode(),
                         headers=bearer).status_code == 400
        assert life.send("POST", "/api/v1/events/sendgrid",
                         content=ADDRESSES[1].encode(), headers=bearer).status_code == 400
        assert life.send("POST", "/api/v1/events/sendgrid", content=payload, headers={
            "Authorization": f"Bearer {signed_key}",
            "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQ" + "A" * 90,
            "X-Twilio-Email-Event-Webhook-Timestamp": str(int(TEST_NOW.timestamp()))},
        ).status_code == 403
        # credentials that fail: revoked, wrong secret, malformed, Basic where not allowed
        wrong = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
        for headers in ({"Authorization": f"Bearer {doomed['api_key']}"},
                        {"Authorization": f"Bearer {wrong}"},
                        {"Authorization": f"Bearer {admin}x"},
                        {"Authorization": f"Basic {basic}"}):
            assert life.send("GET", "/v3/engagementquality/scores", headers=headers,
                             params={"from": "2026-11-19", "to": "2026-11-19"},
                             ).status_code == 401
        keys.append(wrong)
        # errors of every kind
        for method, path, params in (
                ("GET", "/v3/engagementquality/scores", {"from": ADDRESSES[0], "to": "x"}),
                ("GET", "/api/v1/scores/" + ADDRESSES[2], {}),
                ("GET", "/api/v1/subusers/" + ADDRESSES[0] + "/scores/2026-11-19", {}),
                ("GET", "/v3/engagementquality/subusers/scores", {"date": admin}),
                ("PUT", "/api/v1/webhook-key", {}),
                ("POST", "/v3/subusers", {}),
                ("GET", "/" + ADDRESSES[1], {}),
                ("PATCH", "/v3/api_keys", {})):
            life.send(method, path, params=params, headers={**bearer, "on-behalf-of": admin},
                      content=json.dumps({"public_key": ADDRESSES[0], "username": admin}))
        # the dashboard: failed and successful logins, pages
        for attempt in (wrong, doomed["api_key"], ADDRESSES[0], admin):
            life.client.cookies.clear()
            page = life.send("GET", "/login")
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            life.send("POST", "/login", data={"csrf_token": token, "api_key": attempt,
                                             "next": "/"})
        assert life.client.cookies.get("seqscore_session")
        assert life.send("GET", "/").status_code == 200
        assert life.send("GET", "/accounts/acme-kid").status_code == 200
        # the worker computes the day from the events
        state = StateStore.open(Settings(data_dir=data).resolved_state_url)
        try:
            acme = state.require_account("acme")
            deadline = time.monotonic() + 60
            while not state.get_results(acme.user_id, CLOSED, CLOSED):
                assert time.monotonic() < deadline, "the worker computed nothing"
                time.sleep(0.2)
        finally:
            state.close()
        life.send("GET", "/api/v1/scores/2026-11-19", headers=bearer)
        life.send("GET", "/v3/engagementquality/scores", headers=bearer,
                  params={"from": "2026-11-19", "to": "2026-11-19"})
        running_files = data_files(data)  # with the write-ahead logs of a live server
        life.client.close()
    listed = cli("quarantine", "list")
    assert listed.count("unknown event type") >= 6
    assert len(life.bodies) > 30

    secrets = secret_needles(data)
    needles: dict[str, list[bytes]] = {f"key {k[:12]}...": key_needles(k) for k in keys}
    needles["a recipient address"] = address_needles()
    needles.update({f"the {name}": forms for name, forms in secrets.items()})
    files = running_files + data_files(data)
    in_files = [hit for hit in scan(files, needles)
                if not any(hit == f"the {name} in {name}" for name in SECRET_FILES)]
    assert in_files == []
    assert scan([("the server's log", log.read_bytes()),
                 ("seqscore quarantine list", listed.encode())], needles) == []
    answers = []
    for where, body in life.bodies:
        hits = scan([(where, body)], needles)
        own = [f"key {k[:12]}... in {where}" for k, made_by in life.created.items()
               if where.startswith(made_by) and k.encode() in body]
        answers += [hit for hit in hits if hit not in own]
    assert answers == []
    assert log.stat().st_size > 0  # debug logging did write something
    # the folder (created by the first command) is its owner's only; each secret 0600
    assert data.stat().st_mode & 0o777 == 0o700
    assert {n: (data / n).stat().st_mode & 0o777 for n in SECRET_FILES} == dict.fromkeys(
        SECRET_FILES, 0o600)
