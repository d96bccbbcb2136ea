"""The fast demo load: posts as bodies, merged bodies, generation in other processes,
and the same results as the straightforward load."""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import pytest

from seqscore.demo import (
    AccountPlan,
    Post,
    batch_body,
    default_plans,
    generate,
    merged_posts,
    posts,
)
from seqscore.demo.background import GeneratorFailed, posts_in_processes
from seqscore.service.demo_data import load_demo
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import TEST_NOW

END_DAY = dt.date(2026, 11, 19)


def small_plans(accounts: int = 5, scale: float = 0.2) -> list[AccountPlan]:
    return default_plans(3, accounts=accounts, volume_scale=scale)


def events_by_account(made: list[Post]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = collections.defaultdict(list)
    for post in made:
        events = msgspec.json.decode(post.body)
        assert len(events) == post.events
        found[post.account] += events
    return dict(found)


def test_posts_are_generates_batches_as_bodies() -> None:
    plans = small_plans()
    batches = list(generate(plans, days=6, end_day=END_DAY))
    made = list(posts(plans, days=6, end_day=END_DAY))
    assert [(p.account, p.body, p.events) for p in made] == [
        (b.account, batch_body(b.events), len(b.events)) for b in batches]
    assert len(made) > len(plans)


def test_merged_posts_keep_every_accounts_events_in_order_within_the_limits() -> None:
    plans = small_plans()
    made = list(posts(plans, days=10, end_day=END_DAY, max_batch_events=300))
    merged = list(merged_posts(made, max_events=1_000, max_bytes=400_000))
    assert len(merged) < len(made)
    assert events_by_account(merged) == events_by_account(made)
    for post in merged:
        assert post.events <= 1_000 and len(post.body) <= 400_000
    # a post larger than the limits on its own stays whole
    whole = list(merged_posts(made, max_events=1, max_bytes=10))
    assert sorted((p.account, p.body) for p in whole) == sorted((p.account, p.body) for p in made)


def test_posts_in_processes_are_the_same_posts() -> None:
    plans = small_plans(accounts=6)
    busy: list[float] = []
    made = list(posts_in_processes(plans, days=8, end_day=END_DAY, processes=2, busy=busy))
    expected = list(posts(plans, days=8, end_day=END_DAY))
    by_account: dict[str, list[bytes]] = collections.defaultdict(list)
    for post in expected:
        by_account[post.account].append(post.body)
    got: dict[str, list[bytes]] = collections.defaultdict(list)
    for post in made:
        got[post.account].append(post.body)
    assert got == by_account
    assert len(busy) == 2 and all(b > 0 for b in busy)

    merged = list(posts_in_processes(plans, days=8, end_day=END_DAY, merge=(2_000, 1 << 20)))
    assert len(merged) < len(made)
    assert events_by_account(merged) == events_by_account(expected)


def test_a_failing_generator_process_is_reported() -> None:
    with pytest.raises(GeneratorFailed, match="days must be at least 1"):
        list(posts_in_processes(small_plans(), days=0, end_day=END_DAY))


def _results(data_dir: Path) -> dict[tuple[str, dt.date], tuple[Any, ...]]:
    services = Services.open(Settings(data_dir=data_dir, worker=False))
    try:
        names = {a.user_id: a.username for a in services.state.list_accounts()}
        return {(names[account_id], day): (r.score, r.metrics, r.eligibility, r.counts,
                                           r.rates, r.stale)
                for account_id in names
                for day, r in services.state.get_results(
                    account_id, dt.date(2000, 1, 1), dt.date(2100, 1, 1)).items()}
    finally:
        services.close()


def test_fast_load_stores_what_the_straightforward_load_stores(tmp_path: Path) -> None:
    """Generator in another process, merged bodies, several in flight, one backfill:
    the same events and results as one webhook batch at a time, made in this process."""
    loads = {}
    # (generator processes, merged bodies, batches in flight)
    for name, (processes, merge, in_flight) in (("fast", (1, True, 6)), ("plain", (0, False, 1))):
        services = Services.open(Settings(data_dir=tmp_path / name, worker=False,
                                          now=TEST_NOW.isoformat()))
        try:
            loads[name] = load_demo(services, seed=1, accounts=6, days=30, volume_scale=0.2,
                                    generator_processes=processes, merge_bodies=merge,
                                    in_flight=in_flight)
            with services.events.reading() as table:
                rows = table.to_pyarrow().num_rows
            assert rows > 0
        finally:
            services.close()
    fast, plain = loads["fast"], loads["plain"]
    assert (fast.events, fast.rejected, fast.results) == (plain.events, plain.rejected,
                                                          plain.results)
    assert fast.results == 6 * 31
    assert list(fast.phases) == ["accounts", "events", "results"]
    assert fast.generate_cpu_s > 0
    fast_results, plain_results = _results(tmp_path / "fast"), _results(tmp_path / "plain")
    assert len(fast_results) == 6 * 31
    assert any(r[0] is not None for r in fast_results.values())  # some scores, not only ineligible
    assert fast_results == plain_results
