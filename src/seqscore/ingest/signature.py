"""SendGrid's signed Event Webhook: ECDSA P-256 / SHA-256 verification.

SendGrid signs the bytes of the ``X-Twilio-Email-Event-Webhook-Timestamp``
header followed by the raw request body, and sends the base64 DER signature in
``X-Twilio-Email-Event-Webhook-Signature``. The verification key an operator
configures is the base64 DER SubjectPublicKeyInfo SendGrid shows. Always verify
the raw body bytes as received, never re-serialised JSON.

No function here reads the clock: callers pass ``now``.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seqscore.errors import SeqscoreError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
#: Longest timestamp header accepted by ``timestamp_is_fresh`` (digits).
_MAX_TIMESTAMP_CHARS = 20


class InvalidPublicKey(SeqscoreError, ValueError):
    """A configured verification key is not a base64 DER P-256 public key."""


def load_public_key(key: str | bytes) -> ec.EllipticCurvePublicKey:
    """Parse SendGrid's verification key: base64 of a DER SubjectPublicKeyInfo.

    Whitespace and line breaks inside the base64 are ignored, and a PEM block
    (``-----BEGIN PUBLIC KEY-----``) is accepted too. Raises ``InvalidPublicKey``
    with a message saying what is wrong (not base64, not a public key, not an
    elliptic-curve key, not on P-256).
    """
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    text = text.strip()
    if not text:
        raise InvalidPublicKey("the verification key is empty")
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode("ascii", "replace"))
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            loaded = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError) as exc:
        if isinstance(exc, binascii.Error):
            raise InvalidPublicKey("the verification key is not valid base64") from None
        raise InvalidPublicKey(
            "the verification key is not a DER SubjectPublicKeyInfo public key "
            "(paste the base64 key SendGrid shows for the signed Event Webhook)") from None
    except UnsupportedAlgorithm:
        raise InvalidPublicKey("the verification key uses an unsupported algorithm") from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise InvalidPublicKey("the verification key is not an elliptic-curve (ECDSA) key")
    if not isinstance(loaded.curve, ec.SECP256R1):
        raise InvalidPublicKey(
            f"the verification key is on curve {loaded.curve.name}, expected P-256 (secp256r1)")
    return loaded


def verify(
    public_key: ec.EllipticCurvePublicKey | str,
    signature_b64: str | bytes | None,
    timestamp: str | bytes | None,
    raw_body: bytes,
) -> bool:
    """True when ``signature_b64`` signs ``timestamp`` bytes + ``raw_body`` under the key.

    ``public_key`` is a loaded key or its base64 DER text; ``timestamp`` is the
    header value exactly as received (str is encoded as UTF-8). Returns False,
    never raises, on any bad input: a missing header, a signature that is not
    base64 or not DER, a key that does not load, a wrong signature.
    """
    if signature_b64 is None or timestamp is None:
        return False
    try:
        key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        signature = base64.b64decode(signature_b64, validate=True)
        stamp = timestamp.encode("utf-8") if isinstance(timestamp, str) else bytes(timestamp)
        key.verify(signature, stamp + bytes(raw_body), _ECDSA_SHA256)
    except (InvalidSignature, InvalidPublicKey, binascii.Error, ValueError, TypeError,
            UnicodeError, AttributeError):
        return False
    return True


def timestamp_is_fresh(timestamp: str | bytes | None, *, now_s: float, window_s: float) -> bool:
    """True when the timestamp header is within ``window_s`` seconds of ``now_s``.

    ``timestamp`` is the header value: Unix seconds as decimal digits (surrounding
    whitespace allowed). Both directions count (clock skew), so the test is
    ``abs(now_s - timestamp) <= window_s``. False for a missing, empty,
    non-numeric or absurdly long value; never raises.
    """
    if timestamp is None:
        return False
    try:
        text = timestamp.decode("ascii") if isinstance(timestamp, bytes) else timestamp
    except UnicodeDecodeError:
        return False
    text = text.strip()
    if not text or len(text) > _MAX_TIMESTAMP_CHARS or not text.isascii() or not text.isdigit():
        return False
    return abs(now_s - int(text)) <= window_s
