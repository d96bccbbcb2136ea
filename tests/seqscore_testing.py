"""What tests share besides fixtures: the CI rule, the test clock's instant, World.

Imported by name (``from seqscore_testing import World``) — a unique module name,
unlike ``conftest``, of which there are several.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from seqscore.service.services import Services
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


@contextmanager
def fresh_state_url(engine: str, folder: Path) -> Iterator[str]:
    """A state-store URL on ``engine`` that nothing else uses (PostgreSQL: a fresh
    database, dropped afterwards; skipped locally and failed in CI when absent)."""
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'state.sqlite3'}"
        return
    require_or_skip(bool(POSTGRES_URL), "PostgreSQL not configured (SEQSCORE_TEST_POSTGRES_URL)")
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"seqscore_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        require_or_skip(False, f"PostgreSQL unreachable at {POSTGRES_URL}: {exc.orig}")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def clean_postgres(url: str) -> str:
    """Empty every table of a test PostgreSQL database (the schema stays); returns ``url``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                 + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


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
