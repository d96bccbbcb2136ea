"""Every quirk row of spec/events.md, posted through the HTTP receiver and read back
from the event store (one table-driven test; the parser's own tests go deeper)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from events_support import RECEIVER, TODAY_S, basic, body, client_for, stored

from seqscore.ingest.recipients import hash_recipient, load_or_create_recipient_key

UTC = dt.UTC
T = TODAY_S + 3600  # 01:00 UTC of the frozen day
AT_T = dt.datetime.fromtimestamp(T, UTC)
ID = "Z2VuZXJhdGVkLWJ5LXNlbmRncmlkLTEyMw"


def ev(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"email": "Quirk@Example.com", "timestamp": T, "event": "delivered",
                            "sg_event_id": ID, "sg_message_id": "m1.filter0001"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def without(name: str, **fields: Any) -> dict[str, Any]:
    out = ev(**fields)
    del out[name]
    return out


#: (case, event as posted, expected columns of the stored row, or a reject reason)
CASES: list[tuple[str, dict[str, Any], dict[str, Any] | str]] = [
    ("email trimmed and lower-cased", ev(email="  Quirk@Example.COM "),
     {"recipient": "quirk@example.com", "domain": "example.com", "provider": "example.com"}),
    ("email required on message events", without("email"), 'missing "email"'),
    ("email not required on account_status_change",
     without("email", event="account_status_change", type="compliance_suspend"),
     {"event": "account_status_change", "recipient": None, "domain": None}),
    ("provider from the domain: gmail", ev(email="a@googlemail.com"), {"provider": "gmail"}),
    ("provider from the domain: microsoft", ev(email="a@hotmail.co.uk"),
     {"provider": "microsoft"}),
    ("provider from the domain: yahoo", ev(email="a@aol.com"), {"provider": "yahoo"}),
    ("provider from the domain: apple", ev(email="a@me.com"), {"provider": "apple"}),
    ("timestamp integer seconds", ev(), {"ts": AT_T, "day": AT_T.date()}),
    ("timestamp numeric string", ev(timestamp=str(T)), {"ts": AT_T}),
    ("timestamp above 10^12 is milliseconds", ev(timestamp=T * 1000 + 250),
     {"ts": AT_T + dt.timedelta(milliseconds=250)}),
    ("timestamp required", without("timestamp"), 'missing "timestamp"'),
    ("timestamp unparsable", ev(timestamp="yesterday"), 'unparsable "timestamp": "yesterday"'),
    ("event spam_report", ev(event="spam_report"), {"event": "spamreport"}),
    ("event 'spam report'", ev(event="spam report"), {"event": "spamreport"}),
    ("event unknown", ev(event="exploded"), 'unknown event type "exploded"'),
    ("event required", without("event"), 'missing "event"'),
    ("sg_event_id is the de-duplication key", ev(sg_event_id="x" * 300), {"event_id": "x" * 300}),
    ("sg_event_id absent: a derived key", without("sg_event_id"), {"event_id": "h:"}),
    ("sg_message_id optional", without("sg_message_id", event="bounce", type="bounce"),
     {"message_id": None}),
    ("type bounce", ev(event="bounce", type="bounce"), {"bounce_type": "bounce"}),
    ("type blocked", ev(event="bounce", type="blocked"), {"bounce_type": "blocked"}),
    ("bounce_classification case-insensitive",
     ev(event="bounce", bounce_classification="invalid address"),
     {"bounce_class": "Invalid Address"}),
    ("bounce_classification Technical Failure", ev(event="bounce",
                                                   bounce_classification="Technical Failure"),
     {"bounce_class": "Technical"}),
    ("bounce_classification Frequency or Volume Too High",
     ev(event="bounce", bounce_classification="Frequency or Volume Too High"),
     {"bounce_class": "Frequency/Volume"}),
    ("status kept", ev(event="bounce", status="5.1.1"), {"status": "5.1.1"}),
    ("status may be absent", ev(event="bounce"), {"status": None}),
    ("sg_machine_open true", ev(event="open", sg_machine_open=True), {"machine_open": True}),
    ("sg_machine_open 'true'", ev(event="open", sg_machine_open="true"), {"machine_open": True}),
    ("sg_machine_open 1", ev(event="open", sg_machine_open=1), {"machine_open": True}),
    ("sg_machine_open absent is human", ev(event="open"), {"machine_open": False}),
    ("category a string", ev(category="newsletter"), {"raw.category": ["newsletter"]}),
    ("category an array", ev(category=["a", "b"]), {"raw.category": ["a", "b"]}),
    ("tls '1'", ev(tls="1"), {"raw.tls": 1}),
    ("attempt '5'", ev(event="deferred", attempt="5"), {"raw.attempt": 5}),
    ("asm_group_id '42'", ev(event="group_unsubscribe", asm_group_id="42"),
     {"raw.asm_group_id": 42}),
    ("unknown fields kept", ev(campaign="spring", user_id=7, nested={"a": [1]}),
     {"raw.campaign": "spring", "raw.user_id": 7, "raw.nested": {"a": [1]}}),
    ("raw size-capped", ev(note="x" * 10_000), {"raw.~truncated": "present"}),
]


@pytest.mark.parametrize(("event_in", "expected"), [(e, x) for _, e, x in CASES],
                         ids=[name for name, _, _ in CASES])
def test_quirk_through_the_receiver(services, world, event_in, expected):
    acme = world.account("acme")
    r = client_for(services).post(RECEIVER, content=body(event_in),
                                  headers=basic(world.key(acme, "events.write")))
    assert r.status_code == 200, r.text
    answer = r.json()
    if isinstance(expected, str):
        assert answer == {"accepted": 0, "rejected": 1, "duplicates": 0,
                          "errors": [{"index": 0, "message": expected}]}
        assert stored(services) == []
        (kept,) = services.state.list_quarantined()
        assert kept.reason == expected
        return
    assert answer["accepted"] == 1, answer
    (row,) = stored(services)
    raw = json.loads(row["raw"]) if row["raw"] else {}
    key = load_or_create_recipient_key(services.settings.data_dir)
    for column, value in expected.items():
        if column.startswith("raw."):
            name = column.removeprefix("raw.")
            assert name in raw, raw
            if value != "present":
                assert raw[name] == value
        elif column == "recipient" and value is not None:
            assert row["recipient"] == hash_recipient(key, value)
        elif column == "event_id" and value == "h:":
            assert row["event_id"].startswith("h:") and len(row["event_id"]) == 34
        else:
            assert row[column] == value, (column, row)
    assert row["account_id"] == acme.user_id
    assert "quirk@example.com" not in json.dumps(row, default=str).lower()
