"""The demo event generator: determinism, SendGrid's batch limits and shapes, and that
each sending profile scores as intended through the real pipeline (webhook parser ->
Arrow -> DuckDB window aggregation -> scoring model)."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import itertools
import json
import random
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from seqscore.compute import compute_window_counts
from seqscore.demo import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    NO_QUIRKS,
    PROFILES,
    SPECIAL_PROFILES,
    AccountPlan,
    Batch,
    Quirks,
    batch_body,
    default_plans,
    generate,
    period,
    write_jsonl,
)
from seqscore.demo.audience import CONSUMER_MIX, DOMAINS, address_pool
from seqscore.demo.webhook import batches
from seqscore.ingest.providers import DEFAULT_PROVIDERS
from seqscore.ingest.webhook import EventParser
from seqscore.scoring import DEFAULT_MODEL, ScoreDecision, score_day
from seqscore.types import AccountKind, Eligibility

END = dt.date(2026, 11, 19)
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
#: Many quirks, so that a small sample shows every one of them.
NOISY = Quirks(duplicate_pct=2.0, late_pct=3.0, string_timestamp_pct=2.0, batch_retry_pct=10.0)


def plans_named(*usernames: str, seed: int = 7, volume_scale: float = 1.0) -> list[AccountPlan]:
    by_name = {p.username: p for p in default_plans(seed, volume_scale=volume_scale)}
    return [by_name[name] for name in usernames]


def stream_bytes(batches_: Iterable[Batch]) -> bytes:
    return b"\n".join(b.account.encode() + b" " + batch_body(b.events) for b in batches_)


def parse_all(batches_: Iterable[Batch], ids: dict[str, int]) -> tuple[pa.Table, list[str]]:
    parser = EventParser(b"demo-test-recipient-key-32-bytes")
    tables, rejects = [], []
    for account, events in batches_:
        parsed = parser.parse(batch_body(events), account_id=ids[account], ingested_at=NOW)
        tables.append(parsed.table)
        rejects += [r.reason for r in parsed.rejects]
    return pa.concat_tables(tables), rejects


# -- plans -------------------------------------------------------------------------------


def test_default_plans_are_a_parent_subusers_and_customers() -> None:
    plans = default_plans(3)
    assert len(plans) == 40
    assert len({p.username for p in plans}) == 40
    parent, *children = plans
    assert parent.parent is None
    assert all(p.parent == parent.username for p in children)
    assert sum(p.kind is AccountKind.CUSTOMER for p in plans) == 4
    names = [p.profile.name for p in children]
    assert all(names.count(profile.name) >= 1 for profile in SPECIAL_PROFILES)
    assert {p.username: p.open_tracking for p in plans}["open-tracking-off"] is False
    assert default_plans(3) == plans
    assert default_plans(4) != plans


def test_default_plans_small_counts() -> None:
    assert [p.username for p in default_plans(accounts=3)] == [
        "demo-parent", "healthy-newsletter", "transactional"]
    with pytest.raises(ValueError):
        default_plans(accounts=0)


def test_healthy_fill_profiles_stay_within_healthy_ranges() -> None:
    fills = [p.profile.rates for p in default_plans(11, accounts=200)
             if p.username.startswith("newsletter-")]
    assert len(fills) > 50
    for rates in fills:
        assert 25 <= rates.human_open_pct <= 35
        assert rates.complaint_pct < 0.05
        assert rates.invalid_bounce_pct + rates.other_bounce_pct < 1


def test_end_day_defaults_to_yesterday_and_no_clock_is_read() -> None:
    assert period(today=dt.date(2026, 3, 1), days=10).end_day == dt.date(2026, 2, 28)
    assert period(end_day=END, days=3).start_day == dt.date(2026, 11, 17)
    with pytest.raises(ValueError, match="today"):
        period(days=10)
    with pytest.raises(ValueError):
        next(generate(1, days=10))


# -- the stream itself ---------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def run(seed: int) -> bytes:
        plans = plans_named("healthy-newsletter", "low-volume", "transactional", seed=seed,
                            volume_scale=0.1)
        return stream_bytes(generate(plans, end_day=END, days=12, quirks=NOISY))

    first = run(1)
    assert first == run(1)
    assert first != run(2)


def test_an_account_does_not_depend_on_its_companions() -> None:
    alone = plans_named("transactional", volume_scale=0.1)
    together = plans_named("healthy-newsletter", "transactional", volume_scale=0.1)

    def of_transactional(plans: list[AccountPlan]) -> bytes:
        return stream_bytes(b for b in generate(plans, end_day=END, days=10)
                            if b.account == "transactional")

    assert of_transactional(alone) == of_transactional(together)


def test_batches_stay_within_sendgrid_limits() -> None:
    plans = plans_named("complaint-heavy", "low-volume", volume_scale=2.0)
    sizes = [(len(b.events), len(batch_body(b.events)))
             for b in generate(plans, end_day=END, days=4)]
    assert max(n for n, _ in sizes) <= MAX_BATCH_EVENTS
    assert max(size for _, size in sizes) <= MAX_BATCH_BYTES
    assert max(size for _, size in sizes) > MAX_BATCH_BYTES * 0.9  # full batches happen
    by_count = list(generate(plans, end_day=END, days=5, max_batch_events=100))
    assert max(len(b.events) for b in by_count) == 100
    by_size = list(generate(plans, end_day=END, days=5, max_batch_bytes=20_000))
    assert max(len(batch_body(b.events)) for b in by_size) <= 20_000


def test_batches_cut_exactly_at_the_byte_limit() -> None:
    events = [{"n": i, "pad": "x" * (i % 7)} for i in range(50)]
    for limit in range(30, 200, 7):
        cut = list(batches(events, rng=None, retry=0.0, max_bytes=limit))  # type: ignore[arg-type]
        assert [e for chunk, _ in cut for e in chunk] == events
        for chunk, parts in cut:
            body = batch_body(chunk)
            assert body == b"[" + b",".join(parts) + b"]"
            assert len(body) <= limit or len(chunk) == 1
        for (chunk, _), (after, _) in itertools.pairwise(cut):  # greedy: no room left
            assert len(batch_body([*chunk, after[0]])) > limit


def test_every_event_passes_the_webhook_parser_and_quirks_occur() -> None:
    plans = plans_named("purchased-list", "apple-mpp-audience", "transactional",
                        "complaint-heavy", volume_scale=0.3)
    stream = list(generate(plans, end_day=END, days=14, quirks=NOISY))
    table, rejects = parse_all(stream, {p.username: i for i, p in enumerate(plans)})
    assert rejects == []
    events = [e for b in stream for e in b.events]
    assert table.num_rows == len(events)
    kinds = collections.Counter(e["event"] for e in events)
    assert {"processed", "delivered", "deferred", "bounce", "open", "click", "dropped",
            "spamreport", "unsubscribe", "group_unsubscribe"} <= set(kinds)
    assert any(isinstance(e["timestamp"], str) for e in events)
    assert any(isinstance(e.get("category"), list) for e in events)
    assert any(isinstance(e.get("category"), str) for e in events)
    assert any("app" in e for e in events)  # custom args, flattened
    assert any(e["event"] == "bounce" and "sg_message_id" not in e for e in events)
    assert any(e.get("sg_machine_open") is True for e in events)
    blocked = [e for e in events if e.get("type") == "blocked"]
    assert blocked and all(e["bounce_classification"] for e in blocked)
    ids = collections.Counter(e["sg_event_id"] for e in events)
    repeated = [i for i, n in ids.items() if n > 1]
    assert repeated  # duplicates, identical
    by_id: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for e in events:
        by_id[e["sg_event_id"]].append(e)
    assert all(all(x == copies[0] for x in copies) for copies in by_id.values())
    assert table.column("machine_open").to_pylist().count(True) == sum(
        e.get("sg_machine_open") is True for e in events)


def test_events_follow_their_message() -> None:
    plans = plans_named("healthy-newsletter", "transactional", volume_scale=0.2)
    events = [e for b in generate(plans, end_day=END, days=20, quirks=NO_QUIRKS)
              for e in b.events]
    span = period(end_day=END, days=20)
    assert all(span.start_ts <= e["timestamp"] < span.end_ts for e in events)
    by_message: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for e in events:
        if "sg_message_id" in e:
            by_message[e["sg_message_id"]].append(e)
    delays = []
    for message in by_message.values():
        if message[0]["event"] == "dropped":  # suppressed: SendGrid posts nothing else
            assert len(message) == 1
            continue
        [processed] = [e for e in message if e["event"] == "processed"]
        assert len({e["email"] for e in message}) == 1
        assert all(e["timestamp"] >= processed["timestamp"] for e in message)
        assert ".filterdrecv-" in processed["sg_message_id"]
        assert processed["smtp-id"].startswith("<")
        delays += [e["timestamp"] - processed["timestamp"] for e in message
                   if e["event"] == "open"]
    assert min(delays) < 3600
    assert max(delays) > 3 * 86_400  # opens span days
    opens = [e for e in events if e["event"] == "open"]
    assert all({"useragent", "ip", "sg_machine_open"} <= e.keys() for e in opens)
    assert all(e["url"].startswith("https://") for e in events if e["event"] == "click")
    assert all(e["attempt"].isdigit() for e in events if e["event"] == "deferred")


def test_late_events_arrive_in_later_batches() -> None:
    plans = plans_named("transactional", volume_scale=0.3)
    stream = list(generate(plans, end_day=END, days=6, quirks=NOISY))
    newest = 0
    late = 0
    for batch in stream:
        times = [int(e["timestamp"]) for e in batch.events]
        late += sum(t < newest - 1800 for t in times)
        newest = max(newest, *times)
    assert late > 0
    clean = list(generate(plans, end_day=END, days=6, quirks=NO_QUIRKS))
    newest, late = 0, 0
    for batch in clean:
        times = [int(e["timestamp"]) for e in batch.events]
        late += sum(t < newest - 60 for t in times)
        newest = max(newest, *times)
    assert late == 0


def test_addresses_are_synthetic_on_a_realistic_provider_mix() -> None:
    pool = address_pool(random.Random(5), CONSUMER_MIX, 20_000)
    share = collections.Counter(group for _, group, _ in pool)
    for group, pct in CONSUMER_MIX:
        assert abs(100 * share[group] / len(pool) - pct) < 1.5, group
    known = {d for domains in DOMAINS.values() for d, _ in domains}
    assert all(domain in known for _, _, domain in pool)
    corporate = [d for _, g, d in pool if g == "corporate"]
    assert all(d.endswith(".test") for d in corporate)
    assert all(DEFAULT_PROVIDERS.get(d, d) == g for _, g, d in pool
               if g in {"gmail", "microsoft", "yahoo", "apple"})


def test_write_jsonl_writes_one_file_per_account(tmp_path: Path) -> None:
    plans = plans_named("low-volume", "transactional", volume_scale=0.1)
    written = write_jsonl(tmp_path / "out", plans, end_day=END, days=8, quirks=NOISY)
    assert [(f.account, f.path.name) for f in written] == [
        ("low-volume", "low-volume.jsonl"), ("transactional", "transactional.jsonl")]
    streamed: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for account, events in generate(plans, end_day=END, days=8, quirks=NOISY):
        streamed[account] += events
    for f in written:
        lines = f.path.read_bytes().splitlines()
        assert len(lines) == f.events == len(streamed[f.account])
        assert [json.loads(line) for line in lines] == streamed[f.account]
    again = write_jsonl(tmp_path / "gz", plans, end_day=END, days=8, quirks=NOISY,
                        compress=True)
    assert gzip.decompress(again[1].path.read_bytes()) == written[1].path.read_bytes()


def test_volume_scale_scales_volume() -> None:
    def processed(scale: float) -> int:
        plans = plans_named("transactional", volume_scale=scale)
        return sum(e["event"] == "processed" for b in generate(plans, end_day=END, days=10)
                   for e in b.events)

    small, large = processed(0.1), processed(0.4)
    assert 3 < large / small < 5


# -- the profiles, through the real pipeline -----------------------------------------------

DAYS = 60
MID = END - dt.timedelta(days=DAYS // 2)
#: Account -> volume scale: as small as the account's signal allows. Spam rates need
#: the most volume: at 0.05 % one report in a week's 500 deliveries already scores 1.
PIPELINE_ACCOUNTS = {
    "healthy-newsletter": 1.0, "degrading": 0.6, "recovering": 0.6, "complaint-heavy": 1.0,
    "purchased-list": 0.3, "blocked-at-microsoft": 0.4, "apple-mpp-audience": 0.4,
    "low-volume": 1.0, "open-tracking-off": 0.4,
}


def _counts(table: pa.Table) -> dict[tuple[int, dt.date], Any]:
    raw = duckdb.connect()
    raw.register("batch", table)
    raw.execute("CREATE TABLE events AS SELECT * FROM batch")
    con = ibis.duckdb.from_connection(raw)
    try:
        return {(c.account_id, c.day): c for c in compute_window_counts(con, [MID, END])}
    finally:
        con.disconnect()


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    """Small volumes, 60 days; the MPP audience scored twice: as is, and as if
    machine opens were human."""
    plans = [replace(plan, volume_scale=PIPELINE_ACCOUNTS[plan.username])
             for plan in plans_named(*PIPELINE_ACCOUNTS)]
    ids = {p.username: i for i, p in enumerate(plans, start=1)}
    table, rejects = parse_all(generate(plans, end_day=END, days=DAYS), ids)
    assert rejects == []
    counts = _counts(table)
    mpp = ids["apple-mpp-audience"]
    audience = table.filter(pc.equal(table.column("account_id"), mpp))
    as_human = audience.set_column(audience.schema.get_field_index("machine_open"),
                                   "machine_open", pa.array([False] * audience.num_rows))
    counts_as_human = _counts(as_human)
    decisions: dict[str, dict[dt.date, ScoreDecision]] = {}
    for plan in plans:
        decisions[plan.username] = {
            day: score_day(counts[ids[plan.username], day], DEFAULT_MODEL,
                           open_tracking=plan.open_tracking) for day in (MID, END)}
    return {"decisions": decisions,
            "mpp_as_human": score_day(counts_as_human[mpp, END], DEFAULT_MODEL,
                                      open_tracking=True)}


def _rate(decision: ScoreDecision, metric: str) -> Fraction:
    numerator, denominator = decision.rates[metric]
    return Fraction(numerator, denominator)


def _metric(pipeline: dict[str, Any], account: str, metric: str, day: dt.date = END) -> int:
    metrics = pipeline["decisions"][account][day].metrics
    assert metrics is not None, account
    return int(metrics[metric])


def test_healthy_newsletter_scores_at_least_4(pipeline: dict[str, Any]) -> None:
    for day in (MID, END):
        decision = pipeline["decisions"]["healthy-newsletter"][day]
        assert decision.score is not None and decision.score >= 4, decision.metrics


def test_purchased_list_bounces(pipeline: dict[str, Any]) -> None:
    assert _metric(pipeline, "purchased-list", "bounce_rate") <= 2


def test_complaint_heavy_promoter_gets_spam_reports(pipeline: dict[str, Any]) -> None:
    assert _metric(pipeline, "complaint-heavy", "spam_rate") <= 2


def test_blocked_sender_has_block_bounces(pipeline: dict[str, Any]) -> None:
    assert _metric(pipeline, "blocked-at-microsoft", "bounce_classification") <= 2


def test_low_volume_sender_is_ineligible(pipeline: dict[str, Any]) -> None:
    decision = pipeline["decisions"]["low-volume"][END]
    assert decision.eligibility is Eligibility.LOW_VOLUME and decision.score is None


def test_open_tracking_off_is_ineligible(pipeline: dict[str, Any]) -> None:
    decision = pipeline["decisions"]["open-tracking-off"][END]
    assert decision.eligibility is Eligibility.OPEN_TRACKING_OFF
    assert decision.counts["opened_long"] == 0
    assert decision.counts["processed_long"] >= DEFAULT_MODEL.min_messages


def test_degrading_sender_ends_lower(pipeline: dict[str, Any]) -> None:
    scores = pipeline["decisions"]["degrading"]
    assert scores[END].score < scores[MID].score


def test_recovering_sender_ends_higher(pipeline: dict[str, Any]) -> None:
    scores = pipeline["decisions"]["recovering"]
    assert scores[END].score > scores[MID].score


def test_machine_opens_do_not_count_for_the_mpp_audience(pipeline: dict[str, Any]) -> None:
    real = pipeline["decisions"]["apple-mpp-audience"][END]
    as_human = pipeline["mpp_as_human"]
    assert _rate(real, "open_rate") * 3 < _rate(as_human, "open_rate")
    assert _metric(pipeline, "apple-mpp-audience", "open_rate") < as_human.metrics["open_rate"]


def test_profiles_are_data() -> None:
    healthy = PROFILES["healthy_newsletter"]
    with pytest.raises(AttributeError):
        healthy.daily_messages = 1  # type: ignore[misc]
    degrading = PROFILES["degrading"]
    assert degrading.rates_at(0) == healthy.rates
    assert degrading.rates_at(100).complaint_pct > 0.3
    assert replace(healthy, trend=None).rates_at(100) == healthy.rates
