"""Loading the demo: accounts from the generator's plans, events through the real
ingest path, results for every closed day the /v3 API can ask for, and a key.

Fast on purpose (the demo is ready in well under a minute on two cores): the
generator runs in its own process (``demo.background``) while this one ingests,
each account's webhook batches are merged into a few large bodies (fewer commits and
hand-overs), several bodies are ingested at once (the parser processes of
``IngestService`` parse while this one stores), and the results of all the days are computed in
one backfill pass (the aggregation's ``timeline`` strategy) rather than day by day.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from seqscore.demo import Post, default_plans, merged_posts, posts
from seqscore.demo.background import posts_in_processes
from seqscore.service.accounts import CreatedKey, parse_scopes
from seqscore.service.ingest import IngestReport
from seqscore.service.results import compute_results
from seqscore.service.seq import last_closed_day
from seqscore.service.services import Services
from seqscore.types import Account

#: Demo accounts are marked with this e-mail domain, so a second run finds them.
DEMO_EMAIL_DOMAIN = "demo.seqscore.test"
#: Batches being ingested at once: enough to keep every parser process busy.
IN_FLIGHT: Final = 6
#: Processes generating events while this one ingests them (0: in this process).
GENERATOR_PROCESSES: Final = 1
#: Each account's webhook batches are ingested merged into bodies of up to this many
#: events and bytes (within the receiver's default ``max_body_bytes``): every body
#: costs a commit and a hand-over to a parser process, so fewer, larger ones are
#: cheaper. The events, and so the results, are the same.
MERGED_BODY_EVENTS: Final = 10_000
MERGED_BODY_BYTES: Final = 4 << 20


@dataclass(frozen=True, slots=True)
class DemoLoad:
    """What a load did. ``phases``: wall seconds per phase, in order (``accounts``,
    ``events``: generating and ingesting, overlapped, ``results``); ``generate_cpu_s``:
    CPU seconds the generator spent (inside ``events``)."""

    parent: Account
    accounts: int
    events: int
    rejected: int
    results: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    generate_cpu_s: float = 0.0


def find_demo_parent(services: Services, parent_username: str) -> Account | None:
    """The parent of an earlier demo load in this data dir, if any."""
    return services.state.get_account_by_username(parent_username)


def load_demo(
    services: Services,
    *,
    seed: int = 0,
    accounts: int = 40,
    days: int = 120,
    volume_scale: float = 1.0,
    progress: Callable[[str, int, int], None] | None = None,
    generator_processes: int = GENERATOR_PROCESSES,
    in_flight: int = IN_FLIGHT,
    merge_bodies: bool = True,
) -> DemoLoad:
    """Create the demo's accounts and ingest ``days`` of their events ending yesterday.

    Events go through ``IngestService.ingest``, the same path as a webhook POST,
    ``in_flight`` batches at a time, as ``generator_processes`` processes make them
    (0: made in this process, between ingests); with ``merge_bodies``, each
    account's batches are merged into larger bodies first (the same events). Then
    results are computed for every closed day of the last ``history_days`` (what
    /v3 can ask for), in one pass, so the API answers 200 at once.
    ``progress(stage, done, total)`` is called as work advances (stages ``events``
    and ``results``).
    """
    started = time.monotonic()
    report = progress or (lambda stage, done, total: None)
    phases: dict[str, float] = {}
    today = services.clock.now().date()
    plans = default_plans(seed, accounts=accounts, volume_scale=volume_scale)
    by_name: dict[str, Account] = {}
    for plan in plans:  # parents come first in the plans
        parent = by_name.get(plan.parent) if plan.parent else None
        by_name[plan.username] = services.accounts.create_account(
            plan.username, parent=parent, kind=plan.kind, open_tracking=plan.open_tracking,
            email=f"{plan.username}@{DEMO_EMAIL_DOMAIN}")
    phases["accounts"] = time.monotonic() - started

    mark = time.monotonic()
    busy: list[float] = []
    end_day = today - dt.timedelta(days=1)
    merge = (MERGED_BODY_EVENTS, MERGED_BODY_BYTES) if merge_bodies else None
    source: Iterator[Post]
    if generator_processes > 0:
        source = posts_in_processes(plans, days=days, end_day=end_day,
                                    processes=generator_processes, merge=merge, busy=busy)
    else:
        source = posts(plans, days=days, end_day=end_day)
        if merge is not None:
            source = merged_posts(source, max_events=merge[0], max_bytes=merge[1])
    ingest = services.ingest
    events = rejected = 0
    pending: deque[Future[IngestReport]] = deque()

    def settle(outcome: IngestReport) -> None:
        nonlocal events, rejected
        events += outcome.accepted + outcome.duplicates
        rejected += outcome.rejected
        report("events", events, 0)

    with ThreadPoolExecutor(in_flight, thread_name_prefix="seqscore-demo") as threads:
        try:
            for post in source:
                pending.append(threads.submit(ingest.ingest, by_name[post.account], post.body))
                while len(pending) >= in_flight:
                    settle(pending.popleft().result())
            while pending:
                settle(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
            close = getattr(source, "close", None)
            if close is not None:
                close()
    phases["events"] = time.monotonic() - mark

    mark = time.monotonic()
    closed = last_closed_day(services.clock.now(), services.settings.settle_minutes)
    history = min(services.settings.history_days, days)
    score_days = [closed - dt.timedelta(days=i) for i in range(history, -1, -1)]
    targets = list(by_name.values())
    report("results", 0, len(score_days) * len(targets))
    results = compute_results(services.events, services.model, targets, score_days,
                              computed_at=services.clock.now())
    services.state.upsert_results(results)
    report("results", len(results), len(score_days) * len(targets))
    phases["results"] = time.monotonic() - mark
    parent_account = by_name[plans[0].username]
    return DemoLoad(parent_account, len(targets), events, rejected, len(results),
                    time.monotonic() - started, phases, sum(busy))


def demo_key(services: Services, parent: Account) -> CreatedKey:
    """A fresh full-access key for the demo parent (keys are shown once, never stored)."""
    return services.accounts.create_key(parent, name="demo", scopes=parse_scopes(None))
