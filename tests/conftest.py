"""Shared fixtures: real stores in a temp data dir, on SQLite and (when reachable) PostgreSQL.

PostgreSQL tests need ``SEQSCORE_TEST_POSTGRES_URL`` (``.ci/run`` sets it). On a
developer's machine without a server they skip with the reason; in CI
(``CI=true``) a missing server is a failure, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore_testing import POSTGRES_URL, TEST_NOW, World, clean_postgres, require_or_skip


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    require_or_skip(bool(POSTGRES_URL), "PostgreSQL not configured (SEQSCORE_TEST_POSTGRES_URL)")
    # pre-ping: the fault tests restart PostgreSQL, which kills pooled connections
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"seqscore_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        require_or_skip(False, f"PostgreSQL unreachable at {POSTGRES_URL}: {exc.orig}")
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
