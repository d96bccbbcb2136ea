"""POST /api/v1/events/sendgrid: credentials, authority, bad input and the answer.

Every test goes through the real app (TestClient) onto real stores, on SQLite and
PostgreSQL state stores (the ``services`` fixture), and reads back what was stored.
"""

from __future__ import annotations

import json

import pytest
from events_support import (
    RECEIVER,
    basic,
    bearer,
    body,
    client_for,
    event,
    stored,
)

from seqscore.settings import Settings


def test_bearer_key_stores_the_batch_for_the_callers_account(services, world):
    acme = world.account("acme")
    client = client_for(services)
    r = client.post(RECEIVER, content=body(event(1), event(2)),
                    headers=bearer(world.key(acme, "events.write")))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "rejected": 0, "duplicates": 0, "errors": []}
    rows = stored(services)
    assert [(row["account_id"], row["event_id"]) for row in rows] == [
        (acme.user_id, "ev-000001"), (acme.user_id, "ev-000002")]


@pytest.mark.parametrize("user", ["apikey", "anything", ""])
def test_basic_credentials_carry_the_key_as_password_with_any_user_name(services, world, user):
    acme = world.account("acme")
    r = client_for(services).post(RECEIVER, content=body(event()),
                                  headers=basic(world.key(acme, "events.write"), user=user))
    assert r.status_code == 200, r.text
    assert [row["account_id"] for row in stored(services)] == [acme.user_id]


def test_credentials_in_the_webhook_url_are_sent_as_basic_auth(services, world):
    """What SendGrid does with https://apikey:SG.xxx@host/api/v1/events/sendgrid."""
    import httpx

    acme = world.account("acme")
    key = world.key(acme, "events.write")
    transport = httpx.ASGITransport(app=client_for(services).app)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(f"http://apikey:{key}@seqscore.test{RECEIVER}",
                                     content=body(event()))

    import asyncio

    r = asyncio.run(post())
    assert r.status_code == 200, r.text
    assert r.request.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer SG.not-a-key"}, 401),
    ({"Authorization": "Basic bm90LWJhc2U2NA=="}, 401),  # "not-base64": no password
    ({"Authorization": "Token abc"}, 401),
])
def test_missing_or_bad_credentials_are_401_and_store_nothing(services, world, headers, status):
    world.account("acme")
    r = client_for(services).post(RECEIVER, content=body(event()), headers=headers)
    assert r.status_code == status
    assert r.json()["errors"][0]["field"] is None
    assert stored(services) == []


def test_a_revoked_key_is_401(services, world):
    acme = world.account("acme")
    key = world.key(acme, "events.write")
    services.accounts.revoke_key(key.split(".")[1])
    services.auth.forget()
    r = client_for(services).post(RECEIVER, content=body(event()), headers=bearer(key))
    assert r.status_code == 401


def test_a_key_without_events_write_is_403_and_stores_nothing(services, world):
    acme = world.account("acme")
    r = client_for(services).post(RECEIVER, content=body(event()),
                                  headers=bearer(world.key(acme, "engagement_quality.read")))
    assert r.status_code == 403
    assert r.json() == {"errors": [{"field": None, "message": "access forbidden"}]}
    assert stored(services) == []


def test_a_full_access_key_may_post_events(services, world):
    acme = world.account("acme")
    r = client_for(services).post(RECEIVER, content=body(event()),
                                  headers=bearer(world.key(acme)))
    assert r.status_code == 200


def test_a_parent_posts_for_its_child_with_on_behalf_of(services, world):
    parent = world.account("parent")
    child = world.account("child", parent=parent)
    r = client_for(services).post(
        RECEIVER, content=body(event()),
        headers=bearer(world.key(parent, "events.write"), **{"on-behalf-of": "child"}))
    assert r.status_code == 200, r.text
    assert [row["account_id"] for row in stored(services)] == [child.user_id]


def test_on_behalf_of_a_customer_account_by_id(services, world):
    from seqscore.types import AccountKind

    parent = world.account("parent")
    customer = world.account("cust", parent=parent, kind=AccountKind.CUSTOMER)
    r = client_for(services).post(
        RECEIVER, content=body(event()),
        headers=basic(world.key(parent, "events.write"),
                      **{"on-behalf-of": f"account-id {customer.user_id}"}))
    assert r.status_code == 200, r.text
    assert [row["account_id"] for row in stored(services)] == [customer.user_id]


@pytest.mark.parametrize("target", ["stranger", "nobody", "sibling"])
def test_on_behalf_of_an_account_that_is_not_ones_child_is_403(services, world, target):
    parent = world.account("parent")
    world.account("stranger")
    child = world.account("child", parent=parent)
    world.account("sibling", parent=parent)
    key = world.key(child, "events.write") if target == "sibling" else world.key(
        parent, "events.write")
    r = client_for(services).post(RECEIVER, content=body(event()),
                                  headers=bearer(key, **{"on-behalf-of": target}))
    assert r.status_code == 403
    assert stored(services) == []


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "body is empty"),
    (b"not json", "body is not valid JSON"),
    (b'{"event": "delivered"}', "not a JSON array of events (it is an object)"),
    (b'"text"', "not a JSON array"),
    (b"[1, 2", "body is not valid JSON"),
    (b"\xff\xfe[]", "not valid UTF-8"),
    (b"[NaN]", "body is not valid JSON"),
])
def test_a_body_that_is_not_a_json_array_is_400_in_sendgrids_shape(services, world, payload,
                                                                    message):
    acme = world.account("acme")
    r = client_for(services).post(RECEIVER, content=payload,
                                  headers=bearer(world.key(acme, "events.write")))
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert error["field"] is None and message in error["message"]
    assert stored(services) == [] and services.state.list_quarantined() == []


