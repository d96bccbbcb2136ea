"""Signed webhooks: an account with a verification key takes only validly signed POSTs.

SendGrid's own test vector, and keys and signatures made here; every refusal is
403 with nothing stored, neither events nor quarantine.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from events_support import (
    NOW_S,
    RECEIVER,
    SIGNED_VECTOR,
    Signer,
    basic,
    bearer,
    body,
    client_for,
    event,
    stored,
)

from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import World, require_or_skip

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
REFUSED = {"errors": [{"field": None,
                       "message": "the webhook signature is missing, invalid or too old"}]}


@pytest.fixture
def signer() -> Signer:
    return Signer()


def signed_account(services, world, signer, name="acme"):
    account = world.account(name)
    services.state.update_account(account.user_id, webhook_public_key=signer.public_key)
    return account, world.key(account, "events.write")


def post(services, payload: bytes, headers: dict[str, str]):
    return client_for(services).post(RECEIVER, content=payload, headers=headers)


def assert_refused(services, response) -> None:
    assert response.status_code == 403
    assert response.json() == REFUSED
    assert stored(services) == []
    assert services.state.list_quarantined() == []


def test_a_validly_signed_post_is_stored(services, world, signer):
    _, key = signed_account(services, world, signer)
    payload = body(event(1), {"event": "nope"})
    r = post(services, payload, {**basic(key), **signer.headers(payload)})
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 1)


def test_an_unsigned_post_is_refused(services, world, signer):
    _, key = signed_account(services, world, signer)
    assert_refused(services, post(services, body(event(1)), basic(key)))


def test_a_signature_by_another_key_is_refused(services, world, signer):
    _, key = signed_account(services, world, signer)
    payload = body(event(1))
    assert_refused(services, post(services, payload, {**basic(key), **Signer().headers(payload)}))


def test_a_signature_over_another_body_is_refused(services, world, signer):
    _, key = signed_account(services, world, signer)
    payload = body(event(1))
    tampered = body(event(1, event="open"))
    assert_refused(services, post(services, tampered, {**basic(key), **signer.headers(payload)}))


def test_a_signature_over_re_serialised_json_is_refused(services, world, signer):
    """The raw bytes are verified, never the JSON re-encoded."""
    _, key = signed_account(services, world, signer)
    payload = b'[ {"email": "a@b.com", "timestamp": 1795132900, "event": "delivered"} ]'
    respaced = json.dumps(json.loads(payload), separators=(",", ":")).encode()
    assert_refused(services, post(services, respaced, {**basic(key), **signer.headers(payload)}))


def test_a_signature_with_another_timestamp_is_refused(services, world, signer):
    _, key = signed_account(services, world, signer)
    payload = body(event(1))
    headers = {**basic(key), **signer.headers(payload, NOW_S)}
    headers[TIMESTAMP] = str(NOW_S + 1)
    assert_refused(services, post(services, payload, headers))


@pytest.mark.parametrize("age_s", [601, -601, 86_400])
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(services, world, signer, age_s):
    _, key = signed_account(services, world, signer)
    payload = body(event(1))
    assert_refused(services, post(services, payload,
                                  {**basic(key), **signer.headers(payload, NOW_S - age_s)}))


def test_a_timestamp_within_the_window_is_accepted(services, world, signer):
    _, key = signed_account(services, world, signer)
    payload = body(event(1))
    r = post(services, payload, {**basic(key), **signer.headers(payload, NOW_S - 600)})
    assert r.status_code == 200


@pytest.mark.parametrize(("max_age_s", "age_s", "accepted"), [
    (60, 60, True), (60, 61, False), (60, -61, False),
    (0, 10**7, True), (0, -10**7, True),  # 0: any age
])
def test_the_replay_window_is_a_setting(tmp_path, clock, signer, max_age_s, age_s, accepted):
    settings = Settings(data_dir=tmp_path / "data", worker=False,
                        webhook_max_age_seconds=max_age_s)
    services = Services.open(settings, clock=clock)
    try:
        _, key = signed_account(services, World(services), signer)
        payload = body(event(1))
        r = post(services, payload, {**basic(key), **signer.headers(payload, NOW_S - age_s)})
        if accepted:
            assert r.status_code == 200
            assert len(stored(services)) == 1
        else:
            assert_refused(services, r)
    finally:
        services.close()


@pytest.mark.parametrize("broken", ["", "not base64!", "AAAA"])
def test_a_malformed_signature_is_refused(services, world, signer, broken):
    _, key = signed_account(services, world, signer)
    payload = body(event(1))
    headers = {**basic(key), **signer.headers(payload)}
    headers[SIGNATURE] = broken
    assert_refused(services, post(services, payload, headers))


def test_accounts_without_a_key_need_no_signature(services, world, signer):
    signed_account(services, world, signer, "signed")
    other = world.account("plain")
    r = post(services, body(event(1)), basic(world.key(other, "events.write")))
    assert r.status_code == 200


def test_the_childs_key_applies_when_a_parent_posts_on_its_behalf(services, world, signer):
    parent = world.account("parent")
    child = world.account("child", parent=parent)
    services.state.update_account(child.user_id, webhook_public_key=signer.public_key)
    headers = bearer(world.key(parent, "events.write"), **{"on-behalf-of": "child"})
    payload = body(event(1))
    assert_refused(services, post(services, payload, headers))
    r = post(services, payload, {**headers, **signer.headers(payload)})
    assert r.status_code == 200
    assert [row["account_id"] for row in stored(services)] == [child.user_id]


def test_sendgrids_own_test_vector(services, world, clock):
    require_or_skip(SIGNED_VECTOR.is_file(), f"missing {SIGNED_VECTOR}")
    vector = json.loads(SIGNED_VECTOR.read_text())
    clock.set(dt.datetime.fromtimestamp(int(vector["timestamp"]) + 5, dt.UTC))
    account = world.account("acme")
    services.state.update_account(account.user_id,
                                  webhook_public_key=vector["public_key_b64_der"])
    key = world.key(account, "events.write")
    payload = vector["payload"].encode()
    good = {**basic(key), SIGNATURE: vector["signature"], TIMESTAMP: vector["timestamp"]}
    for headers, content in [
        ({**good, SIGNATURE: vector["wrong_signature"]}, payload),
        ({**good, TIMESTAMP: "timestamp"}, payload),
        (good, b"payload"),
        (good, payload.rstrip(b"\r\n")),  # the vector's payload ends with \r\n: raw bytes only
    ]:
        assert_refused(services, post(services, content, headers))
    services.state.update_account(account.user_id,
                                  webhook_public_key=vector["other_public_key_b64_der"])
    assert_refused(services, post(services, payload, good))
    services.state.update_account(account.user_id,
                                  webhook_public_key=vector["public_key_b64_der"])
    r = post(services, payload, good)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    (row,) = stored(services)
    assert row["event"] == "dropped"


# -- the verification key: PUT/GET/DELETE /api/v1/webhook-key --------------------------------


def test_put_webhook_key_turns_verification_on_and_delete_turns_it_off(services, world, signer):
    acme = world.account("acme")
    admin = world.key(acme)  # full access
    events_key = world.key(acme, "events.write")
    client = client_for(services)
    r = client.put("/api/v1/webhook-key", json={"public_key": signer.public_key},
                   headers=bearer(admin))
    assert r.status_code == 200
    assert r.json() == {"public_key": signer.public_key}
    assert client.get("/api/v1/webhook-key", headers=bearer(admin)).json() == {
        "public_key": signer.public_key}
    assert_refused(services, client.post(RECEIVER, content=body(event(1)),
                                         headers=basic(events_key)))
    assert client.delete("/api/v1/webhook-key", headers=bearer(admin)).status_code == 204
    assert client.get("/api/v1/webhook-key", headers=bearer(admin)).json() == {"public_key": None}
    assert client.post(RECEIVER, content=body(event(1)),
                       headers=basic(events_key)).status_code == 200


def test_a_key_that_may_only_post_events_cannot_change_the_verification_key(services, world,
                                                                            signer):
    acme = world.account("acme")
    events_key = world.key(acme, "events.write")
    client = client_for(services)
    for method in ("put", "delete", "get"):
        kwargs = {"json": {"public_key": signer.public_key}} if method == "put" else {}
        r = getattr(client, method)("/api/v1/webhook-key", headers=bearer(events_key), **kwargs)
        assert r.status_code == 403, method
    assert services.state.get_account(acme.user_id).webhook_public_key is None


@pytest.mark.parametrize(("payload", "message"), [
    ({"public_key": "not base64!"}, "not valid base64"),
    ({"public_key": "AAAA"}, "not a DER"),
    ({"public_key": 5}, "expected a JSON object"),
    ({}, "expected a JSON object"),
])
def test_put_webhook_key_rejects_what_is_not_a_p256_key(services, world, payload, message):
    acme = world.account("acme")
    r = client_for(services).put("/api/v1/webhook-key", json=payload,
                                 headers=bearer(world.key(acme)))
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert error["field"] == "public_key" and message in error["message"]


def test_a_parent_sets_its_childs_key_with_on_behalf_of(services, world, signer):
    parent = world.account("parent")
    child = world.account("child", parent=parent)
    r = client_for(services).put("/api/v1/webhook-key", json={"public_key": signer.public_key},
                                 headers=bearer(world.key(parent), **{"on-behalf-of": "child"}))
    assert r.status_code == 200
    assert services.state.get_account(child.user_id).webhook_public_key == signer.public_key
    assert services.state.get_account(parent.user_id).webhook_public_key is None
