"""Fixtures of the ingest tests: a parser with a fixed secret and ways to run it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from ingest_helpers import ACCOUNT_ID, INGESTED_AT, SECRET

from seqscore.ingest.webhook import EventParser, ParsedBatch


@pytest.fixture
def parser() -> EventParser:
    return EventParser(SECRET)


@pytest.fixture
def parse(parser: EventParser) -> Callable[..., ParsedBatch]:
    """parse(*events) or parse(body=bytes): the batch, parsed."""

    def run(*events: Any, body: bytes | None = None) -> ParsedBatch:
        data = msgspec.json.encode(list(events)) if body is None else body
        return parser.parse(data, account_id=ACCOUNT_ID, ingested_at=INGESTED_AT)

    return run


@pytest.fixture
def one(parse: Callable[..., ParsedBatch]) -> Callable[..., dict[str, Any]]:
    """one(event): the single stored row as a dict; fails if it was rejected."""

    def run(item: Any) -> dict[str, Any]:
        result = parse(item)
        assert not result.rejects, result.rejects
        (row,) = result.table.to_pylist()
        return row  # type: ignore[no-any-return]

    return run


@pytest.fixture
def reason(parse: Callable[..., ParsedBatch]) -> Callable[..., str]:
    """reason(event): why the single event was rejected; fails if it was stored."""

    def run(item: Any) -> str:
        result = parse(item)
        assert result.table.num_rows == 0
        (reject,) = result.rejects
        return reject.reason

    return run
