"""The window aggregation on a real DuckDB file, against hand-counted expectations and
a naive reference counter written straight from spec/scoring-model.md."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqscore.compute import (
    PROVIDER_COUNT_COLUMNS,
    WindowSpec,
    compute_window_counts,
    provider_counts_expr,
)
from seqscore.event_schema import EVENT_SCHEMA
from seqscore.types import ProviderCounts, WindowCounts

D = dt.date(2026, 6, 30)
DAY = dt.timedelta(days=1)
UTC = dt.UTC
_ids = itertools.count()


def ev(event: str, when: dt.date | dt.datetime = D, *, account: int = 1,
       event_id: str | None = None, message: str | None = "m", recipient: str | None = "r",
       provider: str | None = "gmail", machine: bool = False, bounce_type: str | None = None,
       bounce_class: str | None = None, status: str | None = None) -> dict[str, Any]:
    """One normalised event row; a bare date means noon UTC of that day."""
    ts = when if isinstance(when, dt.datetime) else dt.datetime.combine(when, dt.time(12), UTC)
    return {
        "account_id": account, "event_id": event_id or f"e{next(_ids)}",
        "message_id": message, "event": event, "ts": ts, "day": ts.date(),
        "recipient": recipient, "domain": provider, "provider": provider,
        "bounce_type": bounce_type, "bounce_class": bounce_class, "status": status,
        "machine_open": machine, "ingested_at": ts, "raw": None,
    }


def events_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


class Store:
    """A DuckDB event file on disk, read through Ibis with a memory limit, computed
    with one of the aggregation's strategies."""

    def __init__(self, path: Path, strategy: str = "auto") -> None:
        self.strategy = strategy
        # DuckDB takes its settings (memory_limit, threads) as connect() keywords.
        self.con = ibis.duckdb.connect(str(path), memory_limit="512MB", threads=2)

    def load(self, rows: list[dict[str, Any]]) -> None:
        raw = self.con.con  # the duckdb connection under ibis
        raw.register("batch", events_table(rows))
        raw.execute("CREATE OR REPLACE TABLE events AS SELECT * FROM batch")
        raw.unregister("batch")

    def counts(self, rows: list[dict[str, Any]], days: Any = None,
               **kwargs: Any) -> list[WindowCounts]:
        self.load(rows)
        kwargs.setdefault("strategy", self.strategy)
        return compute_window_counts(self.con, [D] if days is None else days, **kwargs)

    def one(self, rows: list[dict[str, Any]], **kwargs: Any) -> WindowCounts:
        [result] = self.counts(rows, accounts=[1], **kwargs)
        return result


STRATEGIES = ["expand", "timeline"]


@pytest.fixture(params=STRATEGIES)
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """Every behaviour is checked on both strategies: they must agree."""
    opened = Store(tmp_path / "events.duckdb", request.param)
    yield opened
    opened.con.disconnect()


def at(day: dt.date, hh: int, mm: int, ss: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm, ss), UTC)


def test_window_includes_first_second_of_first_day_and_last_second_of_day(store: Store) -> None:
    rows = [
        ev("processed", at(D - 6 * DAY, 0, 0, 0)), ev("processed", at(D - 7 * DAY, 23, 59, 59)),
        ev("processed", at(D - 29 * DAY, 0, 0, 0)), ev("processed", at(D - 30 * DAY, 23, 59, 59)),
        ev("processed", at(D, 23, 59, 59)), ev("processed", at(D + DAY, 0, 0, 0)),
    ]
    counts = store.one(rows)
    assert (counts.processed_short, counts.processed_long) == (2, 4)


def test_opens_count_distinct_human_messages_with_an_id(store: Store) -> None:
    rows = [
        ev("open", message="a"), ev("open", D - DAY, message="a"), ev("open", message="a"),
        ev("open", message="b", machine=True),
        ev("open", message=None, recipient="no-id"),
        ev("open", D - 30 * DAY, message="old"),
    ]
    counts = store.one(rows)
    assert counts.opened_long == 1
    # an open without sg_message_id still makes its recipient engaged (spec: engaged_recipients)
    assert counts.engaged_recipients_long == 2


def test_machine_opens_do_not_engage(store: Store) -> None:
    counts = store.one([ev("open", machine=True), ev("processed")])
    assert (counts.opened_long, counts.engaged_recipients_long, counts.sent_engaged_recipients) \
        == (0, 0, 0)


