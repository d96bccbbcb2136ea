"""Loading the demo: accounts from the generator's plans, events through the real
ingest path, results for every closed day the /v3 API can ask for, and a key.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from seqscore.demo import batch_body, default_plans, generate
from seqscore.service.accounts import CreatedKey, parse_scopes
from seqscore.service.jobs import compute_results
from seqscore.service.seq import last_closed_day
from seqscore.service.services import Services
from seqscore.types import Account

#: Demo accounts are marked with this e-mail domain, so a second run finds them.
DEMO_EMAIL_DOMAIN = "demo.seqscore.test"


@dataclass(frozen=True, slots=True)
class DemoLoad:
    parent: Account
    accounts: int
    events: int
    rejected: int
    results: int
    seconds: float


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
) -> DemoLoad:
    """Create the demo's accounts and ingest ``days`` of their events ending yesterday.

    Events go through ``IngestService.ingest``, the same path as a webhook POST.
    Then results are computed for every closed day of the last
    ``history_days`` (what /v3 can ask for), so the API answers 200 at once.
    ``progress(stage, done, total)`` is called as work advances.
    """
    started = time.monotonic()
    report = progress or (lambda stage, done, total: None)
    today = services.clock.now().date()
    plans = default_plans(seed, accounts=accounts, volume_scale=volume_scale)
    by_name: dict[str, Account] = {}
    for plan in plans:  # parents come first in the plans
        parent = by_name.get(plan.parent) if plan.parent else None
        by_name[plan.username] = services.accounts.create_account(
            plan.username, parent=parent, kind=plan.kind, open_tracking=plan.open_tracking,
            email=f"{plan.username}@{DEMO_EMAIL_DOMAIN}")
    ingest = services.ingest
    events = rejected = 0
    for batch in generate(plans, days=days, today=today, volume_scale=volume_scale):
        outcome = ingest.ingest(by_name[batch.account], batch_body(batch.events))
        events += outcome.accepted + outcome.duplicates
        rejected += outcome.rejected
        report("events", events, 0)
    closed = last_closed_day(services.clock.now(), services.settings.settle_minutes)
    history = min(services.settings.history_days, days)
    score_days = [closed - dt.timedelta(days=i) for i in range(history, -1, -1)]
    targets = list(by_name.values())
    written = 0
    for start in range(0, len(score_days), 15):
        chunk = score_days[start : start + 15]
        results = compute_results(services.events, services.model, targets, chunk,
                                  computed_at=services.clock.now())
        services.state.upsert_results(results)
        written += len(results)
        report("results", written, len(score_days) * len(targets))
    parent_account = by_name[plans[0].username]
    return DemoLoad(parent_account, len(targets), events, rejected, written,
                    time.monotonic() - started)


def demo_key(services: Services, parent: Account) -> CreatedKey:
    """A fresh full-access key for the demo parent (keys are shown once, never stored)."""
    return services.accounts.create_key(parent, name="demo", scopes=parse_scopes(None))
