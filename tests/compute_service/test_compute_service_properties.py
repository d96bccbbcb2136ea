"""Properties of the whole computation, events to results (aggregation and scoring):
scores and metric scores stay in 1..5; duplicates, arrival order and the way a stream
is cut into appended batches never change any result (score, metrics, counts, rates,
explanation).

Each example stores its stream several times, each variant as an account of its own
in one DuckDB event store, and computes all of them in one pass: every result of a
variant must equal the base account's. A small model (``min_messages`` 3) makes
small streams eligible, so that scores are really produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqscore.ingest.webhook import EventParser
from seqscore.scoring import DEFAULT_MODEL, apply_overrides
from seqscore.service.results import compute_results
from seqscore.storage.duckdb_events import DuckDBEventStore
from seqscore.types import Account, AccountKind, DayResult

MODEL = apply_overrides(DEFAULT_MODEL, {"version": "small", "min_messages": 3,
                                        "min_denominator": 2, "top_providers": 2})
D = dt.date(2026, 6, 30)
DAYS = [D - dt.timedelta(days=3), D]
EPOCH_D = int(dt.datetime.combine(D, dt.time(), dt.UTC).timestamp())
NOW = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
PARSER = EventParser(b"property-tests-recipient-key-32b")
_account_ids = itertools.count(1)

KINDS = ["processed", "processed", "delivered", "delivered", "open", "click", "bounce",
         "spamreport", "deferred"]
DOMAINS = ["gmail.com", "yahoo.com", "example.org"]
CLASSES = ["Invalid Address", "Reputation", "Content", "Technical", None]


@st.composite
def webhook_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A small stream: up to 40 events over the 40 days ending with D, few recipients
    and messages so that distinct counts and windows overlap."""
    n = draw(st.integers(min_value=1, max_value=40))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        event: dict[str, Any] = {
            "email": f"r{draw(st.integers(0, 5))}@{draw(st.sampled_from(DOMAINS))}",
            "timestamp": EPOCH_D + 86_399 - draw(st.integers(0, 40 * 86_400 - 1)),
            "event": kind, "sg_event_id": f"ev{i}",
            "sg_message_id": f"msg{draw(st.integers(0, 5))}.0",
        }
        if kind == "open":
            event["sg_machine_open"] = draw(st.booleans())
        if kind == "bounce":
            event["type"] = draw(st.sampled_from(["bounce", "blocked"]))
            bounce_class = draw(st.sampled_from(CLASSES))
            if bounce_class is not None:
                event["bounce_classification"] = bounce_class
            else:
                event["status"] = draw(st.sampled_from(["5.1.1", "4.2.0"]))
        out.append(event)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path_factory.mktemp("props") / "events.duckdb", threads=1)
    yield opened
    opened.close()


def _account() -> Account:
    user_id = next(_account_ids)
    return Account(user_id, f"acct{user_id}", "", None, AccountKind.SUBUSER, True, False, NOW)


def _append(store: DuckDBEventStore, account: Account, events: list[dict[str, Any]],
            at: dt.datetime = NOW) -> None:
    if events:
        parsed = PARSER.parse(json.dumps(events).encode(), account_id=account.user_id,
                              ingested_at=at)
        assert not parsed.rejects
        store.append(parsed.table)


def _results(store: DuckDBEventStore, accounts: list[Account]) -> list[list[DayResult]]:
    """Each account's results, oldest day first, with account ids blanked out."""
    results = compute_results(store, MODEL, accounts, DAYS, computed_at=NOW)
    for r in results:
        assert r.score is None or 1 <= r.score <= 5, r
        assert r.metrics is None or all(1 <= s <= 5 for s in r.metrics.values()), r
        assert (r.score is None) == (r.metrics is None) == (r.eligibility != "eligible"), r
    return [sorted((dataclasses.replace(r, account_id=0) for r in results
                    if r.account_id == a.user_id), key=lambda r: r.day) for a in accounts]


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(events=webhook_events(), data=st.data())
def test_results_ignore_duplicates_arrival_order_and_batches(
        store: DuckDBEventStore, events: list[dict[str, Any]], data: st.DataObject) -> None:
    """Scores stay in 1..5 (``_results``) and every variant gives the base's results."""
    base, repeated, shuffled, cut = _account(), _account(), _account(), _account()
    _append(store, base, events)
    # copies: some inside the batch, some posted again later in a batch of their own
    copies = data.draw(st.lists(st.sampled_from(events), max_size=10), label="copies")
    retried = data.draw(st.lists(st.sampled_from(events), max_size=10), label="retried")
    _append(store, repeated, events + copies)
    _append(store, repeated, retried, NOW + dt.timedelta(hours=5))
    _append(store, shuffled, data.draw(st.permutations(events), label="arrival order"))
    # the same stream in other append calls, arriving at other times
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(events) - 1, 1)), max_size=5),
                            label="cuts"))
    for start, end in itertools.pairwise([0, *cuts, len(events)]):
        _append(store, cut, events[start:end],
                NOW + dt.timedelta(minutes=data.draw(st.integers(0, 600), label="arrival")))

    want, with_copies, reordered, rebatched = _results(store, [base, repeated, shuffled, cut])
    assert len(want) == len(DAYS)
    assert with_copies == want, "duplicates changed a result"
    assert reordered == want, "arrival order changed a result"
    assert rebatched == want, f"cutting the stream at {cuts} changed a result"
