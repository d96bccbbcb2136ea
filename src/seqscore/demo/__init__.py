"""Demo data: realistic SendGrid Event Webhook streams of a parent and its accounts.

Modules, bottom up:

* ``audience``: synthetic addresses on a mailbox-provider mix;
* ``profiles``: sending profiles as data (``SendingProfile``, ``Rates``, ``Trend``);
* ``plans``: the demo's accounts (``AccountPlan``, ``default_plans``);
* ``payloads``: SendGrid's ids, SMTP responses, bounce reasons, user agents;
* ``mail``: one account's messages, day by day, to events;
* ``webhook``: arrival lag, duplicates, late events and batch limits;
* ``generate``: the public entry points, ``generate``, ``posts`` and ``write_jsonl``.

Deterministic by seed, pure standard library plus msgspec for JSON, and no
clock: the caller passes ``today`` or ``end_day``.
"""

from seqscore.demo.generate import (
    DEFAULT_DAYS,
    Batch,
    JsonlFile,
    Period,
    Post,
    generate,
    merged_posts,
    period,
    posts,
    write_jsonl,
)
from seqscore.demo.plans import AccountPlan, default_plans
from seqscore.demo.profiles import PROFILES, SPECIAL_PROFILES, Delay, Rates, SendingProfile, Trend
from seqscore.demo.webhook import (
    DEFAULT_QUIRKS,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    NO_QUIRKS,
    Quirks,
    batch_body,
)

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_QUIRKS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "NO_QUIRKS",
    "PROFILES",
    "SPECIAL_PROFILES",
    "AccountPlan",
    "Batch",
    "Delay",
    "JsonlFile",
    "Period",
    "Post",
    "Quirks",
    "Rates",
    "SendingProfile",
    "Trend",
    "batch_body",
    "default_plans",
    "generate",
    "merged_posts",
    "period",
    "posts",
    "write_jsonl",
]
