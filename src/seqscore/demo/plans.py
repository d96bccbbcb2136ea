"""Account plans: which demo accounts exist and how each one sends.

``default_plans`` gives a parent account, its subusers and a few ``customer``
accounts: one account per special profile (``SPECIAL_PROFILES``) and the rest
healthy newsletters and transactional senders whose volumes and rates vary a
little, by seed. The list is what a demo command creates (accounts, then keys)
before it feeds the events of ``generate``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from seqscore.demo.profiles import HEALTHY, SPECIAL_PROFILES, TRANSACTIONAL, SendingProfile
from seqscore.types import AccountKind

__all__ = ["DEFAULT_ACCOUNTS", "DEFAULT_PARENT", "AccountPlan", "default_plans"]

DEFAULT_ACCOUNTS = 40
DEFAULT_CUSTOMERS = 4
DEFAULT_PARENT = "demo-parent"


@dataclass(frozen=True, slots=True)
class AccountPlan:
    """One demo account.

    ``parent`` is the parent's username, ``None`` for the top-level account
    (whose ``kind`` is then meaningless, as for ``seqscore.types.Account``).
    ``open_tracking`` is the account's setting: with it off, SendGrid posts no
    ``open`` events at all. ``seed`` and the username seed the account's own
    random stream, so an account's events do not depend on which other accounts
    are generated with it. ``volume_scale`` multiplies the profile's daily
    volume and list size.
    """

    username: str
    kind: AccountKind
    parent: str | None
    open_tracking: bool
    profile: SendingProfile
    seed: int = 0
    volume_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.volume_scale <= 0:
            raise ValueError(f"{self.username}: volume_scale must be positive")

    @property
    def email(self) -> str:
        """The account's contact address (synthetic)."""
        return f"{self.username}@accounts.demo.test"


def _varied(profile: SendingProfile, rng: random.Random, name: str) -> SendingProfile:
    """A sibling of ``profile``: same kind of sender, its own list and habits.

    Open and click rates move by up to 15 % and 30 %, the small bad rates by up
    to 50 % either way: a healthy newsletter stays healthy (opens 25..35 %,
    complaints < 0.05 %, bounces < 1 %).
    """
    r = profile.rates

    def jitter(value: float, spread: float) -> float:
        return value * rng.uniform(1 - spread, 1 + spread)

    rates = replace(
        r, invalid_bounce_pct=jitter(r.invalid_bounce_pct, 0.5),
        content_block_pct=jitter(r.content_block_pct, 0.5),
        other_bounce_pct=jitter(r.other_bounce_pct, 0.5),
        deferred_pct=jitter(r.deferred_pct, 0.5), complaint_pct=jitter(r.complaint_pct, 0.5),
        human_open_pct=jitter(r.human_open_pct, 0.15), click_pct=jitter(r.click_pct, 0.3),
        unsubscribe_pct=jitter(r.unsubscribe_pct, 0.5),
    )
    changes: dict[str, object] = {"name": name, "rates": rates,
                                  "mpp_pct": jitter(profile.mpp_pct, 0.2)}
    if profile.send_hour_utc is not None:
        days = rng.sample(range(5), rng.choice((1, 2, 2, 3)))
        changes["weekday_weights"] = tuple(1.0 if d in days else 0.0 for d in range(7))
        changes["send_hour_utc"] = rng.randrange(7, 20)
        changes["daily_messages"] = profile.daily_messages * 2 / len(days)
    return replace(profile, **changes)  # type: ignore[arg-type]


def default_plans(seed: int = 0, *, accounts: int = DEFAULT_ACCOUNTS,
                  customers: int = DEFAULT_CUSTOMERS, volume_scale: float = 1.0,
                  parent: str = DEFAULT_PARENT) -> list[AccountPlan]:
    """The demo's accounts, parent first; deterministic by ``seed``.

    ``accounts`` counts every account (parent included, at least 1). After the
    parent come one subuser per special profile (as many as fit), then fill
    accounts (about 60 % newsletters, 40 % transactional), of which the last
    ``customers`` are ``customer`` accounts. ``volume_scale`` multiplies every
    account's volume; fill accounts also vary by a factor 0.4..1.6 among
    themselves.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if customers < 0 or volume_scale <= 0:
        raise ValueError("customers must be >= 0 and volume_scale positive")
    rng = random.Random(f"{seed}/plans")
    plans = [AccountPlan(parent, AccountKind.SUBUSER, None, True,
                         _varied(TRANSACTIONAL, rng, "transactional"), seed, volume_scale)]
    for profile in SPECIAL_PROFILES[: accounts - 1]:
        plans.append(AccountPlan(profile.name.replace("_", "-"), AccountKind.SUBUSER, parent,
                                 profile.open_tracking, profile, seed, volume_scale))
    fill = accounts - len(plans)
    first_customer = fill - min(customers, fill)
    counters = {"newsletter": 0, "transactional": 0, "customer": 0}
    for i in range(fill):
        base = HEALTHY if rng.random() < 0.6 else TRANSACTIONAL
        kind = AccountKind.CUSTOMER if i >= first_customer else AccountKind.SUBUSER
        label = ("customer" if kind is AccountKind.CUSTOMER
                 else "newsletter" if base is HEALTHY else "transactional")
        counters[label] += 1
        scale = volume_scale * rng.uniform(0.4, 1.6)
        plans.append(AccountPlan(f"{label}-{counters[label]:02d}", kind, parent,
                                 base.open_tracking, _varied(base, rng, base.name), seed, scale))
    return plans
