"""Fixtures of the scale-out tests: one Spark session for the whole test session."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from scaleout_support import java_available

from seqscore_testing import require_or_skip


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] Spark session (small: CI shares two cores), stopped at the end.
    Missing Java or PySpark skips on a developer machine and fails in CI."""
    require_or_skip(java_available(), "Java not found (PySpark local mode needs Java 17/21)")
    require_or_skip(importlib.util.find_spec("pyspark") is not None,
                    "PySpark not installed: pip install -e '.[spark]'")
    from seqscore.compute.spark import spark_session

    session = spark_session("local[2]", {"spark.driver.memory": "1g"})
    try:
        yield session
    finally:
        session.stop()
