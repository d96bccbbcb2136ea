"""Eight senders posting at once to a real server: every batch answered, every event
stored exactly once, repeats recognised, counts right."""

from __future__ import annotations

import threading

import httpx
from events_support import RECEIVER, basic, body, event, stored

from live_server import serving
from seqscore.api.app import create_app

CLIENTS = 8
BATCHES_PER_CLIENT = 12
EVENTS_PER_BATCH = 150


def test_eight_clients_posting_at_once(services, world):
    accounts = [world.account(f"sender{i}") for i in range(CLIENTS)]
    keys = [world.key(a, "events.write") for a in accounts]
    answers: list[list[dict[str, int]]] = [[] for _ in range(CLIENTS)]
    failures: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def sender(i: int, base_url: str) -> None:
        try:
            with httpx.Client(base_url=base_url, headers=basic(keys[i]), timeout=60) as client:
                start.wait()
                for b in range(BATCHES_PER_CLIENT):
                    first = b * EVENTS_PER_BATCH
                    payload = body(*(event(n) for n in range(first, first + EVENTS_PER_BATCH)))
                    for _ in range(2 if b % 4 == 0 else 1):  # every fourth batch is retried
                        r = client.post(RECEIVER, content=payload)
                        assert r.status_code == 200, r.text
                        answers[i].append(r.json())
        except BaseException as exc:
            failures.append(exc)

    with serving(create_app(services)) as base_url:
        threads = [threading.Thread(target=sender, args=(i, base_url)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    per_client = BATCHES_PER_CLIENT * EVENTS_PER_BATCH
    for i in range(CLIENTS):
        assert sum(a["accepted"] for a in answers[i]) == per_client
        assert sum(a["duplicates"] for a in answers[i]) == 3 * EVENTS_PER_BATCH
    rows = stored(services)
    assert len(rows) == CLIENTS * per_client
    assert len({(r["account_id"], r["event_id"]) for r in rows}) == CLIENTS * per_client
    committer = services._committer
    assert committer is not None and committer.batches == CLIENTS * BATCHES_PER_CLIENT + 24
    assert committer.commits <= committer.batches
