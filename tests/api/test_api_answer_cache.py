"""The /v3 answer cache keeps answers of the newest generation only, within its size."""

from __future__ import annotations

import dataclasses

import pytest
from seq_api_support import bearer, client_for, day, entry

from seqscore.api.answer_cache import AnswerCache
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import World

SCORES = "/v3/engagementquality/scores"
M = (4, 3, 5, 5, 4)  # the metrics World.result writes by default


def test_an_answer_is_served_only_for_its_generation() -> None:
    cache = AnswerCache(max_bytes=1 << 20)
    cache.put("a", (1, 1), b"one")
    assert cache.get("a", (1, 1)) == b"one"
    assert cache.get("a", (2, 1)) is None  # a newer write: the answer may be wrong
    assert cache.get("b", (1, 1)) is None


def test_a_newer_generation_empties_the_cache() -> None:
    cache = AnswerCache(max_bytes=1 << 20)
    for n in range(100):
        cache.put(("page", n), (1, 1), b"x" * 1000)
    assert (len(cache), cache.size_bytes) == (100, 100_000)
    cache.put(("page", 0), (1, 2), b"fresh")
    assert (len(cache), cache.size_bytes) == (1, 5)
    assert cache.get(("page", 1), (1, 1)) is None
    assert cache.get(("page", 0), (1, 2)) == b"fresh"


def test_an_answer_read_under_an_older_generation_is_not_kept() -> None:
    cache = AnswerCache(max_bytes=1 << 20)
    cache.put("new", (3, 1), b"new")
    cache.put("late", (2, 9), b"late")  # read before the write of generation (3, _)
    assert (len(cache), cache.get("new", (3, 1)), cache.get("late", (2, 9))) == (1, b"new", None)


def test_the_least_recently_used_go_beyond_max_bytes() -> None:
    cache = AnswerCache(max_bytes=3000)
    for name in "abc":
        cache.put(name, (1, 1), b"x" * 700)
    assert cache.get("a", (1, 1)) is not None  # "a" is now the most recent
    cache.put("d", (1, 1), b"x" * 700)  # 2,800 bytes: all fit
    cache.put("e", (1, 1), b"x" * 700)  # 3,500: the least recent ("b") goes
    assert [n for n in "abcde" if cache.get(n, (1, 1)) is not None] == ["a", "c", "d", "e"]
    assert cache.size_bytes == 2800


def test_a_body_over_a_quarter_of_the_cache_is_not_kept() -> None:
    cache = AnswerCache(max_bytes=4000)
    cache.put("big", (1, 1), b"x" * 1001)
    assert cache.get("big", (1, 1)) is None and len(cache) == 0


@pytest.mark.parametrize("cache_mb", [64, 0])
def test_a_written_result_is_served_at_once(settings: Settings, clock, cache_mb: int) -> None:
    """Through the API: the answer read before a write is never served after it."""
    services = Services.open(dataclasses.replace(settings, answer_cache_mb=cache_mb), clock=clock)
    try:
        world = World(services)
        parent = world.account("acme")
        world.result(parent, day("2026-11-18"), 4)
        client = client_for(services)
        url = f"{SCORES}?from=2026-11-18&to=2026-11-18"
        key = world.key(parent)
        for _ in range(2):  # the second answer can come from the cache
            assert client.get(url, headers=bearer(key)).json() == {
                "result": [entry(parent, day("2026-11-18"), 4, M)]}
        world.result(parent, day("2026-11-18"), 2, (2, 2, 2, 2, 2))
        assert client.get(url, headers=bearer(key)).json() == {
            "result": [entry(parent, day("2026-11-18"), 2, (2, 2, 2, 2, 2))]}
    finally:
        services.close()
