"""Helpers shared by the /v3 contract tests (``test_api_seq_*.py``).

Module-scoped stores: the validation, authority and pagination modules build
one world per engine and then only read it, so each engine gets a store of its
own for the whole module (a fresh PostgreSQL database, dropped afterwards)
instead of a store per test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from openapi_check import ValidatingClient

from seqscore.api.app import create_app
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import Account
from seqscore_testing import TEST_NOW, fresh_state_url

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

TODAY = TEST_NOW.date()  # 2026-11-20; the last closed day at TEST_NOW is the 19th
ONE_DAY = dt.timedelta(days=1)
#: the metric names of a score entry, in the spec page's order (written out, not imported)
SPEC_METRICS = ("engagement_recency", "open_rate", "bounce_classification", "bounce_rate",
                "spam_rate")


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@contextmanager
def module_services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    **changes: Any) -> Iterator[Services]:
    """Services on ``request.param``'s engine, frozen at TEST_NOW, for one module."""
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    with fresh_state_url(request.param, folder) as url:
        settings = Settings(data_dir=folder / "data", state_url=url, worker=False, **changes)
        services = Services.open(settings, clock=FrozenClock(TEST_NOW))
        try:
            yield services
        finally:
            services.close()


def client_for(services: Services) -> ValidatingClient:
    return ValidatingClient(create_app(services))


def bearer(key: str, **headers: Any) -> dict[str, Any]:
    return {"Authorization": f"Bearer {key}", **headers}


def entry(account: Account, on: dt.date, score: int | None = None,
          metrics: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The score entry the spec page prescribes, written out from test data."""
    out: dict[str, Any] = {"user_id": str(account.user_id), "username": account.username,
                           "date": on.isoformat()}
    if score is not None:
        assert metrics is not None
        out["score"] = score
        out["metrics"] = dict(zip(SPEC_METRICS, metrics, strict=True))
    return out


def rate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in
            ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
            if name in headers}
