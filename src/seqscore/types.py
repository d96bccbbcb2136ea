"""Plain value types shared by every layer. Imports nothing from seqscore.

Days are ``datetime.date`` in UTC; instants are timezone-aware ``datetime`` in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

Day = dt.date

#: The five SEQ metrics, in the order SendGrid documents them.
METRIC_NAMES: tuple[str, ...] = (
    "engagement_recency",
    "open_rate",
    "bounce_classification",
    "bounce_rate",
    "spam_rate",
)


class AccountKind(StrEnum):
    """How a child account is addressed with ``on-behalf-of``.

    ``subuser`` children are named by username, ``customer`` accounts by
    ``account-id <user_id>``. Meaningless for top-level (parent) accounts.
    """

    SUBUSER = "subuser"
    CUSTOMER = "customer"


class Scope(StrEnum):
    ENGAGEMENT_QUALITY_READ = "engagement_quality.read"
    SUBUSERS_READ = "subusers.read"
    SUBUSERS_CREATE = "subusers.create"
    API_KEYS_READ = "api_keys.read"
    API_KEYS_CREATE = "api_keys.create"
    API_KEYS_DELETE = "api_keys.delete"
    EVENTS_WRITE = "events.write"
    SCORES_READ = "scores.read"


#: A key with this scope has every scope (SendGrid's "Full Access").
FULL_ACCESS = "full_access"


class Eligibility(StrEnum):
    ELIGIBLE = "eligible"
    LOW_VOLUME = "low_volume"
    OPEN_TRACKING_OFF = "open_tracking_off"


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Account:
    user_id: int
    username: str
    email: str
    parent_id: int | None
    kind: AccountKind
    open_tracking: bool
    disabled: bool
    created_at: dt.datetime
    webhook_public_key: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key. The secret itself is never kept, only its hash."""

    key_id: str
    account_id: int
    name: str
    scopes: frozenset[str]
    revoked: bool
    created_at: dt.datetime

    def allows(self, scope: str) -> bool:
        return FULL_ACCESS in self.scopes or scope in self.scopes


@dataclass(frozen=True, slots=True)
class DayResult:
    """The computed SEQ result of one account for one UTC day.

    ``score`` and ``metrics`` are ``None`` when the account is not eligible
    (``eligibility`` says why). ``counts`` holds the window counts the score was
    computed from; ``rates`` holds each metric's rate as an exact fraction
    ``(numerator, denominator)``. ``explanation`` is the full JSON-able record of
    the decision (measures chosen, band edges, weighted mean, cap).
    """

    account_id: int
    day: Day
    score: int | None
    metrics: Mapping[str, int] | None
    eligibility: Eligibility
    model_version: str
    computed_at: dt.datetime
    counts: Mapping[str, int] = field(default_factory=dict)
    rates: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    explanation: Mapping[str, object] = field(default_factory=dict)
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """A queued computation of one account's result for one day."""

    job_id: int
    account_id: int
    day: Day
    state: JobState
    attempts: int
    not_before: dt.datetime
    last_error: str | None = None
