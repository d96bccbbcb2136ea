"""How fast DuckDB alone can turn a JSON Lines file of events into stored rows: a floor.

``benchmarks/ingest.py`` calls ``measure_floors`` on its import file, in the same run
as the receiver, the straightforward receiver and ``seqscore import``, so that the
goals can be set against what this machine can do at all without seqscore's Python.
None of this is seqscore code: each variant is one DuckDB statement that reads the
file with DuckDB's own JSON reader (C++, every core) and writes a table into a new
DuckDB file, and nothing else (no HTTP, no batches, no de-duplication, no counts, no
rejects file):

- ``reader``: DuckDB reads the nine column fields of every line and counts them
  (the reader alone: nothing is stored).
- ``least``: the least any store of these events must do, and less than the spec
  asks: the columns as they come, the recipient's HMAC-SHA256 (two SHA-256 in SQL),
  its domain, the day, and ``raw`` as the whole line with the address replaced,
  inserted into a table. No quirk is handled: a string timestamp, say, is NULL.
- ``exact``: ``least`` plus what an exact DuckDB-native normaliser needs at the
  least: the test that picks the lines it may take (plain events: canonical JSON
  without escapes, no repeated key, a known event name, an integer timestamp in
  range, an address, ids without ``@``, the lenient fields in their plain forms,
  no address left in ``raw``, ``raw`` under the cap) and ``raw`` in the stored form
  (the fields without a column in ``payload.Event``'s order, then the custom args
  in the order sent, ``category`` as an array). The lines it may not take would
  still need the Python parser; that is not counted.

docs/performance.md ("Ingest", "What this machine can do at all") reads the figures.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import duckdb
import msgspec
from serving import BenchError

from seqscore.ingest.normalise import BOUNCE_CLASS_SPELLINGS, EVENT_NAMES, MAX_TS_US
from seqscore.ingest.payload import Event

#: Fields of ``Event`` that become columns, then the ones kept in ``raw``.
_NAMES = [field.encode_name for field in msgspec.structs.fields(Event)]
COLUMN_FIELDS = _NAMES[:9]
RAW_FIELDS = _NAMES[9:]
#: The fields kept in ``raw`` that are read leniently (normalise.lenient_int, category).
_LENIENT_FIELDS = RAW_FIELDS[:4]
#: Any 32-byte key: the floor measures the work, not a secret.
_KEY = bytes(range(32))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(items: list[str]) -> str:
    return "[" + ", ".join(_quote(item) for item in items) + "]"


def _hmac_sql(address: str) -> str:
    """HMAC-SHA256 (RFC 2104) of ``address`` under ``_KEY``, its first 32 hex digits."""
    key = _KEY.ljust(64, b"\0")
    inner = bytes(byte ^ 0x36 for byte in key).hex()
    outer = bytes(byte ^ 0x5C for byte in key).hex()
    return (f"left(sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') "
            f"|| encode({address})))), 32)")


def _source(path: Path) -> str:
    struct = "{" + ", ".join(
        f'"{name}": "{"VARCHAR" if name in ("email", "event") else "JSON"}"'
        for name in COLUMN_FIELDS + _LENIENT_FIELDS) + "}"
    return (f"(SELECT *, lower(email) AS address FROM (SELECT line, "
            f"unnest(from_json(line, '{struct}')) FROM (SELECT json AS line "
            f"FROM read_ndjson_objects({_quote(str(path))}))))")


def _columns() -> str:
    names = "MAP {" + ", ".join(f"{_quote(a)}: {_quote(b)}" for a, b in EVENT_NAMES.items()) + "}"
    return f"""
  trim(sg_event_id, '"') AS event_id, trim(sg_message_id, '"') AS message_id,
  {names}[event] AS event, CAST(timestamp AS BIGINT) * 1000000 AS ts_us,
  CAST(timestamp AS BIGINT) // 86400 AS day, {_hmac_sql('address')} AS recipient,
  string_split(address, '@')[-1] AS domain, trim(type, '"') AS bounce_type,
  trim(bounce_classification, '"') AS bounce_class, trim(status, '"') AS status,
  coalesce(sg_machine_open = 'true', false) AS machine_open"""


def reader_sql(path: Path) -> str:
    columns = ", ".join(f"{_quote(name)}: 'JSON'" for name in COLUMN_FIELDS)
    counts = ", ".join(f'count("{name}")' for name in COLUMN_FIELDS)
    return (f"SELECT count(*), {counts} FROM read_json({_quote(str(path))}, "
            f"format = 'newline_delimited', columns = {{{columns}}})")


def least_sql(path: Path) -> str:
    return f"""CREATE TABLE events AS SELECT {_columns()},
  replace(line, address, '[recipient]') AS raw
