"""Audiences: synthetic recipient addresses on a realistic mailbox-provider mix.

Addresses are made up (``u123456@gmail.com``, ``j.472911@initech-labs.test``):
they never name real people. Providers are grouped as in spec/events.md (gmail,
microsoft, yahoo, apple), plus consumer ISPs and corporate domains, whose
domains are each their own provider. Corporate domains are synthetic ``.test``
names.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

__all__ = [
    "APPLE_HEAVY_MIX",
    "B2B_MIX",
    "CONSUMER_MIX",
    "FEEDBACK_LOOP_DOMAINS",
    "Audience",
    "ProviderMix",
    "address_pool",
]

#: (group, percent of recipients) pairs; groups are keys of ``DOMAINS``.
ProviderMix = tuple[tuple[str, float], ...]

#: A typical consumer list: Gmail ~40 %, Microsoft ~20 %, Yahoo/AOL ~12 %, Apple ~8 %.
CONSUMER_MIX: ProviderMix = (
    ("gmail", 40.0), ("microsoft", 20.0), ("yahoo", 12.0), ("apple", 8.0), ("isp", 12.0),
    ("corporate", 8.0),
)
#: Business recipients: many company domains.
B2B_MIX: ProviderMix = (
    ("gmail", 28.0), ("microsoft", 16.0), ("yahoo", 6.0), ("apple", 4.0), ("isp", 6.0),
    ("corporate", 40.0),
)
#: An iPhone-heavy audience.
APPLE_HEAVY_MIX: ProviderMix = (
    ("gmail", 32.0), ("microsoft", 14.0), ("yahoo", 8.0), ("apple", 30.0), ("isp", 10.0),
    ("corporate", 6.0),
)

_CORPORATE_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "vandelay", "contoso",
                    "northwind", "tailspin", "fabrikam", "wingtip", "litware", "soylent",
                    "cyberdyne", "tyrell", "nakatomi", "oceanic", "wonka")
_CORPORATE_SUFFIXES = ("corp", "labs", "group", "systems", "partners")

#: group -> ((domain, weight), ...)
DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "gmail": (("gmail.com", 98.0), ("googlemail.com", 2.0)),
    "microsoft": (("outlook.com", 40.0), ("hotmail.com", 35.0), ("live.com", 12.0),
                  ("msn.com", 5.0), ("hotmail.co.uk", 4.0), ("outlook.fr", 2.0),
                  ("hotmail.fr", 2.0)),
    "yahoo": (("yahoo.com", 50.0), ("aol.com", 30.0), ("ymail.com", 6.0), ("yahoo.co.uk", 6.0),
              ("yahoo.fr", 4.0), ("rocketmail.com", 2.0), ("aim.com", 2.0)),
    "apple": (("icloud.com", 80.0), ("me.com", 14.0), ("mac.com", 6.0)),
    "isp": (("comcast.net", 20.0), ("att.net", 12.0), ("verizon.net", 8.0), ("cox.net", 6.0),
            ("charter.net", 5.0), ("sbcglobal.net", 6.0), ("gmx.de", 8.0), ("web.de", 8.0),
            ("orange.fr", 7.0), ("btinternet.com", 6.0), ("t-online.de", 7.0),
            ("shaw.ca", 7.0)),
    # Zipf-like: a few large companies, a long tail of small ones.
    "corporate": tuple(
        (f"{name}-{suffix}.test", 1.0 / rank)
        for rank, (name, suffix) in enumerate(
            itertools.product(_CORPORATE_NAMES, _CORPORATE_SUFFIXES), start=1)
        if rank <= 60
    ),
}

#: Domains whose mailbox provider sends SendGrid spam reports (feedback loops).
#: Gmail and Apple send none, so complaints there never reach the event stream.
FEEDBACK_LOOP_DOMAINS: frozenset[str] = frozenset(
    {d for d, _ in DOMAINS["microsoft"]} | {d for d, _ in DOMAINS["yahoo"]}
    | {"comcast.net", "cox.net", "gmx.de", "web.de"}
)
#: Share of Apple-domain recipients behind MPP, added to the profile's ``mpp_pct``.
APPLE_DOMAIN_EXTRA_MPP_PCT = 25.0
APPLE_DOMAIN_MAX_MPP_PCT = 92.0

_LOCAL_FORMS = ("u{n}", "{c}.{n}", "user{n}", "{c}{c2}{n}")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    return list(itertools.accumulate(weights))


class _DomainPicker:
    """Draws (group, domain) by a provider mix: two weighted draws, no per-call setup."""

    def __init__(self, mix: ProviderMix) -> None:
        self.groups = [g for g, _ in mix]
        self.group_cum = _cumulative(tuple(w for _, w in mix))
        self.domains = {g: [d for d, _ in DOMAINS[g]] for g in self.groups}
        self.domain_cum = {g: _cumulative(tuple(w for _, w in DOMAINS[g])) for g in self.groups}

    def draw(self, rng: random.Random, k: int) -> list[tuple[str, str]]:
        groups = rng.choices(self.groups, cum_weights=self.group_cum, k=k)
        return [(g, rng.choices(self.domains[g], cum_weights=self.domain_cum[g])[0])
                for g in groups]


def _local_part(rng: random.Random) -> str:
    form = _LOCAL_FORMS[rng.randrange(len(_LOCAL_FORMS))]
    return form.format(n=rng.randrange(100_000, 10_000_000), c=rng.choice(_LETTERS),
                       c2=rng.choice(_LETTERS))


def address_pool(rng: random.Random, mix: ProviderMix, k: int) -> list[tuple[str, str, str]]:
    """``k`` distinct synthetic addresses as (address, group, domain)."""
    picker = _DomainPicker(mix)
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    while len(out) < k:
        for group, domain in picker.draw(rng, k - len(out)):
            address = f"{_local_part(rng)}@{domain}"
            if address not in seen:
                seen.add(address)
                out.append((address, group, domain))
    return out


@dataclass(slots=True)
class Audience:
    """One account's list, as parallel per-recipient arrays (fast to index).

    ``mpp[i]``: recipient i reads through Apple MPP; ``engaged[i]``: reads this
    sender's mail at all; ``feedback_loop[i]``: its provider reports complaints.
    ``mpp_share`` and ``feedback_loop_share`` are fractions (0..1) of the list.
    """

    addresses: list[str]
    groups: list[str]
    domains: list[str]
    mpp: list[bool]
    engaged: list[bool]
    feedback_loop: list[bool]
    mpp_share: float
    feedback_loop_share: float
    picker: _DomainPicker

    @classmethod
    def build(cls, rng: random.Random, mix: ProviderMix, size: int, *, mpp_pct: float,
              engaged_pct: float) -> Audience:
        """A list of ``size`` recipients on ``mix``; ``mpp_pct`` of the recipients at
        non-Apple providers read through MPP, ``APPLE_DOMAIN_EXTRA_MPP_PCT`` more at
        Apple's own domains; ``engaged_pct`` of all recipients are engaged."""
        pool = address_pool(rng, mix, size)
        apple_mpp = min(APPLE_DOMAIN_MAX_MPP_PCT, mpp_pct + APPLE_DOMAIN_EXTRA_MPP_PCT) / 100
        other_mpp = mpp_pct / 100
        random_ = rng.random
        mpp = [random_() < (apple_mpp if g == "apple" else other_mpp) for _, g, _ in pool]
        engaged = [random_() * 100 < engaged_pct for _ in pool]
        fbl = [d in FEEDBACK_LOOP_DOMAINS for _, _, d in pool]
        return cls(
            addresses=[a for a, _, _ in pool], groups=[g for _, g, _ in pool],
            domains=[d for _, _, d in pool], mpp=mpp, engaged=engaged, feedback_loop=fbl,
            mpp_share=sum(mpp) / size, feedback_loop_share=max(sum(fbl) / size, 1e-9),
            picker=_DomainPicker(mix),
        )

    def __len__(self) -> int:
        return len(self.addresses)

    def renew(self, rng: random.Random, i: int) -> None:
        """Give slot ``i`` to a new subscriber at the same domain (list churn: the
        sender removed an address and someone else signed up); the slot keeps its
        habits, so the list's make-up stays what the profile says."""
        self.addresses[i] = f"{_local_part(rng)}@{self.domains[i]}"

    def stranger(self, rng: random.Random) -> tuple[str, str, str]:
        """An address outside the list (a typo, a bought or abandoned address):
        (address, group, domain) on the list's provider mix."""
        [(group, domain)] = self.picker.draw(rng, 1)
        return f"x{rng.randrange(10**6, 10**8)}@{domain}", group, domain
