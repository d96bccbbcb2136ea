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


@dataclass(frozen=True, slots=True)
class ProviderCounts:
    """One mailbox provider's share of an account's deliveries and opens.

    ``opened_*`` count distinct ``sg_message_id`` of human opens of recipients at
    this provider; ``delivered_*`` count ``delivered`` events to them.
    """

    provider: str
    delivered_short: int
    opened_short: int
    delivered_long: int
    opened_long: int


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Everything the scoring model reads about one account on one UTC day.

    The windows are the model's: *short* (default 7 days), *long* (default 30
    days) and *engagement* (default 90 days), each ending with ``day``
    (spec/scoring-model.md). Events are de-duplicated on (account, event_id)
    before counting; distinct counts are exact.

    ``providers`` holds only the model's top providers (default 5) by
    ``delivered_long`` descending, ties by provider name ascending; providers
    with no delivery in the long window are never listed.
    """

    account_id: int
    day: Day
    processed_short: int
    processed_long: int
    delivered_short: int
    delivered_long: int
    #: distinct sg_message_id of human opens in the long window, all providers
    opened_long: int
    invalid_bounces_short: int
    invalid_bounces_long: int
    block_bounces_short: int
    block_bounces_long: int
    spam_reports_short: int
    spam_reports_long: int
    #: distinct recipients of human opens or clicks (spam denominator ``openers``)
    engaged_recipients_short: int
    engaged_recipients_long: int
    #: distinct recipients of ``processed`` events in the long window
    sent_recipients_long: int
    #: of those, the ones with a human open or a click in the engagement window
    sent_engaged_recipients: int
    providers: tuple[ProviderCounts, ...] = ()
