"""The privacy rule: the per-installation secret and the recipient hash."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
from pathlib import Path

import pytest

from seqscore.ingest.recipients import (
    RECIPIENT_KEY_BYTES,
    RECIPIENT_KEY_FILE,
    RecipientHasher,
    RecipientKeyError,
    hash_recipient,
    load_or_create_recipient_key,
    normalise_address,
    recipient_domain,
)


def test_key_is_created_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_recipient_key(tmp_path / "data")
    path = tmp_path / "data" / RECIPIENT_KEY_FILE
    assert len(key) == RECIPIENT_KEY_BYTES
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_recipient_key(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / RECIPIENT_KEY_FILE).stat().st_mode) == 0o600


def test_key_is_reused_after_creation(tmp_path: Path) -> None:
    first = load_or_create_recipient_key(tmp_path)
    assert load_or_create_recipient_key(tmp_path) == first


def test_key_creation_leaves_no_temporary_files(tmp_path: Path) -> None:
    load_or_create_recipient_key(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [RECIPIENT_KEY_FILE]


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        keys.append(load_or_create_recipient_key(tmp_path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [RECIPIENT_KEY_FILE]


def test_key_file_of_the_wrong_size_is_an_error_without_key_material(tmp_path: Path) -> None:
    (tmp_path / RECIPIENT_KEY_FILE).write_bytes(b"short-secret")
    with pytest.raises(RecipientKeyError, match="holds 12 bytes, expected 32") as info:
        load_or_create_recipient_key(tmp_path)
    assert "short-secret" not in str(info.value)


def test_hash_is_hmac_sha256_hex_truncated_to_128_bits() -> None:
    secret = bytes(range(32))
    expected = hmac.new(secret, b"someone@example.com", hashlib.sha256).hexdigest()[:32]
    assert hash_recipient(secret, "someone@example.com") == expected


def test_hash_depends_on_the_secret() -> None:
    assert hash_recipient(b"a" * 32, "x@y.z") != hash_recipient(b"b" * 32, "x@y.z")


@pytest.mark.parametrize("secret", [b"k" * 32, b"", b"k" * 64, b"k" * 65, b"k" * 200])
@pytest.mark.parametrize("address", ["someone@example.com", "ünï@exämple.com", "\udcff@x"])
def test_fast_hasher_equals_hash_recipient(secret: bytes, address: str) -> None:
    assert RecipientHasher(secret)(address) == hash_recipient(secret, address)


def test_hasher_repr_hides_the_secret() -> None:
    assert "k" not in repr(RecipientHasher(b"k" * 32)).replace("Recipient", "")


@pytest.mark.parametrize(("raw", "normalised"),
                         [(" Someone@Example.COM\n", "someone@example.com"), ("a@b", "a@b")])
def test_normalise_address_trims_and_lower_cases(raw: str, normalised: str) -> None:
    assert normalise_address(raw) == normalised


@pytest.mark.parametrize(("address", "domain"),
                         [("a@example.com", "example.com"), ('"a@b"@example.com', "example.com"),
                          ("no-at", None), ("a@", None)])
def test_recipient_domain_follows_the_last_at(address: str, domain: str | None) -> None:
    assert recipient_domain(address) == domain
