"""Throughput of EventParser.parse on realistic SendGrid webhook bodies (single core).

Bodies of BATCH events (default 2000, ~640 KB: SendGrid batches are <= ~768 KB),
80% of recipients distinct per body, mixed event types. Prints CPU-time throughput.
Usage: python benchmarks/ingest_parse.py [TOTAL_EVENTS] [--batch N] [--custom]
"""

import datetime as dt
import random
import sys
import time

import msgspec

from seqscore.ingest.webhook import EventParser

random.seed(1)
args = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(args[0]) if args else 100_000
CUSTOM = "--custom" in sys.argv
BATCH = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 2000
KINDS = ["processed", "delivered", "open", "click", "bounce"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org"]
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"


def event(i):
    kind = random.choices(KINDS, [30, 30, 25, 10, 5])[0]
    e = {"email": f"user{i % 20000}@{random.choice(DOMAINS)}",
         "timestamp": 1700000000 + i, "smtp-id": f"<14c5d75ce93.dfd.{i}@ismtpd-555>",
         "event": kind, "category": ["newsletter"],
         "sg_event_id": f"rbtnWrG1DVDGGGFHFyun{i:08d}==",
         "sg_message_id": f"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.{i}"}
    if kind == "delivered":
        e.update(response="250 OK", tls=1)
    if kind == "open":
        e.update(sg_machine_open=i % 3 == 0, useragent=BROWSER, ip="203.0.113.7")
    if kind == "click":
        e.update(url="https://example.com/landing?utm=1", url_offset={"index": 0, "type": "html"},
                 useragent="Mozilla/5.0", ip="203.0.113.7")
    if kind == "bounce":
        e.update(type="bounce", bounce_classification="Invalid Address",
                 reason="550 5.1.1 unknown user", status="5.1.1")
    if CUSTOM:
        e.update(user_id=str(i), campaign="spring")
    return e


events = [event(i) for i in range(N)]
bodies = [msgspec.json.encode(events[i:i + BATCH]) for i in range(0, N, BATCH)]
parser = EventParser(b"\x01" * 32)
now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
best = 1e9
for _ in range(5):
    t = time.process_time()
    rows = sum(parser.parse(b, account_id=1, ingested_at=now).table.num_rows for b in bodies)
    best = min(best, time.process_time() - t)
assert rows == N
size = sum(map(len, bodies)) / N
print(f"{N} events in bodies of {BATCH} ({size:.0f} B/event{', custom args' if CUSTOM else ''}): "
      f"{N / best / 1e3:.0f}k events/s")
