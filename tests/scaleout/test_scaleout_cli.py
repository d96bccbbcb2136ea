"""The scale-out commands' arguments and answers (the heavy paths run elsewhere:
test_spark_compute.py, test_scale_out_guide.py)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

from seqscore.cli import main
from seqscore.event_schema import EVENT_SCHEMA
from seqscore.settings import Settings
from seqscore.storage.parquet_events import ParquetEventStore
from seqscore_testing import TEST_NOW


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQSCORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEQSCORE_NOW", TEST_NOW.isoformat())
    for name in ("SEQSCORE_STATE_URL", "SEQSCORE_EVENTS_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def events(n: int, day: dt.date) -> pa.Table:
    ts = dt.datetime.combine(day, dt.time(9), dt.UTC)
    return pa.Table.from_pylist([{
        "account_id": 1, "event_id": f"e{i}", "event": "delivered", "ts": ts, "day": day,
        "machine_open": False, "ingested_at": TEST_NOW} for i in range(n)], EVENT_SCHEMA)


def test_spark_needs_a_parquet_lake(env):
    result = invoke("compute", "--engine", "spark")
    assert result.exit_code == 2
    assert "reads a Parquet event lake" in result.output


def test_master_and_conf_go_with_the_spark_engine(env):
    assert "go with --engine spark" in invoke("compute", "--master", "local[1]").output
    result = invoke("compute", "--engine", "spark", "--conf", "novalue")
    assert result.exit_code == 2


def test_compact_rewrites_a_lakes_days_and_reports_files(env, monkeypatch):
    lake = ParquetEventStore(str(env / "lake"))
    day = dt.date(2026, 11, 18)
    for _ in range(3):
        lake.append(events(4, day))  # the same 4 events, three times
    lake.append(events(2, day - dt.timedelta(days=1)))
    monkeypatch.setenv("SEQSCORE_EVENTS_URL", f"parquet://{env / 'lake'}")
    result = invoke("compact", "--from", str(day), "--to", str(day))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"copies_removed": 8, "files_before": 4,
                                         "files_after": 2}
    assert lake.count() == 6


def test_compact_on_the_embedded_store_removes_copies(env):
    result = invoke("compact")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"copies_removed": 0}
    assert "Parquet lake only" in invoke("compact", "--from", "2026-11-01",
                                         "--to", "2026-11-02").output


def test_migrate_refuses_to_copy_a_store_onto_itself(env):
    current = Settings.from_env()
    result = invoke("migrate", "--to-state", current.resolved_state_url,
                    "--to-events", f"parquet://{env / 'lake'}")
    assert result.exit_code == 2 and "must differ" in result.output


def test_an_unknown_rate_limit_store_names_its_variable(env, monkeypatch):
    monkeypatch.setenv("SEQSCORE_RATE_LIMIT_STORE", "redis")
    result = invoke("accounts", "list")
    assert result.exit_code == 2 and "SEQSCORE_RATE_LIMIT_STORE" in result.output
