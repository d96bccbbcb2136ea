"""/subusers/scores pagination over 2,500 children, keyed by numeric user_id.

The user_ids are chosen so that numeric and lexicographic order differ (5, 99,
1000..3496, 10**12): a walk in string order, or an after_key compared as text,
fails. Some children are customer accounts, some disabled, some ineligible:
all are listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from openapi_check import ValidatingClient
from seq_api_support import ENGINES, bearer, client_for, day, entry, module_services

from seqscore.storage.state_schema import accounts
from seqscore.types import METRIC_NAMES, Account, AccountKind, DayResult, Eligibility
from seqscore_testing import TEST_NOW, World

SUBUSERS = "/v3/engagementquality/subusers/scores"
DATE = day("2026-11-19")
CHILD_IDS = [5, 99, *range(1000, 3497), 10**12]
DISABLED = {99, 1000, 2024, 10**12}


def kind_of(user_id: int) -> AccountKind:
    return AccountKind.CUSTOMER if user_id % 10 == 3 else AccountKind.SUBUSER


def score_of(user_id: int) -> tuple[int, tuple[int, ...]] | None:
    if user_id % 7 == 0:
        return None  # ineligible that day
    return user_id % 5 + 1, tuple((user_id // 5 + i) % 5 + 1 for i in range(5))


@dataclass
class Listing:
    client: ValidatingClient
    key: str
    lonely_key: str
    expected: list[dict[str, Any]]  # every child's entry, numeric user_id order


def _insert_children(world: World, parent: Account) -> list[Account]:
    # 2,500 single-row transactions take ~20 s on PostgreSQL; one multi-row insert
    # into the store's own table takes well under one. The last child goes through
    # the service (it bumps the accounts generation, as any real write does).
    state = world.services.state
    rows = [{"user_id": uid, "username": f"kid-{uid}", "email": f"kid-{uid}@example.test",
             "parent_id": parent.user_id, "kind": kind_of(uid).value, "open_tracking": True,
             "disabled": False, "created_at": TEST_NOW} for uid in CHILD_IDS[:-1]]
    with state.engine.begin() as conn:
        conn.execute(accounts.insert(), rows)
    world.account(f"kid-{CHILD_IDS[-1]}", parent=parent, user_id=CHILD_IDS[-1],
                  kind=kind_of(CHILD_IDS[-1]))
    for uid in DISABLED:
        state.update_account(uid, disabled=True)
    children = state.list_children(parent.user_id)
    assert len(children) == len(CHILD_IDS)
    return children


@pytest.fixture(scope="module", params=ENGINES)
def listing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with module_services(request, tmp_path_factory, rate_limit_per_minute=100_000) as services:
        world = World(services)
        parent = world.account("reseller", user_id=1)
        other = world.account("other-parent", user_id=2)
        world.account("not-mine", parent=other, user_id=3)  # never in reseller's pages
        lonely = world.account("lonely", user_id=4)
        children = _insert_children(world, parent)
        results = []
        for child in children:
            scored = score_of(child.user_id)
            results.append(DayResult(
                account_id=child.user_id, day=DATE, score=scored and scored[0],
                metrics=scored and dict(zip(METRIC_NAMES, scored[1], strict=True)),
                eligibility=Eligibility.ELIGIBLE if scored else Eligibility.LOW_VOLUME,
                model_version="test", computed_at=TEST_NOW))
        services.state.upsert_results(results)
        by_id = {c.user_id: c for c in children}
        expected = [entry(by_id[uid], DATE, *(score_of(uid) or ())) for uid in CHILD_IDS]
        with client_for(services) as client:
            yield Listing(client, world.key(parent), world.key(lonely), expected)


def test_child_ids_order_differently_as_text() -> None:
    assert sorted(CHILD_IDS) == CHILD_IDS
    assert sorted(CHILD_IDS, key=str) != CHILD_IDS


def walk(listing: Listing, limit: int | None, after_key: str | None = None,
         max_pages: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow next_params.after_key; returns (entries, the raw pages)."""
    entries: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    while max_pages is None or len(pages) < max_pages:
        query = f"date={DATE}"
        if limit is not None:
            query += f"&limit={limit}"
        if after_key is not None:
            query += f"&after_key={after_key}"
        r = listing.client.get(f"{SUBUSERS}?{query}", headers=bearer(listing.key))
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        assert set(page) <= {"result", "_metadata"}
        assert len(page["result"]) <= (limit or 1000)
        entries.extend(page["result"])
        if "_metadata" not in page:
            break
        after_key = page["_metadata"]["next_params"]["after_key"]
        assert page["_metadata"] == {"next_params": {"after_key": after_key}}
        assert isinstance(after_key, str)
        assert after_key == page["result"][-1]["user_id"]
    return entries, pages


@pytest.mark.parametrize("limit", [1000, 999, 500, None],
                         ids=["limit-1000", "limit-999", "limit-500-divides", "default"])
def test_walk_returns_every_child_once_in_numeric_order(listing: Listing,
                                                        limit: int | None) -> None:
    entries, pages = walk(listing, limit)
    assert entries == listing.expected
    assert len(pages) == math.ceil(len(CHILD_IDS) / (limit or 1000))
    assert all(len(p["result"]) == (limit or 1000) for p in pages[:-1])
    assert "_metadata" not in pages[-1]  # absent on the last page, even a full one
    # spelled out, though implied by the equality above
    listed = {int(e["user_id"]) for e in entries}
    assert listed >= DISABLED
    assert listed >= {uid for uid in CHILD_IDS if kind_of(uid) is AccountKind.CUSTOMER}
    assert 3 not in listed  # another parent's child
    ineligible = [e for e in entries if int(e["user_id"]) % 7 == 0]
    assert ineligible and all(set(e) == {"user_id", "username", "date"} for e in ineligible)


def test_walk_with_limit_7_subset(listing: Listing) -> None:
    # the first pages
    entries, pages = walk(listing, 7, max_pages=20)
    assert entries == listing.expected[:140]
    assert [p["_metadata"]["next_params"]["after_key"] for p in pages[:3]] == [
        "1004", "1011", "1018"]
    # from a key between two children (999 is nobody): starts at 1000
    entries, _ = walk(listing, 7, after_key="999", max_pages=10)
    assert entries == listing.expected[2:72]
    # the tail: a full page with a next key, then the last page of 3 without one
    tail_start = listing.expected[-11]["user_id"]
    entries, pages = walk(listing, 7, after_key=tail_start)
    assert entries == listing.expected[-10:]
    assert [len(p["result"]) for p in pages] == [7, 3]
    assert "_metadata" in pages[0] and "_metadata" not in pages[1]


def test_parent_with_no_children_gets_an_empty_result(listing: Listing) -> None:
    r = listing.client.get(f"{SUBUSERS}?date={DATE}", headers=bearer(listing.lonely_key))
    assert r.status_code == 200
    assert r.content == b'{"result":[]}'


def test_after_key_is_a_number_not_text(listing: Listing) -> None:
    # as text "5" > "1000"; as a number the page after 5 starts at 99
    r = listing.client.get(f"{SUBUSERS}?date={DATE}&limit=2&after_key=5",
                           headers=bearer(listing.key))
    assert r.status_code == 200
    assert [e["user_id"] for e in r.json()["result"]] == ["99", "1000"]
    assert r.json()["_metadata"] == {"next_params": {"after_key": "1000"}}
