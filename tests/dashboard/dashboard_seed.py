"""A seeded data set for the dashboard: a parent with children of typical sending profiles.

Results are scored by the real model from synthetic window counts, so every
result carries real counts, rates and explanations. Deterministic: the same
arguments give the same results. Used by the tests and by scripts/screenshots.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from seqscore.scoring import DEFAULT_MODEL, ScoreDecision, score_day, to_day_result
from seqscore.service.services import Services
from seqscore.types import Account, AccountKind, DayResult, ProviderCounts, WindowCounts

COMPUTED_AT = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
PROVIDER_SHARES = (("gmail", 0.44), ("microsoft", 0.24), ("yahoo", 0.14), ("apple", 0.12),
                   ("other", 0.06))


@dataclass(frozen=True)
class Profile:
    """How an account sends; rates in percent, ``drift`` scales the bad rates over time
    (0.5: 50 % worse at the end of the period than at its start; negative: recovering)."""

    daily_volume: int
    open_pct: float
    engaged_pct: float
    invalid_pct: float
    block_pct: float
    spam_pct: float
    drift: float = 0.0
    open_tracking: bool = True
    kind: AccountKind = AccountKind.SUBUSER


PROFILES: dict[str, Profile] = {
    "acme-newsletter": Profile(4_000, 31, 58, 0.4, 0.05, 0.02),
    "acme-receipts": Profile(9_000, 42, 66, 0.2, 0.03, 0.01),
    "acme-promotions": Profile(12_000, 14, 30, 1.6, 0.3, 0.09, drift=0.6),
    "acme-winback": Profile(2_500, 7, 12, 6.5, 1.5, 0.22, drift=0.3),
    "acme-onboarding": Profile(1_500, 28, 47, 0.8, 0.08, 0.03),
    "shop-eu": Profile(6_000, 19, 38, 1.2, 0.2, 0.06),
    "shop-us": Profile(8_000, 17, 33, 1.7, 0.4, 0.11, drift=-0.3),
    "shop-cart-reminders": Profile(3_000, 22, 36, 0.9, 0.15, 0.16, drift=0.4),
    "blog-digest": Profile(2_000, 24, 41, 0.5, 0.1, 0.04),
    "events-invites": Profile(1_200, 16, 24, 3.2, 0.7, 0.14),
    "partner-feed": Profile(5_000, 9, 17, 11.5, 3.5, 0.35, drift=0.2,
                            kind=AccountKind.CUSTOMER),
    "reseller-north": Profile(3_500, 21, 39, 1.0, 0.12, 0.05, kind=AccountKind.CUSTOMER),
    "reseller-south": Profile(2_800, 12, 22, 2.4, 0.9, 0.18, kind=AccountKind.CUSTOMER),
    "survey-panel": Profile(900, 26, 45, 0.7, 0.1, 0.04),
    "alerts-critical": Profile(7_000, 36, 61, 0.3, 0.02, 0.01),
    "pilot-tiny": Profile(20, 30, 50, 0.5, 0.1, 0.0),
    "legacy-no-tracking": Profile(3_000, 20, 40, 1.0, 0.1, 0.05, open_tracking=False),
}
#: present in the seeded world but never computed for the last day
NOT_COMPUTED = ("new-signup",)


def window_counts(account_id: int, day: dt.date, profile: Profile, progress: float,
                  rng: random.Random, phase: float = 0.0) -> WindowCounts:
    """Synthetic counts of one account-day; ``progress`` runs 0..1 over the period."""

    def noisy(value: float, spread: float = 0.12) -> float:
        return max(value * (1 + rng.uniform(-spread, spread)), 0.0)

    wave = 1 + 0.15 * math.sin(progress * 6.0 + phase)
    worse = max(1 + profile.drift * progress, 0.1) * wave
    processed_long = round(noisy(profile.daily_volume * 30, 0.08))
    processed_short = round(noisy(profile.daily_volume * 7, 0.1))

    def pct(value: float, volume: int) -> int:
        return min(round(volume * noisy(value) / 100), volume)

    invalid_long = pct(profile.invalid_pct * worse, processed_long)
    invalid_short = pct(profile.invalid_pct * worse, processed_short)
    block_long = pct(profile.block_pct * worse, processed_long)
    block_short = pct(profile.block_pct * worse, processed_short)
    delivered_long = processed_long - invalid_long - block_long
    delivered_short = processed_short - invalid_short - block_short
    open_pct = profile.open_pct / max(worse, 1) ** 0.5
    providers = []
    for name, share in PROVIDER_SHARES:
        d_long, d_short = round(delivered_long * share), round(delivered_short * share)
        providers.append(ProviderCounts(name, d_short, pct(open_pct, d_short), d_long,
                                        pct(open_pct, d_long)))
    recipients = round(processed_long * 0.7)
    engaged = pct(profile.engaged_pct / max(worse, 1) ** 0.5, recipients)
    return WindowCounts(
        account_id=account_id, day=day, processed_short=processed_short,
        processed_long=processed_long, delivered_short=delivered_short,
        delivered_long=delivered_long, opened_long=sum(p.opened_long for p in providers),
        invalid_bounces_short=invalid_short, invalid_bounces_long=invalid_long,
        block_bounces_short=block_short, block_bounces_long=block_long,
        spam_reports_short=pct(profile.spam_pct * worse, delivered_short),
        spam_reports_long=pct(profile.spam_pct * worse, delivered_long),
        engaged_recipients_short=round(engaged * 0.4), engaged_recipients_long=engaged,
        sent_recipients_long=recipients, sent_engaged_recipients=engaged,
        providers=tuple(providers),
    )


@functools.lru_cache(maxsize=256)
def _decisions(username: str, profile: Profile, days: tuple[dt.date, ...],
               seed: int) -> list[ScoreDecision]:
    # scoring dominates seeding time; the tests seed the same accounts again and again
    rng = random.Random(f"{seed}-{username}")
    phase = sum(map(ord, username)) % 7
    return [score_day(window_counts(0, day, profile, i / max(len(days) - 1, 1), rng, phase),
                      DEFAULT_MODEL, open_tracking=profile.open_tracking)
            for i, day in enumerate(days)]


def scored_results(account: Account, profile: Profile, days: Sequence[dt.date],
                   seed: int = 7) -> list[DayResult]:
    """Results of ``account`` for ``days`` (oldest first), scored by the default model."""
    return [to_day_result(decision, account.user_id, day, COMPUTED_AT)
            for day, decision in zip(days, _decisions(account.username, profile, tuple(days),
                                                      seed), strict=True)]


def last_days(last: dt.date, days: int) -> list[dt.date]:
    return [last - dt.timedelta(days=days - 1 - i) for i in range(days)]


@dataclass
class SeededWorld:
    parent: Account
    key: str
    children: list[Account]
    #: every child's profile, by username (absent: never computed)
    profiles: dict[str, Profile]


def seed_world(services: Services, last: dt.date, *, days: int = 90,
               parent_name: str = "acme") -> SeededWorld:
    """A parent with the children of ``PROFILES`` (results for ``days`` days ending
    ``last``) and of ``NOT_COMPUTED`` (no result for ``last``); returns a full-access key."""
    accounts = services.accounts
    parent = accounts.create_account(parent_name, email=f"ops@{parent_name}.example")
    key = accounts.create_key(parent, name="dashboard", scopes=frozenset({"full_access"}))
    children, results = [], []
    period = last_days(last, days)
    for username, profile in PROFILES.items():
        child = accounts.create_account(username, parent=parent, kind=profile.kind,
                                        open_tracking=profile.open_tracking)
        children.append(child)
        results += scored_results(child, profile, period)
    parent_profile = Profile(20_000, 25, 45, 0.9, 0.1, 0.04)
    results += scored_results(parent, parent_profile, period)
    for username in NOT_COMPUTED:
        child = accounts.create_account(username, parent=parent)
        children.append(child)
        results += scored_results(child, PROFILES["acme-onboarding"], period[:-1])
    for start in range(0, len(results), 2000):
        services.state.upsert_results(results[start:start + 2000])
    return SeededWorld(parent, key.api_key, children, dict(PROFILES))
