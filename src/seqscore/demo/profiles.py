"""Sending profiles: how a kind of real sender behaves, as data.

A ``SendingProfile`` describes one sender: how many messages a day and when,
who the audience is (size, mailbox-provider mix, how much of it reads through
Apple Mail Privacy Protection, how much of it is engaged), and ``Rates``: what
happens to its messages. ``Rates`` may move over the period (``Trend``), for a
sender that degrades or recovers.

Every rate is a percentage (``_pct``) of the quantity its docstring names, as
the scoring model would measure it, so the numbers below read like a
deliverability dashboard. The values are typical of real streams:

* healthy newsletter: ~30 % unique human opens, 0.02 % complaints, < 1 % bounces;
* purchased list: 11 % invalid-address bounces, low engagement;
* complaint-heavy promoter: 0.55 % complaints (Gmail and Yahoo ask for < 0.3 %);
* blocked at one provider: a third of Microsoft mail blocked, class Reputation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from seqscore.demo.audience import APPLE_HEAVY_MIX, B2B_MIX, CONSUMER_MIX, ProviderMix

__all__ = [
    "HEALTHY",
    "PROFILES",
    "SPECIAL_PROFILES",
    "Delay",
    "Rates",
    "SendingProfile",
    "Trend",
]

#: Monday .. Sunday volume weights.
WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0)
EVERY_DAY = (1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.7)


@dataclass(frozen=True, slots=True)
class Delay:
    """A log-normal delay: ``median_minutes`` and ``spread`` (sigma of its natural
    log), capped at ``max_days``. Spread 1.6 around a 2 h median puts ~6 % of the
    draws beyond a day and ~1 % beyond three days, as opens of newsletters do."""

    median_minutes: float
    spread: float
    max_days: float = 14.0

    @property
    def mu(self) -> float:
        """Natural log of the median, in seconds."""
        return math.log(self.median_minutes * 60.0)

    @property
    def max_seconds(self) -> int:
        return int(self.max_days * 86_400)


@dataclass(frozen=True, slots=True)
class Rates:
    """What happens to a sender's messages; every field a percentage.

    Denominators: ``*_bounce_pct``, ``block_pct``, ``other_bounce_pct`` and
    ``deferred_pct`` are of processed messages (``block_pct`` of those to the
    profile's ``block_provider`` only); ``complaint_pct``, ``human_open_pct``,
    ``click_pct`` and ``unsubscribe_pct`` are of delivered messages, as measured
    (unique human opens exclude Apple MPP opens; complaints only come from
    providers with a feedback loop, so those complain more often per message).
    """

    #: addresses that do not exist: bounce, ``Invalid Address``, 5.1.1
    invalid_bounce_pct: float = 0.4
    #: blocked at the profile's ``block_provider`` with its ``block_class``
    block_pct: float = 0.0
    #: blocked anywhere for ``Content`` or ``Reputation`` (spam traps, filters)
    content_block_pct: float = 0.03
    #: mailbox full, technical and unclassified failures (not scored)
    other_bounce_pct: float = 0.25
    #: deferred at least once before the final outcome (Yahoo and Microsoft more)
    deferred_pct: float = 2.0
    complaint_pct: float = 0.02
    human_open_pct: float = 30.0
    click_pct: float = 3.5
    unsubscribe_pct: float = 0.15

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{f.name} must be a percentage in 0..100, got {value}")

    def toward(self, other: Rates, fraction: float) -> Rates:
        """These rates moved ``fraction`` (0..1) of the way to ``other``, linearly."""
        if fraction <= 0.0:
            return self
        if fraction >= 1.0:
            return other
        return Rates(**{
            f.name: getattr(self, f.name) + (getattr(other, f.name) - getattr(self, f.name))
            * fraction for f in fields(self)
        })


@dataclass(frozen=True, slots=True)
class Trend:
    """Rates move linearly from the profile's own to ``to`` between ``start_pct``
    and ``end_pct`` of the generated period (0 = its first day, 100 = its last)."""

    to: Rates
    start_pct: float = 50.0
    end_pct: float = 75.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.start_pct <= self.end_pct <= 100.0:
            raise ValueError(f"need 0 <= start_pct <= end_pct <= 100: {self}")


@dataclass(frozen=True, slots=True)
class SendingProfile:
    """One kind of sender. Volumes are at ``volume_scale`` 1.

    ``daily_messages`` is the mean number of messages on a day of weekday weight
    1 (``weekday_weights``, Monday first); day-to-day volume varies log-normally
    by ``daily_spread``. A campaign sender (``send_hour_utc`` set) mails distinct
    recipients of its list in a burst of ``send_minutes`` from that hour; others
    send to recipients drawn at random, spread over the day like human activity.
    ``audience_size`` is the number of list addresses; ``engaged_pct`` of them
    read the sender's mail at all, and ``mpp_pct`` of them (at providers other
    than Apple; more at Apple's own domains) read through Apple Mail Privacy
    Protection, whose proxy fetches the tracking pixel of nearly every message:
    machine opens, and no human open is ever seen from them.
    """

    name: str
    description: str
    daily_messages: float
    audience_size: int
    weekday_weights: tuple[float, float, float, float, float, float, float] = EVERY_DAY
    daily_spread: float = 0.25
    send_hour_utc: int | None = None
    send_minutes: int = 40
    provider_mix: ProviderMix = CONSUMER_MIX
    engaged_pct: float = 55.0
    mpp_pct: float = 30.0
    open_tracking: bool = True
    rates: Rates = field(default_factory=Rates)
    trend: Trend | None = None
    #: provider whose filters block this sender (``block_pct``), and how
    block_provider: str | None = None
    block_class: str = "Reputation"
    #: time from delivery to a person's first read, and between repeat opens
    read_delay: Delay = Delay(120, 1.6)
    repeat_open_pct: float = 35.0
    #: time from delivery to a spam report
    complaint_delay: Delay = Delay(360, 1.3, max_days=10)
    #: ``category`` of each message: one is drawn per message; a tuple is sent as a list
    categories: tuple[str | tuple[str, ...], ...] = ("newsletter",)
    #: custom args SendGrid flattens into every event of the message
    custom_args: tuple[tuple[str, str], ...] = ()
    #: unsubscribes are ``group_unsubscribe`` of this ASM group when set
    asm_group_id: int | None = None
    links: tuple[str, ...] = ("https://www.shop.example/new", "https://www.shop.example/sale")

    def __post_init__(self) -> None:
        if self.daily_messages < 0 or self.audience_size < 1:
            raise ValueError(f"{self.name}: volumes must be positive")
        if self.send_hour_utc is not None and not 0 <= self.send_hour_utc <= 23:
            raise ValueError(f"{self.name}: send_hour_utc must be 0..23")
        if not (0 < self.engaged_pct <= 100 and 0 <= self.mpp_pct < 100):
            raise ValueError(f"{self.name}: engaged_pct must be in (0, 100], mpp_pct in [0, 100)")

    def rates_at(self, progress_pct: float) -> Rates:
        """The rates on a day ``progress_pct`` (0..100) of the way through the period."""
        trend = self.trend
        if trend is None or progress_pct <= trend.start_pct:
            return self.rates
        if progress_pct >= trend.end_pct:
            return trend.to
        span = trend.end_pct - trend.start_pct
        return self.rates.toward(trend.to, (progress_pct - trend.start_pct) / span)

    def scaled(self, volume_scale: float) -> SendingProfile:
        """This profile with daily volume and list size multiplied by ``volume_scale``."""
        return replace(self, daily_messages=self.daily_messages * volume_scale,
                       audience_size=max(50, round(self.audience_size * volume_scale)))


# A sender whose practice has gone wrong: stale or bought addresses, no sunset policy.
_NEGLECTED = Rates(invalid_bounce_pct=6.0, block_pct=15.0, content_block_pct=0.3,
                   other_bounce_pct=0.8, deferred_pct=6.0, complaint_pct=0.35,
                   human_open_pct=9.0, click_pct=0.8, unsubscribe_pct=0.6)

HEALTHY = SendingProfile(
    name="healthy_newsletter",
    description="Confirmed opt-in newsletter, twice a week to a third of its list each time.",
    daily_messages=800, audience_size=2_400,
    weekday_weights=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0), send_hour_utc=14,
    categories=(("newsletter", "weekly"),), asm_group_id=1201,
    links=("https://news.brand.example/issue", "https://news.brand.example/article",
           "https://www.brand.example/offers"),
)

TRANSACTIONAL = SendingProfile(
    name="transactional",
    description="Receipts, password resets and shipping notices: opened fast, rarely reported.",
    daily_messages=120, audience_size=4_000, provider_mix=B2B_MIX, engaged_pct=85.0,
    rates=Rates(invalid_bounce_pct=0.8, content_block_pct=0.01, other_bounce_pct=0.2,
                deferred_pct=1.5, complaint_pct=0.005, human_open_pct=45.0, click_pct=12.0,
                unsubscribe_pct=0.01),
    read_delay=Delay(6, 1.8), repeat_open_pct=25.0,
    categories=("receipt", "password_reset", "shipping", ("account", "security")),
    custom_args=(("app", "storefront"), ("env", "production")),
    links=("https://app.store.example/orders", "https://app.store.example/reset",
           "https://track.parcel.example/status"),
)

PURCHASED_LIST = SendingProfile(
    name="purchased_list",
    description="Mails a bought list: many addresses do not exist, few people know the sender.",
    daily_messages=260, audience_size=3_500, weekday_weights=WEEKDAYS, send_hour_utc=9,
    engaged_pct=15.0,
    rates=Rates(invalid_bounce_pct=11.0, content_block_pct=0.4, other_bounce_pct=1.2,
                deferred_pct=6.0, complaint_pct=0.15, human_open_pct=7.0, click_pct=0.6,
                unsubscribe_pct=0.6),
    categories=("prospecting",), links=("https://leads.vendor.example/demo",),
)

COMPLAINT_HEAVY = SendingProfile(
    name="complaint_heavy",
    description="Daily promotions to people who forgot signing up: 0.55 % complaints.",
    daily_messages=650, audience_size=1_800,
    weekday_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0), send_hour_utc=17, engaged_pct=30.0,
    rates=Rates(invalid_bounce_pct=1.5, content_block_pct=0.15, other_bounce_pct=0.5,
                deferred_pct=8.0, complaint_pct=0.55, human_open_pct=12.0, click_pct=1.2,
                unsubscribe_pct=0.8),
    categories=(("promo", "daily-deal"),), asm_group_id=3301,
    links=("https://deals.promo.example/today", "https://deals.promo.example/flash"),
)

BLOCKED_AT_MICROSOFT = SendingProfile(
    name="blocked_at_microsoft",
    description="Listed by Microsoft: a third of Outlook/Hotmail mail blocked (S3150).",
    daily_messages=220, audience_size=2_500, weekday_weights=WEEKDAYS, send_hour_utc=12,
    rates=Rates(block_pct=35.0, complaint_pct=0.06, human_open_pct=20.0, click_pct=2.0,
                deferred_pct=4.0),
    block_provider="microsoft", block_class="Reputation",
    categories=("updates",),
)

APPLE_MPP = SendingProfile(
    name="apple_mpp_audience",
    description="An iPhone-heavy audience: most opens are Apple MPP prefetches (machine).",
    daily_messages=600, audience_size=650,
    weekday_weights=(0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0), send_hour_utc=15,
    provider_mix=APPLE_HEAVY_MIX, mpp_pct=65.0, engaged_pct=60.0,
    rates=Rates(human_open_pct=10.0, click_pct=2.5),
    categories=(("lifestyle", "magazine"),),
)

LOW_VOLUME = SendingProfile(
    name="low_volume",
    description="A small club's mail: a dozen messages a weekday, never enough to be scored.",
    daily_messages=12, audience_size=300, weekday_weights=WEEKDAYS,
    categories=("club",),
)

OPEN_TRACKING_OFF = replace(
    TRANSACTIONAL, name="open_tracking_off",
    description="Transactional mail with open tracking disabled: clicks only, no opens.",
    open_tracking=False, custom_args=(("service", "billing"),),
)

DEGRADING = replace(
    HEALTHY, name="degrading",
    description="A healthy newsletter that starts mailing old and bought addresses mid-period.",
    trend=Trend(_NEGLECTED), block_provider="microsoft",
)

RECOVERING = replace(
    HEALTHY, name="recovering",
    description="A neglected list cleaned mid-period: confirmed opt-in and a sunset policy.",
    rates=_NEGLECTED, trend=Trend(HEALTHY.rates), block_provider="microsoft",
)

#: The profiles with a story, in the order the default plan gives them accounts.
SPECIAL_PROFILES: tuple[SendingProfile, ...] = (
    HEALTHY, TRANSACTIONAL, PURCHASED_LIST, COMPLAINT_HEAVY, BLOCKED_AT_MICROSOFT, APPLE_MPP,
    LOW_VOLUME, OPEN_TRACKING_OFF, DEGRADING, RECOVERING,
)

#: Every profile by name.
PROFILES: dict[str, SendingProfile] = {p.name: p for p in SPECIAL_PROFILES}
