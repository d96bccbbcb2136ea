"""Property-based fuzzing of the webhook receiver over a real server.

``POST /api/v1/events/sendgrid`` on a server configured as ``seqscore serve``
configures it. Never a 500; a refused body leaves the event store and the
quarantine exactly as they were (no partially stored batch); a mixed body
stores exactly its valid events and quarantines the others.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hostile_events import batches, broken_bodies, encode, nested
from hostile_support import HOSTILE, ErrorLog, Installation, install, production_server
from hypothesis import given, settings
from hypothesis import strategies as st

from seqscore.api.app import create_app

RECEIVER = "/api/v1/events/sendgrid"
BATCH_IDS = itertools.count()


class Receiver:
    def __init__(self, shop: Installation, base: str) -> None:
        self.shop = shop
        self.url = base + RECEIVER + "?errors=all"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {shop.parent_key}"

    def post(self, body: bytes) -> requests.Response:
        response = self.session.post(self.url, data=body, timeout=60,
                                     headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (response.status_code, response.text[:500])
        assert response.headers["content-type"] == "application/json"
        return response

    def counts(self) -> tuple[int, int]:
        """(events stored, events quarantined)."""
        services = self.shop.services
        return (services.events.count(),
                len(services.state.list_quarantined(limit=1_000_000)))

    def stored_ids(self, prefix: str) -> list[str]:
        rows = self.shop.services.events.sql(  # type: ignore[attr-defined]
            "SELECT event_id FROM events WHERE starts_with(event_id, ?) ORDER BY event_id",
            [prefix])
        return [row[0] for row in rows]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    folder = tmp_path_factory.mktemp("hostile-receiver")
    shop = install(folder, f"sqlite:///{folder / 'state.sqlite3'}")
    try:
        with (ErrorLog() as log,
              production_server(create_app(shop.services), shop.services.settings) as (h, p)):
            yield Receiver(shop, f"http://{h}:{p}")
        assert not log.records, log.messages()  # no 500 that a test did not see
    finally:
        shop.services.close()


def check_mixed(receiver: Receiver, elements: list[Any], valid: list[int], prefix: str) -> None:
    before_events, before_quarantine = receiver.counts()
    response = receiver.post(encode(elements))
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    invalid = [i for i in range(len(elements)) if i not in valid]
    assert (answer["accepted"], answer["rejected"], answer["duplicates"]) == (
        len(valid), len(invalid), 0)
    assert [e["index"] for e in answer["errors"]] == invalid
    after_events, after_quarantine = receiver.counts()
    assert after_events - before_events == len(valid)
    assert receiver.stored_ids(prefix) == sorted(elements[i]["sg_event_id"] for i in valid)
    assert 0 <= after_quarantine - before_quarantine <= len(invalid)


@settings(HOSTILE, max_examples=120)
@given(data=st.data())
def test_a_mixed_body_stores_exactly_its_valid_events(receiver: Receiver, data: Any) -> None:
    prefix = f"b{next(BATCH_IDS)}-"
    elements, valid = data.draw(batches(unique=prefix))
    check_mixed(receiver, elements, valid, prefix)


@settings(HOSTILE, max_examples=120)
@given(body=broken_bodies())
def test_a_refused_body_stores_nothing(receiver: Receiver, body: bytes) -> None:
    before = receiver.counts()
    response = receiver.post(body)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    (error,) = response.json()["errors"]
    assert error["field"] is None and error["message"].startswith("body ")
    assert receiver.counts() == before


@settings(HOSTILE, max_examples=60)
@given(data=st.data())
def test_valid_events_then_damage_store_nothing(receiver: Receiver, data: Any) -> None:
    """Valid events first, the damage after them: the whole body is still refused."""
    prefix = f"d{next(BATCH_IDS)}-"
    elements, _valid = data.draw(batches(unique=prefix))
    body = encode(elements)[:-1]  # the closing bracket gone
    damage = data.draw(st.sampled_from([b", NaN]", b", \xff]", b", " + nested(100_000).encode()
                                        + b"]", b", {]", b"] x", b"]]"]))
    before = receiver.counts()
    response = receiver.post(body + damage)
    assert response.status_code == 400, response.text[:300]
    assert receiver.counts() == before
    assert receiver.stored_ids(prefix) == []


def test_non_json_content_types_and_methods(receiver: Receiver, errors: ErrorLog) -> None:
    before = receiver.counts()
    for content_type in ["text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                         "\u00ff/\u00fe"]:
        response = receiver.session.post(receiver.url, data=b"a=1&b=2", timeout=30,
                                         headers={"Content-Type": content_type.encode()})
        assert response.status_code == 400, (content_type, response.status_code)
    for method in ["GET", "PUT", "DELETE", "PATCH"]:
        response = receiver.session.request(method, receiver.url, data=b"[]", timeout=30)
        assert response.status_code == 405, (method, response.status_code)
        assert response.json()["errors"][0]["message"] == "method not allowed"
    assert receiver.counts() == before


def test_large_hostile_bodies_through_the_parser_processes(tmp_path: Path,
                                                          errors: ErrorLog) -> None:
    """Bodies of 64 KiB or more are parsed in the parser processes: the same promises."""
    shop = install(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite3'}", ingest_processes=1)
    try:
        with production_server(create_app(shop.services), shop.services.settings) as (h, p):
            receiver = Receiver(shop, f"http://{h}:{p}")
            huge = {"event": "open", "email": "big@example.com", "timestamp": 1_763_600_000,
                    "sg_event_id": "pool-huge", "custom": "x" * 3_000_000}
            elements = [huge, {"event": 5}, *[
                {**huge, "sg_event_id": f"pool-{n}", "custom": n} for n in range(2_000)]]
            check_mixed(receiver, elements, [0, *range(2, len(elements))], "pool-")
            before = receiver.counts()
            for body in [
                ("[" + nested(300_000) + "]").encode(),
                encode(elements)[:-1] + b", NaN]",
                encode(elements)[:1_000_000] + b"\xff" + encode(elements)[1_000_000:],
                json.dumps([0] * 100_000).encode()[:-1],
            ]:
                assert len(body) >= 64 * 1024
                response = receiver.post(body)
                assert response.status_code == 400, response.text[:300]
            assert receiver.counts() == before
    finally:
        shop.services.close()
