"""Shared fixtures: real stores in a temp data dir, on SQLite and (when reachable) PostgreSQL.

PostgreSQL tests need ``SEQSCORE_TEST_POSTGRES_URL`` (``.ci/run`` sets it). On a
developer's machine without a server they skip with the reason; in CI
(``CI=true``) a missing server is a failure, never a skip.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import METRIC_NAMES, Account, AccountKind, DayResult, Eligibility

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("SEQSCORE_TEST_POSTGRES_URL", "")

#: The instant every test starts at unless it moves the clock: Friday 2026-11-20 12:00 UTC.
TEST_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def require_or_skip(available: bool, reason: str) -> None:
    """Skip with ``reason`` on a developer machine; fail in CI, where it must exist."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    require_or_skip(bool(POSTGRES_URL), "PostgreSQL not configured (SEQSCORE_TEST_POSTGRES_URL)")
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
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


def _truncate_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                 + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state-store URL on each engine: a SQLite file, and a clean PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    url: str = request.getfixturevalue("postgres_database")
    _truncate_postgres(url)
    return url


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


@dataclass
class World:
    """Builds accounts, keys and results through the real services."""

    services: Services

    def account(self, username: str, *, parent: Account | None = None,
                kind: AccountKind = AccountKind.SUBUSER, user_id: int | None = None,
                open_tracking: bool = True) -> Account:
        return self.services.accounts.create_account(
            username, parent=parent, kind=kind, user_id=user_id, open_tracking=open_tracking,
            email=f"{username}@example.test")

    def key(self, account: Account, scopes: str | None = None) -> str:
        from seqscore.service.accounts import parse_scopes

        return self.services.accounts.create_key(
            account, name="test", scopes=parse_scopes(scopes)).api_key

    def result(self, account: Account, day: dt.date, score: int | None = 4,
               metrics: tuple[int, ...] = (4, 3, 5, 5, 4)) -> DayResult:
        result = DayResult(
            account_id=account.user_id, day=day, score=score,
            metrics=None if score is None else dict(zip(METRIC_NAMES, metrics, strict=True)),
            eligibility=Eligibility.ELIGIBLE if score is not None else Eligibility.LOW_VOLUME,
            model_version="test", computed_at=TEST_NOW)
        self.services.state.upsert_results([result])
        return result


@pytest.fixture
def world(services: Services) -> World:
    return World(services)
