"""API key format: ``SG.<22-char id>.<43-char secret>``, like SendGrid's.

The id is public (it is the ``api_key_id``); only a SHA-256 of the whole key is
stored. The secret carries 256 bits of entropy, so a fast hash is the right
tool (a slow KDF protects low-entropy passwords, not random keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_KEY_RE = re.compile(r"SG\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    api_key: str  # shown once, never stored
    secret_sha256: bytes


def generate() -> NewKey:
    key_id = secrets.token_urlsafe(16)[:22]
    secret = secrets.token_urlsafe(32)[:43]
    api_key = f"SG.{key_id}.{secret}"
    return NewKey(key_id, api_key, digest(api_key))


def parse_key_id(api_key: str) -> str | None:
    """The key id of a well-formed key, else None (a malformed key)."""
    match = _KEY_RE.fullmatch(api_key)
    return match.group(1) if match else None


def digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("ascii")).digest()


def matches(api_key: str, secret_sha256: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(digest(api_key), secret_sha256)
