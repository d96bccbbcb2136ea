"""The senders of the synthetic event stores (benchmarks/compute_store.py and
benchmarks/scaleout_lake.py): accounts with log-normal volumes and the mailbox
providers their recipients use, as DuckDB temp tables.

Every value is drawn from DuckDB's ``hash()`` of row numbers and the seed, so the
tables are deterministic for their arguments:

* ``acct2 (account_id, n, list_size, first_i)``: ``n`` messages per account, log-normal
  (sigma 1.5) over ``accounts`` accounts, summing to about ``messages``; a list of
  one address per ``messages_per_address`` messages (at least 20); ``first_i``, the
  account's first message number;
* ``prov (provider, domain, lo, hi)``: ~100 providers, gmail 32 %, microsoft 18 %,
  yahoo 12 %, apple 8 %, the rest Zipf-spread; a recipient's provider is the row
  whose [lo, hi) holds a hash of it modulo ``create_providers``' total weight.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

#: SQL of a uniform draw in (0, 1) from a hash of ``{x}``, the seed ``{s}`` and a key ``{k}``.
_UNIFORM = "((hash({x}, {s}, {k}) % 1000000)::DOUBLE + 0.5) / 1000000"


def uniform(seed: int) -> Callable[[str, int], str]:
    """``unif(x, k)``: the SQL of a uniform draw in (0, 1) for the expression ``x`` and
    the key ``k`` (one key per quantity drawn), for ``seed``."""
    def unif(x: str, k: int) -> str:
        return _UNIFORM.format(x=x, s=int(seed), k=k)
    return unif


def create_accounts(con: duckdb.DuckDBPyConnection, accounts: int, messages: int,
                    messages_per_address: int, seed: int) -> None:
    """Create the temp table ``acct2`` (see the module docstring)."""
    unif = uniform(seed)
    con.execute(f"""
        CREATE TEMP TABLE acct AS
        WITH z AS (SELECT a AS account_id,
                          sqrt(-2 * ln({unif('a', 1)})) * cos(2 * pi() * {unif('a', 2)}) AS z
                   FROM range(1, {accounts} + 1) r(a)),
             w AS (SELECT account_id, exp(1.5 * z) AS w FROM z)
        SELECT account_id, greatest(1, round({messages} * w / sum(w) OVER ()))::BIGINT AS n
        FROM w""")
    con.execute(f"""CREATE TEMP TABLE acct2 AS SELECT account_id, n,
                   greatest(20, n // {int(messages_per_address)})::BIGINT AS list_size,
                   sum(n) OVER (ORDER BY account_id) - n AS first_i FROM acct""")


def create_providers(con: duckdb.DuckDBPyConnection) -> int:
    """Create the temp table ``prov`` (see the module docstring); returns the total
    weight a recipient's hash is taken modulo."""
    big = [("gmail", "gmail.com", 3200), ("microsoft", "outlook.com", 1800),
           ("yahoo", "yahoo.com", 1200), ("apple", "icloud.com", 800)]
    rest = [(f"isp{k:02d}.example", f"isp{k:02d}.example", round(3000 / (k + 1) / 5.19))
            for k in range(96)]
    rows, lo = [], 0
    for name, domain, weight in big + rest:
        rows.append(f"('{name}', '{domain}', {lo}, {lo + max(weight, 1)})")
        lo += max(weight, 1)
    con.execute(f"""CREATE TEMP TABLE prov AS SELECT * FROM (VALUES {', '.join(rows)})
                    p(provider, domain, lo, hi)""")
    return lo