def test_duplicate_event_ids_count_once_per_account(store: Store) -> None:
    first = ev("processed", event_id="same")
    again = {**first, "ingested_at": first["ingested_at"] + dt.timedelta(hours=3)}
    other_account = ev("processed", event_id="same", account=2)
    [one, two] = store.counts([first, again, again, other_account], accounts=[1, 2])
    assert (one.processed_long, two.processed_long) == (1, 1)


@pytest.mark.parametrize(
    ("bounce_type", "bounce_class", "status", "invalid", "block"),
    [
        ("bounce", "Invalid Address", None, 1, 0),
        (None, "Invalid Address", "4.0.0", 1, 0),
        ("blocked", "Invalid Address", "5.1.1", 0, 0),
        ("bounce", None, "5.1.1", 1, 0),
        (None, None, "5.1.10", 1, 0),
        ("bounce", None, "5.7.1", 0, 0),
        ("bounce", None, None, 0, 0),
        ("bounce", "Technical", "5.1.1", 0, 0),
        ("bounce", "Reputation", None, 0, 1),
        ("blocked", "Reputation", None, 0, 1),
        ("blocked", "Content", "5.1.1", 0, 1),
        ("bounce", "Content", None, 0, 1),
        ("blocked", "Mailbox Unavailable", None, 0, 0),
    ],
)
def test_bounce_classification(store: Store, bounce_type: str | None, bounce_class: str | None,
                               status: str | None, invalid: int, block: int) -> None:
    row = ev("bounce", bounce_type=bounce_type, bounce_class=bounce_class, status=status)
    counts = store.one([row])
    assert (counts.invalid_bounces_short, counts.invalid_bounces_long) == (invalid, invalid)
    assert (counts.block_bounces_short, counts.block_bounces_long) == (block, block)


def test_spam_reports_in_short_and_long_windows(store: Store) -> None:
    counts = store.one([ev("spamreport"), ev("spamreport", D - 10 * DAY), ev("unsubscribe")])
    assert (counts.spam_reports_short, counts.spam_reports_long) == (1, 2)


@pytest.mark.parametrize(
    ("sent_days_ago", "engaged_days_ago", "expected"),
    [
        (0, 0, 1), (0, 60, 1), (0, 89, 1), (0, 90, 0), (0, 91, 0),
        (29, 89, 1), (30, 0, 0), (5, -1, 0),
    ],
)
def test_sent_engaged_recipients_intersect_windows(store: Store, sent_days_ago: int,
                                                   engaged_days_ago: int, expected: int) -> None:
    rows = [ev("processed", D - sent_days_ago * DAY),
            ev("click", D - engaged_days_ago * DAY)]
    counts = store.one(rows)
    assert counts.sent_engaged_recipients == expected
    assert counts.sent_recipients_long == (1 if sent_days_ago < 30 else 0)


def test_recipients_are_distinct(store: Store) -> None:
    rows = [ev("processed", D - k * DAY, recipient=r) for k in (0, 3, 40) for r in ("x", "y")]
    rows += [ev("click", D - 2 * DAY, recipient="x"), ev("open", D - 8 * DAY, recipient="x"),
             ev("open", D - 80 * DAY, recipient="y")]
    counts = store.one(rows)
    assert counts.sent_recipients_long == 2
    assert (counts.engaged_recipients_short, counts.engaged_recipients_long) == (1, 1)
    assert counts.sent_engaged_recipients == 2


def test_top_providers_ranked_by_long_deliveries_then_name(store: Store) -> None:
    deliveries = {"zeta": 3, "alpha": 2, "beta": 2, "gmail": 1, "yahoo": 1, "aol": 1}
    rows = [ev("delivered", D - k * DAY, provider=p, message=f"{p}{k}", recipient=f"{p}{k}")
            for p, n in deliveries.items() for k in range(n)]
    rows += [ev("open", provider="zeta", message="zeta0", recipient="zeta0"),
             ev("open", D - 10 * DAY, provider="alpha", message="alpha-old"),
             ev("delivered", D - 40 * DAY, provider="outlook"),
             ev("delivered", provider=None)]
    counts = store.one(rows, top_providers=4)
    assert counts.providers == (
        ProviderCounts("zeta", delivered_short=3, opened_short=1, delivered_long=3, opened_long=1),
        ProviderCounts("alpha", 2, 0, 2, 1),
        ProviderCounts("beta", 2, 0, 2, 0),
        ProviderCounts("aol", 1, 0, 1, 0),
    )
    assert store.one(rows, top_providers=0).providers == ()


