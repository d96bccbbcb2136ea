"""Crash safety: ``seqscore serve`` killed with SIGKILL at random moments while senders
post a stream of batches and, as SendGrid does, retry every batch not answered 2xx.

After the last restart the store holds exactly the distinct events that were sent:
nothing acknowledged is lost, nothing is stored twice (each posted batch is stored
once, its retries recognised), and the real aggregation counts exactly what it
counts on a clean store holding each event once.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from pathlib import Path

import pytest
from ingest_service_support import CLOSED, TEST_NOW, Serve, demo_plans, demo_stream, post

from seqscore.compute.aggregate import compute_window_counts
from seqscore.demo.webhook import batch_body
from seqscore.ingest.recipients import load_or_create_recipient_key
from seqscore.ingest.webhook import EventParser
from seqscore.service.ingest import POOL_MIN_BODY_BYTES, unique_events
from seqscore.storage.duckdb_events import DuckDBEventStore

pytestmark = pytest.mark.slow

SENDERS = 3
KILLS = 6


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found.update(children)
            todo += children
    return found


def test_sigkill_at_random_moments_loses_nothing_and_doubles_nothing(tmp_path: Path):
    rng = random.Random(20261120)
    data = tmp_path / "data"
    server = Serve(data)
    ids, keys = server.create_senders([plan.username for plan in demo_plans()])
    # the demo stream (late events, duplicates, whole batches posted twice), in small batches
    batches = []
    for username, events in demo_stream(days=10):
        start = 0
        while start < len(events):  # mostly small batches; every 8th big (parsed in the pool)
            size = 300 if len(batches) % 10 == 9 else 20
            batches.append((username, batch_body(events[start:start + size])))
            start += size
    assert len(batches) > 120
    assert any(len(b) >= POOL_MIN_BODY_BYTES for _, b in batches)

    acknowledged: list[tuple[str, bytes]] = []
    attempts = [0]
    lock = threading.Lock()
    queue = list(reversed(batches))

    def sender() -> None:
        while True:
            with lock:
                if not queue:
                    return
                username, payload = queue.pop()
            while True:  # retry until a 2xx, as SendGrid does
                with lock:
                    attempts[0] += 1
                try:
                    status, answer = post(server.url, payload,
                                          {"Authorization": f"Bearer {keys[username]}"}, 20)
                except OSError:
                    status = 0
                if status == 200:
                    with lock:
                        acknowledged.append((username, payload))
                    time.sleep(0.005)  # a stream, not a flood
                    break
                assert status in (0, 502, 503), (status, answer)
                time.sleep(0.02)

    helpers: set[int] = set()
    server.start()
    senders = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for t in senders:
        t.start()
    # kill at random points of the stream (after so many answers, plus a few ms, so
    # that the other senders' requests are in flight), each time with the worker on or off
    for point in sorted(rng.sample(range(10, len(batches) - 30), KILLS)):
        while len(acknowledged) < point:
            assert any(t.is_alive() for t in senders), "the senders stopped"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        helpers.update(descendants(server.pid))
        server.kill()
        server.env["SEQSCORE_WORKER"] = rng.choice(["on", "off"])
        server.start()
    for t in senders:
        t.join()
    server.kill()  # once more, after the last answer
    assert attempts[0] > len(batches)  # some batches really were retried
    server.start()
    server.stop()
    deadline = time.monotonic() + 30  # parser processes of killed servers exit too
    while any(alive(pid) for pid in helpers):
        assert time.monotonic() < deadline, "processes of a killed server are left over"
        time.sleep(0.1)

    # -- what the store holds
    assert sorted(acknowledged) == sorted(batches)
    key = load_or_create_recipient_key(data)
    parser = EventParser(key)
    expected_rows = 0
    distinct: set[tuple[int, str]] = set()
    reference = DuckDBEventStore(tmp_path / "reference.duckdb")
    for username, payload in dict.fromkeys(batches):  # each different batch once
        table = parser.parse(payload, account_id=ids[username], ingested_at=TEST_NOW).table
        table, _ = unique_events(table)
        expected_rows += table.num_rows
        new = [i for i, e in enumerate(table["event_id"].to_pylist())
               if (ids[username], e) not in distinct]
        distinct.update((ids[username], e) for e in table["event_id"].to_pylist())
        reference.append(table.take(new))
    store = DuckDBEventStore(data / "events.duckdb")
    try:
        stored = {(a, e) for a, e in store.sql("SELECT account_id, event_id FROM events")}
        assert stored == distinct  # nothing lost, nothing foreign
        assert store.count() == expected_rows  # no batch stored twice
        days = [CLOSED - dt.timedelta(days=i) for i in range(8)]
        with store.reading() as table, reference.reading() as clean:
            counted = compute_window_counts(table, days, sorted(ids.values()))
            assert counted == compute_window_counts(clean, days, sorted(ids.values()))
        assert sum(c.delivered_long for c in counted) > 1000
    finally:
        store.close()
        reference.close()