FROM {_source(path)}"""


def exact_sql(path: Path, cap_bytes: int = 4096) -> str:
    rank = "MAP {" + ", ".join(f"{_quote(name)}: {i}" for i, name in enumerate(RAW_FIELDS)) + "}"
    lenient = ("regexp_full_match({0}, '(0|-?[1-9][0-9]{{0,17}})|\"[+-]?[0-9]{{1,17}}\"')")
    plain_id = "regexp_full_match({0}, '\"[!-$&-?A-~]+\"')"
    raw = f"""'{{' || array_to_string(list_transform(list_sort(list_transform(
        list_filter(entries, lambda e: NOT list_contains({_list(COLUMN_FIELDS)}, e[1])),
        lambda e, i: {{'rank': coalesce({rank}[e[1]], 1000 + i), 'key': e[1], 'value': e[2]}})),
      lambda e: to_json(e.key) || ':' || CASE WHEN e.key = 'category'
        AND json_type(e.value) = 'VARCHAR' THEN '[' || e.value || ']' ELSE e.value END),
      ',') || '}}'"""
    names = _list(list(EVENT_NAMES))
    return f"""CREATE TABLE events AS
WITH entries AS (
  SELECT *, list_zip(json_keys(line), json_extract(line, '$.*')) AS entries FROM {_source(path)}
), built AS (
  SELECT *, {raw} AS raw_text FROM entries
)
SELECT {_columns()}, CASE WHEN raw_text <> '{{}}' THEN raw_text END AS raw,
  position('\\' IN line) = 0 AND json(line) = line
  AND len(entries) = len(list_distinct(list_transform(entries, lambda e: e[1])))
  AND list_contains({names}, event)
  AND regexp_full_match(timestamp, '0|[1-9][0-9]{{0,11}}')
  AND CAST(timestamp AS BIGINT) <= {MAX_TS_US // 1_000_000}
  AND regexp_full_match(address, '[!-~]*[^@]@[^@]*[!-~]')
  AND {plain_id.format('sg_event_id')}
  AND (sg_message_id IS NULL OR {plain_id.format('sg_message_id')})
  AND (type IS NULL OR (event = 'bounce' AND type IN ('"bounce"', '"blocked"')))
  AND (bounce_classification IS NULL
       OR list_contains({_list(['"' + c + '"' for c in BOUNCE_CLASS_SPELLINGS])},
                        lower(bounce_classification)))
  AND (status IS NULL OR regexp_full_match(status, '"[ -$&-?A-~]+"'))
  AND (sg_machine_open IS NULL OR sg_machine_open IN ('true', 'false'))
  AND (category IS NULL OR json_type(category) = 'VARCHAR' OR list_bool_and(list_transform(
       json_extract(category, '$[*]'), lambda c: json_type(c) = 'VARCHAR')))
  AND (tls IS NULL OR {lenient.format('tls')})
  AND (attempt IS NULL OR {lenient.format('attempt')})
  AND (asm_group_id IS NULL OR {lenient.format('asm_group_id')})
  AND position(address IN lower(raw_text)) = 0 AND position('%40' IN lower(raw_text)) = 0
  AND strlen(raw_text) <= {cap_bytes} AS plain
FROM built"""


def _run(work_dir: Path, name: str, sql: str, lines: int, *,
         counts_plain: bool = False) -> dict[str, Any]:
    """Run one variant's statement into a new DuckDB file; its first value is the rows
    it read (``reader``) or stored (``CREATE TABLE ... AS`` answers its row count)."""
    path = work_dir / f"floor-{name}.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute(f"SET threads = {os.cpu_count() or 1}")
        con.execute("SET memory_limit = '1GB'")
        con.execute("SET enable_progress_bar = false")
        cpu0 = time.process_time()
        started = time.perf_counter()
        (rows, *_) = con.execute(sql).fetchone() or (0,)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        plain = (con.execute("SELECT count(*) FILTER (plain) FROM events").fetchone() or (0,)
                 )[0] if counts_plain else None
    finally:
        con.close()
        path.unlink(missing_ok=True)
        Path(str(path) + ".wal").unlink(missing_ok=True)
    if rows != lines:
        raise BenchError(f"floor {name}: {rows:,} rows from {lines:,} lines")
    return {"name": name, "rows": rows, "seconds": elapsed, "rate": rows / elapsed,
            "cpu_us": cpu / rows * 1e6, "plain": plain}


def measure_floors(path: Path, lines: int, work_dir: Path) -> list[dict[str, Any]]:
    """The three variants (module doc) on the JSON Lines file ``path`` of ``lines``
    events, each writing into a new DuckDB file in ``work_dir``."""
    return [_run(work_dir, "reader", reader_sql(path), lines),
            _run(work_dir, "least", least_sql(path), lines),
            _run(work_dir, "exact", exact_sql(path), lines, counts_plain=True)]
