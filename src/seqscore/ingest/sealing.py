"""Sealing the quarantine: rejected events are kept whole, but encrypted at rest.

A rejected event is kept as received (spec/events.md), so it may hold a
plaintext address. It is stored only as AES-256-GCM ciphertext under the
installation's quarantine key: 32 random bytes in ``<data_dir>/quarantine-key``
(mode 0600, created on first use like the recipient key, and separate from it).
Only ``seqscore quarantine show`` decrypts. Without the key file the quarantine
cannot be read, so back it up with the stores, or accept losing the rejects.

A sealed payload is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``; the
account id is authenticated data, so a payload moved to another account's row
no longer opens. ``digest`` is a keyed BLAKE2b of the plaintext: equal rejects
of one account get equal digests (a retried batch is kept once), while the
digest reveals nothing that guessing an address could confirm.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from seqscore.errors import SeqscoreError
from seqscore.ingest.recipients import load_or_create_secret

#: File name of the quarantine key inside the data dir.
QUARANTINE_KEY_FILE: Final = "quarantine-key"
QUARANTINE_KEY_BYTES: Final = 32
DIGEST_BYTES: Final = 16
_NONCE_BYTES: Final = 12


class QuarantineKeyError(SeqscoreError):
    """The quarantine-key file exists but cannot be used, or a payload does not open."""


def load_or_create_quarantine_key(data_dir: Path) -> bytes:
    """The installation's quarantine key, created on first use (see the module doc)."""
    return load_or_create_secret(
        data_dir / QUARANTINE_KEY_FILE, QUARANTINE_KEY_BYTES, QuarantineKeyError,
        advice="restore it from a backup; without it the quarantined events cannot be read")


class Sealer:
    """Encrypts and decrypts quarantined payloads under one key (thread-safe)."""

    __slots__ = ("_aead", "_digest_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != QUARANTINE_KEY_BYTES:
            raise QuarantineKeyError(f"a quarantine key has {QUARANTINE_KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        # A key of its own for digests, so the two uses of the secret never meet.
        self._digest_key = hashlib.blake2b(key, digest_size=32, person=b"seq-q-digest").digest()

    def seal(self, plaintext: bytes, *, account_id: int) -> bytes:
        """``plaintext`` encrypted for ``account_id``'s quarantine row."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, _context(account_id))

    def unseal(self, sealed: bytes, *, account_id: int) -> bytes:
        """The plaintext of ``seal(..., account_id=account_id)``.

        Raises ``QuarantineKeyError`` when it does not open: another key (the key
        file was replaced), another account's row, or altered bytes.
        """
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:],
                                      _context(account_id))
        except (InvalidTag, ValueError):
            raise QuarantineKeyError(
                "a quarantined payload does not open with this installation's quarantine-key "
                "(the key file was replaced, or the row was altered)") from None

    def digest(self, plaintext: bytes, *, account_id: int) -> bytes:
        """A keyed digest of ``plaintext`` for ``account_id`` (``DIGEST_BYTES`` bytes)."""
        return hashlib.blake2b(plaintext, digest_size=DIGEST_BYTES, key=self._digest_key,
                               salt=account_id.to_bytes(16, "big", signed=True)).digest()

    def __repr__(self) -> str:
        return "Sealer(<key>)"


def _context(account_id: int) -> bytes:
    return b"seqscore quarantine\x00" + str(account_id).encode("ascii")