def test_accounts_never_mix(store: Store) -> None:
    rows = [ev("processed", account=1, recipient="shared"), ev("click", account=2,
                                                               recipient="shared"),
            ev("delivered", account=2, provider="yahoo"), ev("open", account=2, message="m")]
    one, two = store.counts(rows, accounts=[1, 2])
    assert (one.processed_long, one.sent_engaged_recipients, one.opened_long) == (1, 0, 0)
    assert one.providers == ()
    assert (two.processed_long, two.delivered_long, two.opened_long) == (0, 1, 1)
    assert [p.provider for p in two.providers] == ["yahoo"]


def test_named_accounts_listed_with_zeros_and_unnamed_only_when_active(store: Store) -> None:
    rows = [ev("deferred", D - 89 * DAY, account=1), ev("processed", D - 90 * DAY, account=2)]
    listed = store.counts(rows, accounts=[1, 2, 3])
    assert [c.account_id for c in listed] == [1, 2, 3]
    assert all(c == WindowCounts(c.account_id, D, *[0] * 15) for c in listed)
    assert [c.account_id for c in store.counts(rows)] == [1]
    assert store.counts(rows, accounts=[]) == []


def test_days_as_table_equal_days_as_list(store: Store) -> None:
    rows = random_rows(random.Random(7), 150)
    days = [D - k * DAY for k in (0, 1, 5, 30)]
    table = ibis.memtable(pa.table({"day": pa.array(days, pa.date32())}))
    assert store.counts(rows, table) == store.counts(rows, days)


@pytest.mark.parametrize("strategy", ["auto", *STRATEGIES])
def test_many_days_at_once_equal_each_day_alone(tmp_path: Path, strategy: str) -> None:
    store = Store(tmp_path / "events.duckdb", strategy)
    rows = random_rows(random.Random(1), 400)
    days = [D - k * DAY for k in (0, 1, 2, 6, 7, 29, 30, 45)]
    together = store.counts(rows, days)
    alone = [c for day in days for c in store.counts(rows, [day], strategy="auto")]
    store.con.disconnect()
    assert together == sorted(alone, key=lambda c: (c.account_id, c.day))
    assert len(together) > len(days)


def test_provider_expression_lists_the_same_top_providers(store: Store) -> None:
    rows = random_rows(random.Random(5), 300)
    days = [D, D - 3 * DAY]
    counts = store.counts(rows, days, top_providers=2)
    expr = provider_counts_expr(store.con.table("events"), days, None, WindowSpec(top_providers=2),
                                strategy=store.strategy)
    listed: dict[tuple[int, dt.date], list[tuple[int, ProviderCounts]]] = {}
    for r in expr.to_pyarrow().to_pylist():
        listed.setdefault((r["account_id"], r["day"]), []).append(
            (r["rank"], ProviderCounts(r["provider"], *(r[c] for c in PROVIDER_COUNT_COLUMNS))))
    assert {k: tuple(p for _, p in sorted(v)) for k, v in listed.items()} == \
        {(c.account_id, c.day): c.providers for c in counts if c.providers}


def test_window_spec_rejects_unordered_windows() -> None:
    with pytest.raises(ValueError, match="short <= long"):
        WindowSpec(short_days=8, long_days=7)
    with pytest.raises(ValueError, match="top_providers"):
        WindowSpec(top_providers=-1)


# -- the reference: a naive counter, straight from the spec's definitions ----------------

EVENTS = ["processed", "delivered", "open", "click", "bounce", "spamreport", "deferred"]


def random_rows(rng: random.Random, n: int, span_days: int = 60) -> list[dict[str, Any]]:
    def pick(*options: Any) -> Any:
        return rng.choice(options)

    return [
        ev(pick(*EVENTS), D - rng.randrange(span_days) * DAY, account=pick(1, 2),
           message=pick("m1", "m2", "m3", None), recipient=pick("r1", "r2", "r3", None),
           provider=pick("gmail", "yahoo", "a.com", None), machine=pick(True, False),
           bounce_type=pick("bounce", "blocked", None),
           bounce_class=pick("Invalid Address", "Reputation", "Content", "Technical", None),
           status=pick("5.1.1", "5.7.1", None))
        for _ in range(n)
    ]


