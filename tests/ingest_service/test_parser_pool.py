"""ParserPool: the parser in worker processes gives what it gives in this one, and
survives a worker that dies."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal

import pytest
from ingest_service_support import event

from seqscore.ingest.body import BodyError
from seqscore.ingest.pool import ParserPool
from seqscore.ingest.providers import DEFAULT_PROVIDERS
from seqscore.ingest.webhook import EventParser

KEY = bytes(range(32))
AT = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@pytest.fixture
def pool():
    opened = ParserPool(2, recipient_key=KEY, raw_cap_bytes=4096, providers=DEFAULT_PROVIDERS)
    yield opened
    opened.close()


def body_of(n: int) -> bytes:
    return json.dumps([event(i, campaign="x") for i in range(n)] + [{"event": "nope"}]).encode()


def test_the_pool_parses_as_this_process_does(pool):
    payload = body_of(500)
    here = EventParser(KEY).parse(payload, account_id=7, ingested_at=AT)
    there = pool.parse(payload, account_id=7, ingested_at=AT)
    assert there.table.equals(here.table)
    assert there.rejects == here.rejects


def test_a_body_error_comes_back_as_itself(pool):
    with pytest.raises(BodyError, match="not a JSON array"):
        pool.parse(b'{"a": 1}', account_id=7, ingested_at=AT)


def test_a_killed_worker_is_replaced(pool):
    pool.parse(body_of(10), account_id=7, ingested_at=AT)
    for pid in list(pool._executor._processes):
        os.kill(pid, signal.SIGKILL)
    parsed = pool.parse(body_of(10), account_id=7, ingested_at=AT)
    assert parsed.table.num_rows == 10