def test_a_body_over_the_limit_is_413_and_stores_nothing(tmp_path, state_url, clock):
    from seqscore.service.services import Services

    settings = Settings(data_dir=tmp_path / "data", state_url=state_url, worker=False,
                        max_body_bytes=2_000)
    services = Services.open(settings, clock=clock)
    try:
        acme = services.accounts.create_account("acme")
        key = services.accounts.create_key(acme, name="t",
                                           scopes=frozenset({"events.write"})).api_key
        big = body(*(event(n) for n in range(40)))
        assert len(big) > 2_000
        client = client_for(services)
        r = client.post(RECEIVER, content=big, headers=bearer(key))
        assert r.status_code == 413
        assert r.json() == {"errors": [{"field": None,
                                        "message": "request body exceeds 2000 bytes"}]}

        def chunks():  # no Content-Length: refused while streaming
            yield big[:1500]
            yield big[1500:]

        r = client.post(RECEIVER, content=chunks(), headers=bearer(key))
        assert r.status_code == 413
        assert stored(services) == []
        small = client.post(RECEIVER, content=body(event()), headers=bearer(key))
        assert small.status_code == 200
    finally:
        services.close()


def test_invalid_events_are_quarantined_and_valid_ones_stored(services, world):
    acme = world.account("acme")
    batch = [event(0), {"event": "delivered", "timestamp": 1}, event(2, timestamp="soon"),
             event(3), event(4, event="teleported"), 42]
    r = client_for(services).post(RECEIVER, content=body(*batch),
                                  headers=bearer(world.key(acme, "events.write")))
    assert r.status_code == 200
    assert r.json() == {"accepted": 2, "rejected": 4, "duplicates": 0, "errors": [
        {"index": 1, "message": 'missing "email"'},
        {"index": 2, "message": 'unparsable "timestamp": "soon"'},
        {"index": 4, "message": 'unknown event type "teleported"'},
        {"index": 5, "message": "event is not a JSON object: 42"},
    ]}
    assert [row["event_id"] for row in stored(services)] == ["ev-000000", "ev-000003"]
    kept = sorted(services.state.list_quarantined(), key=lambda q: q.index)
    assert [(q.account_id, q.index, q.reason) for q in kept] == [
        (acme.user_id, 1, 'missing "email"'), (acme.user_id, 2, 'unparsable "timestamp": "soon"'),
        (acme.user_id, 4, 'unknown event type "teleported"'),
        (acme.user_id, 5, "event is not a JSON object: 42")]


def test_the_answer_lists_the_first_ten_errors_unless_all_are_asked_for(services, world):
    acme = world.account("acme")
    key = world.key(acme, "events.write")
    batch = body(*(event(n, event="nope") for n in range(25)))
    client = client_for(services)
    answer = client.post(RECEIVER, content=batch, headers=bearer(key)).json()
    assert (answer["rejected"], len(answer["errors"])) == (25, 10)
    assert [e["index"] for e in answer["errors"]] == list(range(10))
    every = client.post(RECEIVER + "?errors=all", content=batch, headers=bearer(key)).json()
    assert [e["index"] for e in every["errors"]] == list(range(25))
    assert len(services.state.list_quarantined(limit=100)) == 25  # each kept once


def test_a_retried_batch_answers_200_and_stores_nothing_again(services, world):
    acme = world.account("acme")
    key = world.key(acme, "events.write")
    batch = body(event(1), event(2), event(3), {"event": "open"})
    client = client_for(services)
    first = client.post(RECEIVER, content=batch, headers=basic(key)).json()
    again = client.post(RECEIVER, content=batch, headers=basic(key)).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (3, 0, 1)
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 1)
    assert len(stored(services)) == 3
    assert len(services.state.list_quarantined()) == 1


def test_an_event_repeated_within_a_batch_is_stored_once(services, world):
    acme = world.account("acme")
    answer = client_for(services).post(
        RECEIVER, content=body(event(1), event(2), event(1), event(1)),
        headers=bearer(world.key(acme, "events.write"))).json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 2)
    assert [row["event_id"] for row in stored(services)] == ["ev-000001", "ev-000002"]


def test_an_empty_array_is_a_valid_empty_batch(services, world):
    acme = world.account("acme")
    r = client_for(services).post(RECEIVER, content=b"[]",
                                  headers=bearer(world.key(acme, "events.write")))
    assert r.status_code == 200
    assert r.json() == {"accepted": 0, "rejected": 0, "duplicates": 0, "errors": []}


def test_the_receiver_is_in_the_openapi_document(services):
    document = client_for(services).get("/api/openapi.json").json()
    operation = document["paths"][RECEIVER]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "413"}
    assert json.dumps(operation).count("on-behalf-of") >= 1
