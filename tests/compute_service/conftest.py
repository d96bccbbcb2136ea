"""Fixtures of the compute-service tests: the root ``services`` on both engines, with a
worker that polls often (shared helpers live in ``compute_service_support``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqscore.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, state_url: str) -> Settings:
    """As the root fixture, with a worker that looks for jobs every 50 ms and one
    DuckDB thread (two cores are shared with the rest of the suite)."""
    return Settings(data_dir=tmp_path / "data", state_url=state_url, worker=False,
                    worker_poll_seconds=0.05, events_threads=1)
