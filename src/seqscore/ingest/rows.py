"""Parsed rows and the ``EVENT_SCHEMA`` table they become."""

from __future__ import annotations

import pyarrow as pa

from seqscore.event_schema import EVENT_SCHEMA

#: One parsed event: every column of ``EVENT_SCHEMA`` but the two the caller
#: gives for the whole batch (``account_id``, ``ingested_at``), in schema order:
#: (event_id, message_id, event, ts in µs since the epoch, day in days since the
#: epoch, recipient, domain, provider, bounce_type, bounce_class, status,
#: machine_open, raw).
Row = tuple[str, str | None, str, int, int, str | None, str | None, str | None,
            str | None, str | None, str | None, bool, str | None]

_UTC_US = pa.timestamp("us", tz="UTC")
_ROW_TYPE = pa.struct(
    [field for field in EVENT_SCHEMA if field.name not in ("account_id", "ingested_at")])


def to_table(rows: list[Row], *, account_id: int, ingested_us: int) -> pa.Table:
    """The ``EVENT_SCHEMA`` table of ``rows``; ``ingested_us`` is µs since the epoch."""
    count = len(rows)
    # One conversion of all the tuples in C++, then split into columns.
    columns = pa.array(rows, type=_ROW_TYPE).flatten()
    return pa.Table.from_arrays(
        [
            pa.repeat(pa.scalar(account_id, pa.int64()), count),
            *columns[:-1],
            pa.repeat(pa.scalar(ingested_us, _UTC_US), count),
            columns[-1],
        ],
        schema=EVENT_SCHEMA,
    )
