"""compute: turns the events of an account's windows into counts (``WindowCounts``).

One Ibis definition of the window aggregation runs on every event-store engine
(DuckDB embedded, Spark for scale-out); see ``aggregate``.
"""

from seqscore.compute.aggregate import (
    ACCOUNT_COUNT_COLUMNS,
    EVENTS_TABLE,
    EXPAND_MAX_DAYS,
    PROVIDER_COUNT_COLUMNS,
    Strategy,
    WindowSpec,
    compute_window_counts,
    provider_counts_expr,
    window_counts_expr,
)

__all__ = [
    "ACCOUNT_COUNT_COLUMNS",
    "EVENTS_TABLE",
    "EXPAND_MAX_DAYS",
    "PROVIDER_COUNT_COLUMNS",
    "Strategy",
    "WindowSpec",
    "compute_window_counts",
    "provider_counts_expr",
    "window_counts_expr",
]
