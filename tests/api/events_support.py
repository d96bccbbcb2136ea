"""Helpers of the receiver tests (``test_api_events*.py``): events, credentials, signatures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.event_schema import EVENT_SCHEMA
from seqscore.service.services import Services
from seqscore_testing import TEST_NOW

RECEIVER = "/api/v1/events/sendgrid"
#: SendGrid's own signed-webhook test vector, beside the project (``../shared``).
SIGNED_VECTOR = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / \
    "eventwebhook-test-vector.json"
#: Unix seconds of the tests' frozen clock.
NOW_S = int(TEST_NOW.timestamp())
#: 00:00 UTC of the frozen day (not closed yet), and of the day before (closed).
TODAY_S = NOW_S - 12 * 3600
YESTERDAY_S = TODAY_S - 86_400


def event(n: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid delivered event of today, unique by ``n``; ``fields`` replace or add."""
    base: dict[str, Any] = {
        "email": f"person{n}@example.com", "timestamp": TODAY_S + 60 + n,
        "event": "delivered", "sg_event_id": f"ev-{n:06d}", "sg_message_id": f"msg-{n:06d}.0",
    }
    base.update(fields)
    return base


def body(*events: Any) -> bytes:
    return json.dumps(list(events)).encode()


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def basic(key: str, user: str = "apikey", **headers: str) -> dict[str, str]:
    """What SendGrid sends for ``https://apikey:KEY@host/...``."""
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}", **headers}


def client_for(services: Services) -> TestClient:
    return TestClient(create_app(services))


def stored(services: Services, where: str = "true") -> list[dict[str, Any]]:
    """Rows of the event store (copies included) as dicts, in (event_id, ingested_at) order."""
    names = EVENT_SCHEMA.names
    rows = services.events.sql(  # type: ignore[attr-defined]
        f"SELECT {', '.join(names)} FROM events WHERE {where} ORDER BY event_id, ingested_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


class Signer:
    """A P-256 key pair like SendGrid's: the public half as SendGrid shows it."""

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()

    def headers(self, payload: bytes, timestamp: int | str = NOW_S) -> dict[str, str]:
        stamp = str(timestamp)
        signature = self._private.sign(stamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp}
