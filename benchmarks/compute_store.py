"""A synthetic DuckDB event store for benchmarks/compute.py, written by DuckDB SQL.

    .venv/bin/python benchmarks/compute_store.py EVENTS PATH [--accounts N] [--days N] [--seed N]

The file is what ``seqscore.storage.duckdb_events.DuckDBEventStore`` keeps after a full
``compact`` (rows in (day, account) order), minus that compaction: 1 % of the events are
stored twice. Deterministic for (events, accounts, days, seed): every value is drawn
from DuckDB's ``hash()`` of row numbers, so the whole build is vectorised (50 million
events in a few minutes on 2 cores; a Python loop would take hours). The mix follows
the demo's healthy-newsletter profile (``seqscore.demo.profiles``) and SendGrid streams:

* accounts: log-normal volumes (sigma 1.5) over the accounts; each account mails a
  list of one address per 6 of its messages (about weekly over 60 days); 55 % of the
  list engages at all, 30 % reads through Apple MPP; recipients are 32-hex-digit
  hashes (ingest's HMAC length); ~100 providers, gmail 32 %, microsoft 18 %, yahoo
  12 %, apple 8 %, the rest Zipf-spread; volume on Saturday and Sunday is 70 %;
* per message: ``processed``; ``delivered`` 98.8 %, else a bounce (Invalid Address
  5.1.1 0.6 %, blocked Reputation 0.3 %, Content 0.03 %, Technical otherwise);
  ``deferred`` 2 %; a human ``open`` for 30 % of delivered messages (engaged
  recipients only), a second one for 35 % of those; a machine open for 92 % of
  delivered messages to MPP readers; ``click`` 3.5 %; ``spamreport`` 0.02 %;
  ``unsubscribe`` 0.15 %; engagement lands the same day (70 %) or up to 3 days later;
* ``event_id`` 22 characters, ``message_id`` SendGrid's long form, ``raw`` null;
  ``ingested_at`` five minutes after ``ts`` (the copies an hour later).

A message gives ~2.72 events; the store holds about ``EVENTS`` events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import duckdb
from synthetic_senders import create_accounts, create_providers, uniform

from seqscore.storage.duckdb_events import DuckDBEventStore

LAST_DAY = dt.date(2026, 11, 24)
EVENTS_PER_MESSAGE = 2.72
#: Share of drawn messages kept: weekend days keep 70 %.
KEPT = 1 - 2 / 7 * 0.3


#: Send days generated (and sorted) per INSERT.
SLICE_DAYS = 10


def make_store(path: Path, events: int, *, accounts: int = 10_000, days: int = 60,
               seed: int = 1, threads: int = 2, memory_limit: str = "8GB") -> int:
    """Write the store at ``path`` (replacing it); returns its number of events."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    DuckDBEventStore(path).close()  # the events table, exactly as the product creates it
    messages = max(1, round(events / EVENTS_PER_MESSAGE / KEPT))
    first_day = LAST_DAY - dt.timedelta(days=days - 1)
    s = int(seed)
    con = duckdb.connect(str(path), config={"threads": threads, "memory_limit": memory_limit,
                                            "preserve_insertion_order": False})
    unif = uniform(s)
    create_accounts(con, accounts, messages, 6, s)
    total_weight = create_providers(con)
    # send days: uniform over the period, weekend days kept with probability 0.7
    first = first_day.isoformat()
    con.execute(f"""
        CREATE TEMP TABLE m AS
        SELECT account_id, i, d, r FROM (
          SELECT a.account_id, a.first_i + j AS i,
                 (hash(a.account_id, j, {s}, 3) % {days})::INT AS d,
                 (hash(a.account_id, j, {s}, 4) % a.list_size)::BIGINT AS r,
                 {unif('a.first_i + j', 5)} AS keep
          FROM acct2 a, LATERAL (SELECT unnest(range(a.n)) AS j))
        WHERE keep < 0.7 OR isodow(DATE '{first}' + d) <= 5""")
    con.execute(f"""
        CREATE TEMP VIEW ev AS
        WITH msg AS (
          SELECT m.*, md5(m.account_id::VARCHAR || ':' || m.r::VARCHAR)[1:32] AS recipient,
                 p.provider, p.domain,
                 {unif('m.account_id * 1000003 + m.r', 20)} < 0.55 AS engaged_r,
                 {unif('m.account_id * 1000003 + m.r', 21)} < 0.30 AS mpp_r,
                 {unif('m.i', 6)} AS u1, {unif('m.i', 7)} AS u2, {unif('m.i', 8)} AS u3,
                 {unif('m.i', 9)} AS u4, {unif('m.i', 10)} AS u5, {unif('m.i', 11)} AS u6
          FROM m JOIN prov p ON hash(m.account_id, m.r, {s}, 10) % {total_weight}
                               BETWEEN p.lo AND p.hi - 1
          WHERE m.d BETWEEN getvariable('send_lo') AND getvariable('send_hi')),
        kinds AS (SELECT * FROM range(9) k(k))
        SELECT msg.*, k.k,
               DATE '{first}' + msg.d + CASE WHEN k.k >= 3 THEN (CASE
                   WHEN hash(msg.i, k.k) % 100 < 70 THEN 0 WHEN hash(msg.i, k.k) % 100 < 88
                   THEN 1 WHEN hash(msg.i, k.k) % 100 < 96 THEN 2 ELSE 3 END) ELSE 0 END AS day
        FROM msg, kinds k
        WHERE k.k <= 1
           OR (k.k = 2 AND msg.u5 < 0.02)
           OR (msg.u1 >= 0.012 AND (
                  (k.k = 3 AND msg.engaged_r AND msg.u2 < 0.30 / 0.55)
               OR (k.k = 4 AND msg.engaged_r AND msg.u2 < 0.30 / 0.55 AND msg.u3 < 0.35)
               OR (k.k = 5 AND msg.mpp_r AND msg.u4 < 0.92)
               OR (k.k = 6 AND msg.engaged_r AND msg.u2 < 0.035 / 0.55)
               OR (k.k = 7 AND msg.u6 < 0.0002)
               OR (k.k = 8 AND msg.u6 >= 0.0002 AND msg.u6 < 0.0017)))""")
    con.execute(f"""
        CREATE TEMP VIEW rows AS
        WITH e AS (
          SELECT account_id,
                 md5(i::VARCHAR || ':' || k::VARCHAR || ':{s}')[1:22] AS event_id,
                 md5(i::VARCHAR)[1:22] || '.filterdrecv-6d4d7c4b59-x2xkz-1-'
                   || md5(i::VARCHAR || 'f')[1:8] || '-7.0' AS message_id,
                 CASE k WHEN 0 THEN 'processed'
                        WHEN 1 THEN CASE WHEN u1 < 0.012 THEN 'bounce' ELSE 'delivered' END
                        WHEN 2 THEN 'deferred' WHEN 3 THEN 'open' WHEN 4 THEN 'open'
                        WHEN 5 THEN 'open' WHEN 6 THEN 'click' WHEN 7 THEN 'spamreport'
                        ELSE 'unsubscribe' END AS event,
                 day, recipient, domain, provider, k, u1, i
          FROM ev WHERE day <= DATE '{LAST_DAY.isoformat()}')
        SELECT account_id, event_id, message_id, event,
               day::TIMESTAMPTZ + INTERVAL (hash(i, k, 11) % 86400) SECOND AS ts, day,
               recipient, domain, provider,
               CASE WHEN event = 'bounce' THEN CASE WHEN u1 < 0.003 THEN 'blocked'
                                                    ELSE 'bounce' END END AS bounce_type,
               CASE WHEN event = 'bounce' THEN CASE WHEN u1 < 0.003 THEN 'Reputation'
                    WHEN u1 < 0.0033 THEN 'Content' WHEN u1 < 0.0093 THEN 'Invalid Address'
                    ELSE 'Technical' END END AS bounce_class,
               CASE WHEN event = 'bounce' THEN CASE WHEN u1 < 0.0033 THEN '5.7.1'
                    WHEN u1 < 0.0093 THEN '5.1.1' ELSE '4.4.7' END END AS status,
               k = 5 AS machine_open,
               day::TIMESTAMPTZ + INTERVAL (hash(i, k, 11) % 86400 + 300) SECOND
                 AS ingested_at,
               NULL::VARCHAR AS raw
        FROM e""")
    # in slices of send days: sorting all 50M rows at once ran out of 8 GB
    for lo in range(0, days, SLICE_DAYS):
        con.execute(f"SET VARIABLE send_lo = {lo}")
        con.execute(f"SET VARIABLE send_hi = {lo + SLICE_DAYS - 1}")
        con.execute("""
            INSERT INTO events
            SELECT * FROM (SELECT * FROM rows
                           UNION ALL
                           SELECT * REPLACE (ingested_at + INTERVAL 1 HOUR AS ingested_at)
                           FROM rows WHERE hash(event_id, 12) % 100 = 0)
            ORDER BY day, account_id""")
    con.execute("CHECKPOINT")
    count = int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
    con.close()
    return count


def make_subset(source: Path, path: Path, every: int) -> int:
    """Write at ``path`` the events of every ``every``-th account of the store at
    ``source`` (account_id % every == 0): a subset with the same per-account volumes."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    DuckDBEventStore(path).close()
    con = duckdb.connect(str(path), config={"threads": 2, "memory_limit": "2GB",
                                            "preserve_insertion_order": False})
    con.execute("ATTACH ? AS source (READ_ONLY)", [str(source)])
    con.execute("INSERT INTO events SELECT * FROM source.events WHERE account_id % ? = 0",
                [int(every)])
    con.execute("CHECKPOINT")
    count = int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
    con.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("events", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--subset-of", type=Path, default=None,
                        help="instead: copy every --every-th account of this store")
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    if args.subset_of is not None:
        n = make_subset(args.subset_of, args.path, args.every)
        print(f"{n:,} events in {time.monotonic() - started:.1f} s")
        return
    n = make_store(args.path, args.events, accounts=args.accounts, days=args.days,
                   seed=args.seed)
    print(f"{n:,} events in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
