"""Shared builders for the ingest tests (imported by name: tests have no packages)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

#: spec/, reference/ ...: beside the project (``../shared``).
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
#: SendGrid's own signed-webhook test vector.
SIGNED_VECTOR = SHARED / "reference" / "eventwebhook-test-vector.json"

SECRET = bytes(range(32))
INGESTED_AT = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ACCOUNT_ID = 42
#: Pass as a field's value to ``event`` to leave the field out.
DROP: Any = object()


def event(**fields: Any) -> dict[str, Any]:
    """A valid delivered event, with ``fields`` replacing or adding (``DROP`` removes)."""
    base: dict[str, Any] = {
        "email": "someone@example.com",
        "timestamp": 1600112492,
        "event": "delivered",
        "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
        "sg_message_id":
            "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
        "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not DROP}
