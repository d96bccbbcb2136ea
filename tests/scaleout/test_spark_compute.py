"""The same window aggregation on Spark and on DuckDB, over one Parquet lake: every
count, rate and score must be identical. Spark runs in local mode (mandatory in CI)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from scaleout_support import LAST_CLOSED, demo_plans, demo_tables

from seqscore.cli import main
from seqscore.compute import compute_window_counts
from seqscore.compute.spark import SparkLakeReader
from seqscore.service.results import compute_results
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.storage.parquet_events import ParquetEventStore
from seqscore.types import AccountKind

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FIRST = LAST_CLOSED - dt.timedelta(days=9)


@pytest.fixture
def installation(tmp_path: Path, monkeypatch):
    """A state store with the demo's accounts, and a lake with their events."""
    lake_url = f"parquet://{tmp_path / 'lake'}"
    # small volumes: lower the eligibility floors so that most accounts get a score
    model = tmp_path / "model.toml"
    model.write_text('version = "small-volume"\nmin_messages = 50\nmin_denominator = 10\n')
    env = {"SEQSCORE_DATA_DIR": str(tmp_path / "data"), "SEQSCORE_EVENTS_URL": lake_url,
           "SEQSCORE_STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
           "SEQSCORE_NOW": "2026-11-20T12:00:00+00:00", "SEQSCORE_MODEL": str(model)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    services = Services.open(Settings.from_env())
    plans = demo_plans(accounts=5, volume_scale=0.05)
    ids = {}
    for plan in plans:
        parent = services.state.get_account_by_username(plan.parent) if plan.parent else None
        ids[plan.username] = services.accounts.create_account(
            plan.username, parent=parent, kind=AccountKind(plan.kind),
            open_tracking=plan.open_tracking).user_id
    lake = services.events
    assert isinstance(lake, ParquetEventStore)
    tables = demo_tables(plans, ids)
    for start in range(0, len(tables), 50):  # as group commits would
        lake.append_many(tables[start:start + 50])
    yield services
    services.close()


def test_spark_and_duckdb_give_identical_counts_rates_and_scores(installation, spark):
    services = installation
    accounts = services.state.list_accounts()
    days = [FIRST + dt.timedelta(days=i) for i in range(10)]
    expected = compute_results(services.events, services.model, accounts, days,
                               computed_at=services.clock.now())
    assert len(expected) == len(accounts) * len(days)
    assert sum(r.score is not None for r in expected) > len(expected) // 2

    result = CliRunner().invoke(main, ["compute", "--engine", "spark", "--master", "local[2]",
                                       "--from", str(FIRST), "--to", str(LAST_CLOSED)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["results"] == len(expected)
    assert spark.sparkContext._jsc is not None  # the command left the running session up

    stored = {(r.account_id, r.day): r for a in accounts
              for r in services.state.get_results(a.user_id, FIRST, LAST_CLOSED).values()}
    assert set(stored) == {(r.account_id, r.day) for r in expected}
    for want in expected:
        got = stored[(want.account_id, want.day)]
        assert (got.counts, got.rates, got.score, got.metrics, got.eligibility,
                got.explanation) == (want.counts, want.rates, want.score, want.metrics,
                                     want.eligibility, json.loads(json.dumps(
                                         want.explanation, default=str)))


def test_the_nightly_one_day_pass_gives_identical_window_counts(installation, spark):
    lake = installation.events
    with lake.reading() as events:
        on_duckdb = compute_window_counts(events, [LAST_CLOSED])
    with lake.with_reader(SparkLakeReader(spark)).reading() as events:
        on_spark = compute_window_counts(events, [LAST_CLOSED])
    assert on_spark == on_duckdb
    assert sum(len(c.providers) for c in on_duckdb) > 0
