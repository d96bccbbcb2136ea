"""Cutting a computation into passes (seqscore.compute.passes): runs of days, groups of
accounts within a volume budget."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from seqscore.compute.passes import LAST_PASS_SHARE, account_groups, backfill_groups, day_runs

D = dt.date(2026, 7, 1)


def test_day_runs_are_ordered_distinct_and_bounded() -> None:
    days = [D + dt.timedelta(days=k) for k in (4, 0, 2, 2, 1, 3)]
    assert day_runs(days, 2) == [[D, D + dt.timedelta(days=1)],
                                 [D + dt.timedelta(days=2), D + dt.timedelta(days=3)],
                                 [D + dt.timedelta(days=4)]]
    assert day_runs(days, None) == [sorted(set(days))]
    assert day_runs(days, 0) == [sorted(set(days))]
    assert day_runs([], 3) == []


def test_account_groups_fill_the_budget_in_id_order() -> None:
    weights = {1: 4, 2: 3, 3: 3, 4: 10, 5: 1}
    assert account_groups([5, 3, 1, 2, 4], weights, 6) == [[1], [2, 3], [4], [5]]
    assert account_groups([1, 2, 3], weights, 10) == [[1, 2, 3]]  # within it: one group
    assert account_groups([1, 2, 3], weights, None) == [[1, 2, 3]]
    assert account_groups([1, 2, 9], weights, 4) == [[1], [2, 9]]  # no weight counts 0
    assert account_groups([], weights, 4) == []


@given(st.dictionaries(st.integers(0, 200), st.integers(0, 50), max_size=60),
       st.integers(1, 120))
def test_account_groups_cover_every_account_once_within_budget(
        weights: dict[int, int], budget: int) -> None:
    ids = sorted(weights)
    groups = account_groups(ids, weights, budget)
    assert [a for g in groups for a in g] == ids  # every account once, in order
    for g in groups:
        total = sum(weights[a] for a in g)
        assert total <= budget or len(g) == 1  # only a lone heavy account exceeds it
    for g, nxt in itertools.pairwise(groups):
        # a group closes only when the next account would not fit
        assert sum(weights[a] for a in g) + weights[nxt[0]] > budget


@given(st.dictionaries(st.integers(0, 200), st.integers(0, 50), max_size=60),
       st.integers(1, 120))
def test_a_backfill_ends_with_small_groups(weights: dict[int, int], budget: int) -> None:
    ids = sorted(weights)
    plain = account_groups(ids, weights, budget)
    groups = backfill_groups(ids, weights, budget)
    assert [a for g in groups for a in g] == ids
    assert groups[:len(plain) - 1] == plain[:-1]  # only the last group is cut again
    if len(plain) > 1:
        for g in groups[len(plain) - 1:]:
            assert sum(weights[a] for a in g) <= max(budget // LAST_PASS_SHARE, 1) or len(g) == 1
    else:
        assert groups == plain


def test_the_setting_default_is_the_library_default() -> None:
    from seqscore.service.results import FACTS_PER_PASS
    from seqscore.settings import Settings

    assert Settings().compute_facts_per_pass == FACTS_PER_PASS
