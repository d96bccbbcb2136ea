"""The counted facts' de-duplication: copies found through a hash of the event id,
then grouped exactly (seqscore.compute.facts.counted_facts)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import ibis
from test_compute_aggregate import DAY, D, ev, events_table, random_rows

from seqscore.compute.facts import COUNTED_KINDS, counted_facts, repeated_counted_keys

EPOCH = dt.date(1970, 1, 1)


def counted(rows: list[dict[str, Any]], hashed: str | None = None) -> Counter[tuple[Any, ...]]:
    """``counted_facts`` of ``rows``: by event id (``hashed=None``), or through the shared
    hash keys, with the real hash (``"hash"``) or one that collides for every pair of
    ids of the same length (``"length"``)."""
    con = ibis.duckdb.connect()
    con.con.register("seqscore_rows", events_table(rows))
    con.con.execute("CREATE TABLE events AS SELECT * FROM seqscore_rows")
    events = con.table("events")
    options = {"id_hash": lambda event_id: event_id.length()} if hashed == "length" else {}
    repeated = None if hashed is None else repeated_counted_keys(events, **options)
    out = counted_facts(events, repeated, **options).to_pyarrow().to_pylist()
    return Counter({(r["account_id"], r["provider"], r["dn"]): tuple(r[k] for k in COUNTED_KINDS)
                    for r in out})


def reference(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """Per (account, provider, day): each (account, event_id, day) once, with the least
    kind and provider of its copies."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["account_id"], r["event_id"], r["day"]), []).append(r)
    sums: dict[tuple[Any, ...], list[int]] = {}
    for (account, _, day), copies in groups.items():
        kinds = [k for k in (_kind(c) for c in copies) if k is not None]
        if not kinds:
            continue
        providers = [c["provider"] for c in copies if _kind(c) is not None]
        provider = min((p for p in providers if p is not None), default=None)
        key = (account, provider, (day - EPOCH).days)
        sums.setdefault(key, [0] * len(COUNTED_KINDS))[min(kinds)] += 1
    return Counter({k: tuple(v) for k, v in sums.items()})


def _kind(r: dict[str, Any]) -> int | None:
    kinds = list(COUNTED_KINDS)
    if r["event"] == "processed":
        return kinds.index("processed")
    if r["event"] == "delivered":
        return kinds.index("delivered")
    if r["event"] == "spamreport":
        return kinds.index("spam")
    if r["event"] != "bounce":
        return None
    if r["bounce_type"] in ("bounce", None) and (
            r["bounce_class"] == "Invalid Address"
            or (r["bounce_class"] is None and (r["status"] or "").startswith("5.1."))):
        return kinds.index("invalid")
    if r["bounce_type"] in ("bounce", "blocked", None) and r["bounce_class"] in (
            "Reputation", "Content"):
        return kinds.index("block")
    return None


def test_copies_count_once_and_distinct_events_never_merge() -> None:
    rng = random.Random(7)
    rows = random_rows(rng, 400, span_days=5)
    copies = [dict(r) for r in rng.sample(rows, 120)]
    for c in copies[:40]:  # copies that disagree: the least provider and kind are kept
        c["provider"] = rng.choice(["aaa", "zzz", None])
        c["event"] = rng.choice(["processed", "delivered"])
    all_rows = rows + copies + [dict(r) for r in copies[:30]]
    expected = reference(all_rows)
    assert sum(sum(v) for v in expected.values()) < sum(_kind(r) is not None for r in all_rows)
    assert counted(all_rows) == expected
    assert counted(all_rows, hashed="hash") == expected
    # with a hash under which many ids collide, the same counts
    assert counted(all_rows, hashed="length") == expected


def test_events_sharing_a_hash_key_stay_apart() -> None:
    """Two events of one account and day whose ids share a hash are still two events;
    their copies still one each."""
    rows = [ev("delivered", D, event_id="x1"), ev("delivered", D, event_id="x2"),
            ev("delivered", D, event_id="x2"), ev("processed", D - DAY, event_id="x1")]
    expected = reference(rows)
    assert sum(v[COUNTED_KINDS.index("delivered")] for v in expected.values()) == 2
    assert counted(rows, hashed="length") == expected == counted(rows, hashed="hash")
