"""Fixtures of the hostile-input tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostile_support import ErrorLog


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    """Fails the test if the server logged an error meanwhile (a 500 nobody saw)."""
    with ErrorLog() as log:
        yield log
    assert not log.records, log.messages()
