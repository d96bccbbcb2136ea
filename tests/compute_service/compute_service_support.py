"""Helpers of the compute-service tests (``test_compute_service_*.py``): webhook events,
ingesting them, the expected results straight from the pure model, polling."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from seqscore.compute import compute_window_counts
from seqscore.demo import PROFILES, AccountPlan, batch_body, generate
from seqscore.scoring import DEFAULT_MODEL, ScoreDecision, ScoringModel, score_day
from seqscore.service.services import Services
from seqscore.service.worker import Worker
from seqscore.types import Account, AccountKind, DayResult, JobState
from seqscore_testing import TEST_NOW, World

UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)
#: The last closed day at TEST_NOW (2026-11-20 12:00 UTC, settle 60 minutes).
CLOSED = TEST_NOW.date() - ONE_DAY
SCORES = "/v3/engagementquality/scores"
ACCEPTED_BODY = {"message": "We are processing the score for this date range. "
                            "Please try again later."}
T = TypeVar("T")


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + ONE_DAY * i for i in range((last - first).days + 1)]


def unix(on: dt.date, hh: int = 12, mm: int = 0, ss: int = 0) -> int:
    """Unix seconds of ``on`` at hh:mm:ss UTC."""
    return int(dt.datetime.combine(on, dt.time(hh, mm, ss), UTC).timestamp())


class Events:
    """Builds SendGrid webhook events with unique ids (one builder per account)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self, event: str, when: int, email: str, *, message: str | None = None,
                 **fields: Any) -> dict[str, Any]:
        self.n += 1
        out: dict[str, Any] = {"email": email, "timestamp": when, "event": event,
                               "sg_event_id": f"{self.prefix}-{self.n:07d}",
                               "sg_message_id": message or f"{self.prefix}-m{self.n:07d}.0"}
        out.update(fields)
        return out


def post(services: Services, account: Account, events: Sequence[dict[str, Any]]) -> None:
    """Ingest ``events`` for ``account`` as one webhook batch (stores, marks stale)."""
    report = services.ingest.ingest(account, json.dumps(list(events)).encode())
    assert report.rejected == 0, report.errors


# --- the generated month -------------------------------------------------------------------

#: A parent, three subusers and a customer account: eligible, low volume, open tracking
#: off; small volumes (about 14,000 events over 30 days).
MONTH_PLANS = (
    AccountPlan("acme", AccountKind.SUBUSER, None, True, PROFILES["transactional"], 7, 0.4),
    AccountPlan("acme-news", AccountKind.SUBUSER, "acme", True, PROFILES["healthy_newsletter"],
                7, 0.1),
    AccountPlan("acme-billing", AccountKind.SUBUSER, "acme", False,
                PROFILES["open_tracking_off"], 7, 0.4),
    AccountPlan("acme-club", AccountKind.SUBUSER, "acme", True, PROFILES["low_volume"], 7, 1.0),
    AccountPlan("shop-7", AccountKind.CUSTOMER, "acme", True, PROFILES["complaint_heavy"], 7,
                0.1),
)


def create_plan_accounts(world: World, plans: Iterable[AccountPlan]) -> dict[str, Account]:
    made: dict[str, Account] = {}
    for plan in plans:
        made[plan.username] = world.account(
            plan.username, parent=made[plan.parent] if plan.parent else None, kind=plan.kind,
            open_tracking=plan.open_tracking)
    return made


def month_batches(end_day: dt.date = CLOSED, days_: int = 30) -> list[tuple[str, bytes]]:
    """(username, webhook body) of the generated month, in arrival order."""
    return [(b.account, batch_body(b.events))
            for b in generate(list(MONTH_PLANS), days=days_, end_day=end_day)]


def on_behalf_of(account: Account) -> dict[str, str]:
    """The ``on-behalf-of`` header naming a child, in the form its kind requires."""
    if account.parent_id is None:
        return {}
    if account.kind == AccountKind.CUSTOMER:
        return {"on-behalf-of": f"account-id {account.user_id}"}
    return {"on-behalf-of": account.username}


# --- what the pure model says --------------------------------------------------------------

def expected(services: Services, accounts: Sequence[Account], on: Sequence[dt.date],
             model: ScoringModel = DEFAULT_MODEL) -> dict[tuple[int, dt.date], ScoreDecision]:
    """Decisions of ``score_day`` on ``compute_window_counts`` of the stored events,
    without the job machinery."""
    with services.events.reading() as table:
        counts = compute_window_counts(
            table, sorted(set(on)), [a.user_id for a in accounts],
            short_window_days=model.short_window_days, long_window_days=model.long_window_days,
            engagement_window_days=model.engagement_window_days,
            top_providers=model.top_providers)
    by_id = {a.user_id: a for a in accounts}
    return {(c.account_id, c.day): score_day(c, model, open_tracking=by_id[c.account_id]
                                             .open_tracking) for c in counts}


def v3_entry(account: Account, on: dt.date, decision: ScoreDecision) -> dict[str, Any]:
    """The /v3 entry a decision gives (spec/seq-api.md)."""
    entry: dict[str, Any] = {"user_id": str(account.user_id), "username": account.username,
                             "date": on.isoformat()}
    if decision.score is not None:
        assert decision.metrics is not None
        entry["score"] = decision.score
        entry["metrics"] = dict(decision.metrics)
    return entry


def assert_stored_matches(result: DayResult, decision: ScoreDecision) -> None:
    got = (result.score, result.metrics, result.eligibility, dict(result.counts),
           dict(result.rates), dict(result.explanation), result.model_version)
    want = (decision.score, decision.metrics, decision.eligibility, decision.counts,
            decision.rates, json.loads(json.dumps(decision.explanation)), decision.model_version)
    assert got == want, f"{result.account_id} {result.day}"


# --- jobs ----------------------------------------------------------------------------------

def run_jobs(services: Services) -> int:
    """Compute every due job now, synchronously (no scheduler tick)."""
    return Worker(services).runner.run_until_idle("test-worker")


def open_jobs(services: Services) -> list[Any]:
    return [j for j in services.state.list_jobs()
            if j.state in (JobState.PENDING, JobState.RUNNING)]


def wait_for(check: Callable[[], T | None], *, timeout_s: float = 90.0,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something other than None (or fail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)
