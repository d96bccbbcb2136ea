"""The window counts the way a data analyst would write them with pandas: load the
events once, then for each day slice the windows, group, count distinct.

Used by benchmarks/compute.py as the baseline (speed) and as an independent
implementation of spec/scoring-model.md (its results must equal seqscore's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from seqscore.types import ProviderCounts, WindowCounts

EPOCH = dt.date(1970, 1, 1)
SHORT, LONG, ENGAGEMENT, TOP = 7, 30, 90, 5


def load_events(path: Path, first: dt.date, last: dt.date) -> pd.DataFrame:
    """The events of ``first`` .. ``last`` from a seqscore DuckDB event store file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        frame: pd.DataFrame = con.execute(
            "SELECT account_id, event_id, message_id, event, "
            "(day - DATE '1970-01-01')::BIGINT AS dn, recipient, provider, bounce_type, "
            "bounce_class, status, machine_open "
            "FROM events WHERE day BETWEEN ? AND ?", [first, last]).df()
    finally:
        con.close()
    return frame


def window_counts(events: pd.DataFrame, days: Sequence[dt.date],
                  accounts: Sequence[int]) -> list[WindowCounts]:
    """``WindowCounts`` of every account on every day (default windows 7/30/90, top 5)."""
    ev = events
    counted = ev[ev.event.isin(["processed", "delivered", "spamreport", "bounce"])]
    counted = counted.drop_duplicates(["account_id", "event_id"]).copy()
    bounce = counted.event == "bounce"
    btype, bclass = counted.bounce_type, counted.bounce_class
    status = counted.status.fillna("")
    invalid = bounce & (btype.isna() | (btype == "bounce")) & (
        (bclass == "Invalid Address") | (bclass.isna() & status.str.startswith("5.1.")))
    block = bounce & (btype.isna() | btype.isin(["bounce", "blocked"])) & bclass.isin(
        ["Reputation", "Content"])
    counted["kind"] = np.select(
        [counted.event == "processed", counted.event == "delivered",
         counted.event == "spamreport", invalid, block],
        ["processed", "delivered", "spam", "invalid", "block"], default="")
    counted = counted[counted.kind != ""]
    human = (ev.event == "open") & ~ev.machine_open.fillna(False).astype(bool)
    opens = ev[human & ev.message_id.notna()][["account_id", "provider", "message_id", "dn"]]
    engaged = ev[(human | (ev.event == "click")) & ev.recipient.notna()][
        ["account_id", "recipient", "dn"]]
    sent = ev[(ev.event == "processed") & ev.recipient.notna()][["account_id", "recipient", "dn"]]
    index = pd.Index(sorted(set(accounts)), name="account_id")
    out: list[WindowCounts] = []
    for day in sorted(set(days)):
        d = (day - EPOCH).days

        def within(frame: pd.DataFrame, n: int, d: int = d) -> pd.DataFrame:
            return frame[(frame.dn > d - n) & (frame.dn <= d)]

        def kinds(n: int) -> pd.DataFrame:
            table = within(counted, n).groupby(["account_id", "kind"]).size().unstack(
                fill_value=0)
            return table.reindex(index=index, columns=["processed", "delivered", "invalid",
                                                       "block", "spam"], fill_value=0)

        def distinct(frame: pd.DataFrame, keys: list[str]) -> pd.Series[Any]:
            return frame.drop_duplicates(keys).groupby("account_id").size().reindex(
                index, fill_value=0)

        ks, kl = kinds(SHORT), kinds(LONG)
        long_opens = within(opens, LONG)
        opened = distinct(long_opens, ["account_id", "message_id"])
        eng_s = distinct(within(engaged, SHORT), ["account_id", "recipient"])
        eng_l = distinct(within(engaged, LONG), ["account_id", "recipient"])
        sent_pairs = within(sent, LONG)[["account_id", "recipient"]].drop_duplicates()
        sent_l = sent_pairs.groupby("account_id").size().reindex(index, fill_value=0)
        eng_pairs = within(engaged, ENGAGEMENT)[["account_id", "recipient"]].drop_duplicates()
        both = sent_pairs.merge(eng_pairs, on=["account_id", "recipient"]).groupby(
            "account_id").size().reindex(index, fill_value=0)
        providers = _providers(within(counted, LONG), long_opens, d)
        for a in index:
            out.append(WindowCounts(
                int(a), day, int(ks.at[a, "processed"]), int(kl.at[a, "processed"]),
                int(ks.at[a, "delivered"]), int(kl.at[a, "delivered"]), int(opened[a]),
                int(ks.at[a, "invalid"]), int(kl.at[a, "invalid"]), int(ks.at[a, "block"]),
                int(kl.at[a, "block"]), int(ks.at[a, "spam"]), int(kl.at[a, "spam"]),
                int(eng_s[a]), int(eng_l[a]), int(sent_l[a]), int(both[a]),
                providers.get(int(a), ())))
    return out


def _providers(counted_long: pd.DataFrame, opens_long: pd.DataFrame,
               d: int) -> dict[int, tuple[ProviderCounts, ...]]:
    delivered = counted_long[(counted_long.kind == "delivered") & counted_long.provider.notna()]
    keys = ["account_id", "provider"]
    dl = delivered.groupby(keys).size().rename("delivered_long")
    ds = delivered[delivered.dn > d - SHORT].groupby(keys).size().rename("delivered_short")
    o = opens_long[opens_long.provider.notna()].drop_duplicates(
        ["account_id", "provider", "message_id"])
    ol = o.groupby(keys).size().rename("opened_long")
    os_ = (opens_long[(opens_long.dn > d - SHORT) & opens_long.provider.notna()]
           .drop_duplicates(["account_id", "provider", "message_id"])
           .groupby(keys).size().rename("opened_short"))
    table = pd.concat([dl, ds, ol, os_], axis=1).fillna(0).astype("int64")
    table = table[table.delivered_long > 0].reset_index()
    table = table.sort_values(["account_id", "delivered_long", "provider"],
                              ascending=[True, False, True])
    table = table.groupby("account_id").head(TOP)
    result: dict[int, list[ProviderCounts]] = {}
    for row in table.itertuples(index=False):
        result.setdefault(int(row.account_id), []).append(ProviderCounts(
            str(row.provider), int(row.delivered_short), int(row.opened_short),
            int(row.delivered_long), int(row.opened_long)))
    return {a: tuple(p) for a, p in result.items()}
