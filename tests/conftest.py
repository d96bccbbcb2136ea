"""Shared fixtures: real stores in a temp data dir, on SQLite and (when reachable) PostgreSQL.

PostgreSQL tests need ``SEQSCORE_TEST_POSTGRES_URL`` (``.ci/run`` sets it). On a
developer's machine without a server they skip with the reason; in CI
(``CI=true``) a missing server is a failure, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import TEST_NOW, World, clean_postgres, fresh_state_url


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    with fresh_state_url("postgresql", Path()) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state-store URL on each engine: a SQLite file, and a clean PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    url: str = request.getfixturevalue("postgres_database")
    return clean_postgres(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(TEST_NOW)


@pytest.fixture
def settings(tmp_path: Path, state_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", state_url=state_url, worker=False)


@pytest.fixture
def services(settings: Settings, clock: FrozenClock) -> Iterator[Services]:
    opened = Services.open(settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def world(services: Services) -> World:
    return World(services)
