"""Signed Event Webhook verification: SendGrid's own vector and generated keys."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from ingest_helpers import SIGNED_VECTOR

from seqscore.ingest.signature import (
    InvalidPublicKey,
    load_public_key,
    timestamp_is_fresh,
    verify,
)

VECTOR: dict[str, Any] = json.loads(SIGNED_VECTOR.read_text())


def _der_b64(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(
        private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def test_vector_payload_ends_with_crlf() -> None:
    assert VECTOR["payload"].endswith("\r\n")


# One test per row of the vector's "expect" map.
VECTOR_CASES = {
    "payload+signature+timestamp+public_key": (
        "public_key_b64_der", "signature", "timestamp", "payload"),
    "other_public_key": ("other_public_key_b64_der", "signature", "timestamp", "payload"),
    "payload 'payload'": ("public_key_b64_der", "signature", "timestamp", None),
    "wrong_signature": ("public_key_b64_der", "wrong_signature", "timestamp", "payload"),
    "timestamp 'timestamp'": ("public_key_b64_der", "signature", None, "payload"),
}


def test_every_expect_row_has_a_case() -> None:
    assert set(VECTOR["expect"]) == set(VECTOR_CASES)


@pytest.mark.parametrize("row", sorted(VECTOR_CASES))
def test_sendgrid_vector(row: str) -> None:
    key_field, signature_field, timestamp_field, payload_field = VECTOR_CASES[row]
    key = load_public_key(VECTOR[key_field])
    # A None field is replaced by the literal word the row's name quotes.
    timestamp = VECTOR[timestamp_field] if timestamp_field else "timestamp"
    payload = VECTOR[payload_field].encode() if payload_field else b"payload"
    assert verify(key, VECTOR[signature_field], timestamp, payload) is (
        VECTOR["expect"][row] == "valid")


def test_vector_fails_on_reserialised_json() -> None:
    key = load_public_key(VECTOR["public_key_b64_der"])
    reserialised = json.dumps(json.loads(VECTOR["payload"])).encode()
    assert not verify(key, VECTOR["signature"], VECTOR["timestamp"], reserialised)
    assert not verify(key, VECTOR["signature"], VECTOR["timestamp"],
                      VECTOR["payload"].rstrip("\r\n").encode())


def test_key_may_be_given_as_text_and_timestamp_as_bytes() -> None:
    assert verify(VECTOR["public_key_b64_der"], VECTOR["signature"].encode(),
                  VECTOR["timestamp"].encode(), VECTOR["payload"].encode())


def test_generated_key_round_trip() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_public_key(_der_b64(private.public_key()))
    body = b'[{"event":"open"}]\r\n'
    signature = _sign(private, "1700000000", body)
    assert verify(key, signature, "1700000000", body)
    assert not verify(key, signature, "1700000001", body)
    assert not verify(key, signature, "1700000000", body + b" ")
    other = load_public_key(_der_b64(ec.generate_private_key(ec.SECP256R1()).public_key()))
    assert not verify(other, signature, "1700000000", body)


def test_pem_and_wrapped_base64_keys_load() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert load_public_key(pem).public_numbers() == public.public_numbers()
    text = _der_b64(public)
    wrapped = "\n".join(text[i:i + 20] for i in range(0, len(text), 20)) + "\n"
    assert load_public_key(f"  {wrapped}  ").public_numbers() == public.public_numbers()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"garbage bytes").decode(), "not a DER SubjectPublicKeyInfo"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "not a DER"),
    ],
)
def test_garbage_keys_have_clear_errors(key: str, message: str) -> None:
    with pytest.raises(InvalidPublicKey, match=message):
        load_public_key(key)


def test_rsa_key_is_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(InvalidPublicKey, match="not an elliptic-curve"):
        load_public_key(_der_b64(rsa_key))


def test_ed25519_key_is_refused() -> None:
    with pytest.raises(InvalidPublicKey, match="not an elliptic-curve"):
        load_public_key(_der_b64(ed25519.Ed25519PrivateKey.generate().public_key()))


def test_other_curve_is_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(InvalidPublicKey, match="secp384r1, expected P-256"):
        load_public_key(_der_b64(p384))


@pytest.mark.parametrize(
    ("signature", "timestamp", "body"),
    [
        (None, "1", b"x"),
        ("sig", None, b"x"),
        ("", "1", b"x"),
        ("%%%not-base64%%%", "1", b"x"),
        (base64.b64encode(b"not der").decode(), "1", b"x"),
        (VECTOR["signature"], "\udcff", b"x"),
        (VECTOR["signature"], "1", "not bytes"),
        ("A" * 100_000, "1", b"x"),
    ],
)
def test_verify_never_raises_on_bad_input(signature: Any, timestamp: Any, body: Any) -> None:
    key = load_public_key(VECTOR["public_key_b64_der"])
    assert verify(key, signature, timestamp, body) is False


def test_verify_with_a_garbage_key_text_is_false() -> None:
    assert verify("garbage", VECTOR["signature"], VECTOR["timestamp"],
                  VECTOR["payload"].encode()) is False


@pytest.mark.parametrize(
    ("timestamp", "fresh"),
    [("1000", True), ("700", True), ("1300", True), ("699", False), ("1301", False),
     (" 1000 ", True), (b"1000", True), ("", False), (None, False), ("abc", False),
     ("-1000", False), ("1e3", False), ("1" * 50, False), (b"\xff", False),
     ("\uff11\uff10\uff10\uff10", False)],  # full-width digits
)
def test_timestamp_is_fresh_within_the_window(timestamp: Any, fresh: bool) -> None:
    assert timestamp_is_fresh(timestamp, now_s=1000.0, window_s=300) is fresh
