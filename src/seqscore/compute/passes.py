"""How one large computation is cut into aggregation passes.

A backfill asks for every (account, day) of a range. Counting it in one pass
would hold every fact it reads in one query: on the 50M-event benchmark store the
60-day pass spilled 14 GB to disk under DuckDB's 1 GB memory limit and took 50 s,
while the same counts in four passes of a quarter of the accounts each took 28 s
in all. So a computation is cut twice:

* days into runs of at most ``days_per_pass`` consecutive requested days
  (``day_runs``): each run is one aggregation over its days' windows;
* the accounts of a run into groups whose volume (``weights``, e.g. the day
  facts each account has in the days the run reads) stays within a budget
  (``account_groups``), each group one pass; a backfill's last group is cut
  smaller (``backfill_groups``): it is scored after everything is counted, with a
  core idle, so a small one ends the run sooner (50M store: 2.5 s less).

Accounts are independent in every count, so passes never change a result, only
how much one query holds at once. Pure functions: the caller measures volumes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

__all__ = ["LAST_PASS_SHARE", "account_groups", "backfill_groups", "day_runs"]

#: The last group of a backfill holds at most this share of the budget (1/n).
LAST_PASS_SHARE = 4


def day_runs(days: Sequence[dt.date], days_per_pass: int | None) -> list[list[dt.date]]:
    """The distinct ``days`` in order, in runs of at most ``days_per_pass`` (None or less
    than 1: one run)."""
    ordered = sorted(set(days))
    size = days_per_pass if days_per_pass and days_per_pass > 0 else max(len(ordered), 1)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def account_groups(account_ids: Sequence[int], weights: Mapping[int, int],
                   budget: int | None) -> list[list[int]]:
    """``account_ids`` (sorted, distinct) in consecutive groups, each as large as it can be
    while its accounts' weights sum to at most ``budget``; an account heavier than the
    budget alone is a group of its own. Missing weights count 0. No budget (None or
    less than 1), or a total within it: one group. No accounts: no group."""
    ordered = sorted(set(account_ids))
    if not ordered:
        return []
    if not budget or budget < 1 or sum(weights.get(a, 0) for a in ordered) <= budget:
        return [ordered]
    groups: list[list[int]] = []
    current: list[int] = []
    held = 0
    for account in ordered:
        weight = max(weights.get(account, 0), 0)
        if current and held + weight > budget:
            groups.append(current)
            current, held = [], 0
        current.append(account)
        held += weight
    groups.append(current)
    return groups


def backfill_groups(account_ids: Sequence[int], weights: Mapping[int, int],
                    budget: int | None) -> list[list[int]]:
    """``account_groups``, with the last of several groups cut again into groups of at
    most ``budget // LAST_PASS_SHARE`` (at least 1)."""
    groups = account_groups(account_ids, weights, budget)
    if len(groups) > 1 and budget:
        groups[-1:] = account_groups(groups[-1], weights, max(budget // LAST_PASS_SHARE, 1))
    return groups
