"""A synthetic Parquet event lake for benchmarks/scaleout.py, written by DuckDB SQL.

    .venv/bin/python benchmarks/scaleout_lake.py EVENTS PATH [--accounts N] [--days N]

The lake has the layout of ``seqscore.storage.parquet_events`` (``events/day=.../``
files without the ``day`` column), as if compacted: one to a few files per day.
Deterministic for (events, accounts, days, seed): every value is drawn from
DuckDB's ``hash()`` of row numbers. The shape follows SendGrid streams:

* accounts: log-normal volumes (sigma 1.5); a list of one address per 5 messages;
  recipients are 32-hex-digit hashes (ingest's HMAC length), ~100 providers with
  gmail 32 %, microsoft 18 %, yahoo 12 %, apple 8 %, the rest Zipf-spread;
* per message: ``processed``; ``delivered`` 98.5 %, else a bounce (Invalid Address
  5.1.1, blocked Reputation, Technical...); ``open`` 35 % of delivered (a quarter
  of them machine opens), a second open 10 %, ``click`` 4 %, ``spamreport`` 0.05 %;
  engagement lands the same day or up to 3 days later;
* ``event_id`` 22 characters, ``message_id`` ~ SendGrid's long form, ``raw`` null;
* 1 % of events are stored twice (a retried batch), ingested an hour later.

A message gives ~2.5 events; the lake holds about ``EVENTS`` events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb
from synthetic_senders import create_accounts, create_providers, uniform

LAST_DAY = dt.date(2026, 11, 19)
EVENTS_PER_MESSAGE = 2.5


def make_lake(root: Path, events: int, *, accounts: int = 2000, days: int = 100,
              seed: int = 1, threads: int = 2, memory_limit: str = "6GB") -> int:
    """Write the lake under ``root`` (replacing it); returns its number of events."""
    if root.exists():
        shutil.rmtree(root)
    staging = root.with_name(root.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    messages = max(1, round(events / EVENTS_PER_MESSAGE))
    first_day = LAST_DAY - dt.timedelta(days=days - 1)
    s = int(seed)
    con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit,
                                 "preserve_insertion_order": False})
    unif = uniform(s)
    create_accounts(con, accounts, messages, 5, s)
    total_weight = create_providers(con)
    con.execute(f"""
        CREATE TEMP TABLE m AS
        SELECT a.account_id, a.first_i + j AS i,
               (hash(a.account_id, j, {s}, 3) % {days})::INT AS d,
               (hash(a.account_id, j, {s}, 4) % a.list_size)::BIGINT AS r
        FROM acct2 a, LATERAL (SELECT unnest(range(a.n)) AS j)""")
    first = first_day.isoformat()
    # one row per event kind of a message, then the events that happen
    con.execute(f"""
        CREATE TEMP VIEW ev AS
        WITH msg AS (
          SELECT m.*, md5(m.account_id::VARCHAR || ':' || m.r::VARCHAR) AS recipient,
                 p.provider, p.domain,
                 {unif('m.i', 6)} AS u1, {unif('m.i', 7)} AS u2, {unif('m.i', 8)} AS u3,
                 {unif('m.i', 9)} AS u4
          FROM m JOIN prov p ON hash(m.account_id, m.r, {s}, 10) % {total_weight}
                               BETWEEN p.lo AND p.hi - 1),
        kinds AS (SELECT * FROM (VALUES (0), (1), (2), (3), (4), (5)) k(k))
        SELECT msg.account_id, msg.i, k.k, msg.recipient, msg.provider, msg.domain,
               msg.u1, msg.u2, msg.u3, msg.u4,
               DATE '{first}' + msg.d + CASE WHEN k.k >= 2 THEN (hash(msg.i, k.k) % 4)::INT
                                             ELSE 0 END AS day
        FROM msg, kinds k
        WHERE k.k = 0 OR k.k = 1
           OR (k.k = 2 AND msg.u1 >= 0.015 AND msg.u2 < 0.35)
           OR (k.k = 3 AND msg.u1 >= 0.015 AND msg.u2 < 0.10)
           OR (k.k = 4 AND msg.u1 >= 0.015 AND msg.u3 < 0.04)
           OR (k.k = 5 AND msg.u1 >= 0.015 AND msg.u4 < 0.0005)""")
    ingested = "TIMESTAMPTZ '2026-11-20 00:30:00+00'"
    con.execute(f"""
        CREATE TEMP VIEW rows AS
        WITH e AS (
          SELECT account_id,
                 substr(md5(i::VARCHAR || ':' || k::VARCHAR || ':{s}'), 1, 22) AS event_id,
                 substr(md5(i::VARCHAR), 1, 22) || '.filterdrecv-6d4d7c4b59-x2xkz-1-'
                   || substr(md5(i::VARCHAR || 'f'), 1, 8) || '-7.0' AS message_id,
                 CASE k WHEN 0 THEN 'processed'
                        WHEN 1 THEN CASE WHEN u1 < 0.015 THEN 'bounce' ELSE 'delivered' END
                        WHEN 2 THEN 'open' WHEN 3 THEN 'open' WHEN 4 THEN 'click'
                        ELSE 'spamreport' END AS event,
                 day, recipient, domain, provider, k, u1, u2, i
          FROM ev WHERE day <= DATE '{LAST_DAY.isoformat()}')
        SELECT account_id, event_id, message_id, event,
               day::TIMESTAMPTZ + INTERVAL (hash(i, k, 11) % 86400) SECOND AS ts, day,
               recipient, domain, provider,
               CASE WHEN event = 'bounce' THEN CASE WHEN u1 < 0.004 THEN 'blocked'
                                                    ELSE 'bounce' END END AS bounce_type,
               CASE WHEN event = 'bounce' THEN CASE WHEN u1 < 0.004 THEN 'Reputation'
                    WHEN u1 < 0.010 THEN 'Invalid Address' ELSE 'Technical' END END
                 AS bounce_class,
               CASE WHEN event = 'bounce' THEN CASE WHEN u1 < 0.004 THEN '5.7.1'
                    WHEN u1 < 0.010 THEN '5.1.1' ELSE '4.4.7' END END AS status,
               event = 'open' AND u2 < 0.09 AS machine_open,
               {ingested} AS ingested_at, NULL::VARCHAR AS raw
        FROM e""")
    con.execute(f"""
        COPY (SELECT * FROM rows
              UNION ALL
              SELECT * REPLACE ({ingested} + INTERVAL 1 HOUR AS ingested_at) FROM rows
              WHERE hash(event_id, 12) % 100 = 0)
        TO '{staging}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd,
                        ROW_GROUP_SIZE 1000000, FILE_SIZE_BYTES '256MB')""")
    count = con.execute(f"SELECT count(*) FROM read_parquet('{staging}/*/*.parquet')"
                        ).fetchone()[0]
    con.close()
    stamp = int(time.time() * 1000)
    for folder in sorted(staging.iterdir()):
        target = root / "events" / folder.name
        target.mkdir(parents=True)
        for n, part in enumerate(sorted(folder.glob("*.parquet"))):
            os.rename(part, target / f"compact-{stamp:013d}-{uuid.uuid4().hex}-{n}.parquet")
    shutil.rmtree(staging)
    return int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    n = make_lake(args.path, args.events, accounts=args.accounts, days=args.days,
                  seed=args.seed)
    print(f"{n:,} events in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