def reference(rows: list[dict[str, Any]], days: list[dt.date], accounts: list[int] | None,
              w: WindowSpec) -> list[WindowCounts]:
    unique = {(r["account_id"], r["event_id"]): r for r in rows}.values()

    def within(r: dict[str, Any], day: dt.date, n: int) -> bool:
        return day - (n - 1) * DAY <= r["ts"].date() <= day

    def human_open(r: dict[str, Any]) -> bool:
        return r["event"] == "open" and not r["machine_open"]

    def invalid(r: dict[str, Any]) -> bool:
        return r["event"] == "bounce" and r["bounce_type"] in ("bounce", None) and (
            r["bounce_class"] == "Invalid Address"
            or (r["bounce_class"] is None and (r["status"] or "").startswith("5.1.")))

    def block(r: dict[str, Any]) -> bool:
        return r["event"] == "bounce" and r["bounce_class"] in ("Reputation", "Content")

    def counted(evs: list[dict[str, Any]], test: Any) -> int:
        return sum(1 for r in evs if test(r))

    def distinct(evs: list[dict[str, Any]], test: Any, field: str) -> set[Any]:
        return {r[field] for r in evs if test(r) and r[field] is not None}

    def engaged(r: dict[str, Any]) -> bool:
        return human_open(r) or r["event"] == "click"

    out = []
    for day in sorted(set(days)):
        ids = accounts if accounts is not None else sorted(
            {r["account_id"] for r in unique if within(r, day, w.engagement_days)})
        for account in sorted(set(ids)):
            mine = [r for r in unique if r["account_id"] == account]
            s = [r for r in mine if within(r, day, w.short_days)]
            lg = [r for r in mine if within(r, day, w.long_days)]
            eng = [r for r in mine if within(r, day, w.engagement_days)]

            def is_(name: str) -> Any:
                return lambda r: r["event"] == name

            def opened(evs: list[dict[str, Any]], p: str | None = None) -> int:
                return len(distinct(evs, lambda r: human_open(r) and p in (None, r["provider"]),
                                    "message_id"))

            sent = distinct(lg, is_("processed"), "recipient")
            providers = []
            for p in {r["provider"] for r in lg if r["event"] == "delivered" and r["provider"]}:
                def to_p(r: dict[str, Any], p: str = p) -> bool:
                    return r["event"] == "delivered" and r["provider"] == p

                providers.append(ProviderCounts(p, counted(s, to_p), opened(s, p),
                                                counted(lg, to_p), opened(lg, p)))
            providers.sort(key=lambda c: (-c.delivered_long, c.provider))
            out.append(WindowCounts(
                account, day, counted(s, is_("processed")), counted(lg, is_("processed")),
                counted(s, is_("delivered")), counted(lg, is_("delivered")), opened(lg),
                counted(s, invalid), counted(lg, invalid), counted(s, block), counted(lg, block),
                counted(s, is_("spamreport")), counted(lg, is_("spamreport")),
                len(distinct(s, engaged, "recipient")), len(distinct(lg, engaged, "recipient")),
                len(sent), len(sent & distinct(eng, engaged, "recipient")),
                tuple(providers[: w.top_providers]),
            ))
    return sorted(out, key=lambda c: (c.account_id, c.day))


@pytest.fixture(scope="module", params=STRATEGIES)
def shared_store(tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[Store]:
    opened = Store(tmp_path_factory.mktemp("prop") / "events.duckdb", request.param)
    yield opened
    opened.con.disconnect()


SMALL = WindowSpec(short_days=2, long_days=4, engagement_days=7, top_providers=2)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n=st.integers(1, 40),
       day_offsets=st.sets(st.integers(0, 12), min_size=1, max_size=4),
       accounts=st.sampled_from([None, [1], [2, 3]]), data=st.data())
def test_matches_reference_and_ignores_duplicates_and_order(
        shared_store: Store, seed: int, n: int, day_offsets: set[int],
        accounts: list[int] | None, data: st.DataObject) -> None:
    rng = random.Random(seed)
    rows = random_rows(rng, n, span_days=12)
    days = [D - k * DAY for k in day_offsets]
    expected = reference(rows, days, accounts, SMALL)
    kwargs = {"accounts": accounts, "short_window_days": SMALL.short_days,
              "long_window_days": SMALL.long_days,
              "engagement_window_days": SMALL.engagement_days,
              "top_providers": SMALL.top_providers}
    assert shared_store.counts(rows, days, **kwargs) == expected
    copies = data.draw(st.lists(st.sampled_from(rows), max_size=len(rows)))
    # a re-delivered copy is the same event arriving later
    shuffled = rows + [{**r, "ingested_at": r["ingested_at"] + DAY} for r in copies]
    rng.shuffle(shuffled)
    assert shared_store.counts(shuffled, days, **kwargs) == expected
