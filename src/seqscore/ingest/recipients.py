"""The privacy rule: a recipient is stored only as a keyed hash plus its domain.

The key is a per-installation secret: 32 random bytes in the file
``<data_dir>/recipient-key`` (mode 0600), created on first use and reused after.
It lives outside every database and is never logged; losing it means new events
of a recipient no longer match the old ones, so back it up with the stores.

A recipient's hash is HMAC-SHA256(key, normalised address as UTF-8), hex,
truncated to its first 32 hex digits (128 bits): far beyond any collision risk
at billions of recipients, and half the storage of the full digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from seqscore.errors import SeqscoreError

#: File name of the secret inside the data dir.
RECIPIENT_KEY_FILE = "recipient-key"
#: Length of the secret in bytes.
RECIPIENT_KEY_BYTES = 32
#: Length of a recipient hash in hex digits (128 bits).
RECIPIENT_HASH_HEX = 32


class RecipientKeyError(SeqscoreError):
    """The recipient-key file exists but cannot be used (wrong size, unreadable)."""


def load_or_create_recipient_key(data_dir: Path) -> bytes:
    """Return the installation's recipient-hash secret, creating it on first use.

    The secret is ``RECIPIENT_KEY_BYTES`` random bytes in
    ``data_dir/RECIPIENT_KEY_FILE``; see ``load_or_create_secret``. Raises
    ``RecipientKeyError`` when the file exists with the wrong size or cannot be
    read; the message never contains key material.
    """
    return load_or_create_secret(
        data_dir / RECIPIENT_KEY_FILE, RECIPIENT_KEY_BYTES, RecipientKeyError,
        advice="restore it from a backup (recipient hashes depend on it); delete it only "
               "if no events are stored")


def load_or_create_secret(path: Path, size: int, error: type[SeqscoreError], *,
                          advice: str) -> bytes:
    """The ``size`` random bytes in the secret file ``path``, created on first use.

    Creation is atomic and race-free: the bytes are written and synced to a
    temporary file opened with ``O_EXCL`` and mode 0600, then hard-linked to the
    final name (which fails if another process got there first, whose secret is
    then used). The folder is created if missing. A file of the wrong size or one
    that cannot be read raises ``error`` with ``advice``, never key material.
    """
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path, size, error, advice)
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir: its owner's only
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, secrets.token_bytes(size))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return _read_key(path, size, error, advice)


def _read_key(path: Path, size: int, error: type[SeqscoreError], advice: str) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    if len(key) != size:
        raise error(f"{path} holds {len(key)} bytes, expected {size}: {advice}")
    return key


def _fsync_dir(directory: Path) -> None:
    # Makes the new name durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def normalise_address(address: str) -> str:
    """The form of an address that is hashed: surrounding whitespace removed, lower-cased."""
    return address.strip().lower()


def recipient_domain(normalised_address: str) -> str | None:
    """The domain of a normalised address: what follows its last ``@``.

    ``None`` when there is no ``@`` or nothing follows it.
    """
    _, at, domain = normalised_address.rpartition("@")
    if not at or not domain:
        return None
    return domain


def hash_recipient(secret: bytes, normalised_address: str) -> str:
    """HMAC-SHA256 of the UTF-8 address under ``secret``: the first 32 hex digits.

    ``normalised_address`` must already be normalised (``normalise_address``);
    this function hashes exactly what it is given. Lone surrogates (which no
    valid JSON string decodes to) are encoded rather than raising.
    """
    digest = hmac.new(
        secret, normalised_address.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:RECIPIENT_HASH_HEX]


class RecipientHasher:
    """``hash_recipient`` bound to one secret, faster for many addresses.

    The HMAC construction (RFC 2104) is spelled out over ``hashlib`` so the
    keyed inner and outer states are computed once and copied per address;
    results equal ``hash_recipient(secret, address)``.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes) -> None:
        block = hashlib.sha256().block_size
        key = hashlib.sha256(secret).digest() if len(secret) > block else secret
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def __call__(self, normalised_address: str) -> str:
        inner = self._inner.copy()
        inner.update(normalised_address.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:RECIPIENT_HASH_HEX]

    def __repr__(self) -> str:
        return "RecipientHasher(<secret>)"
