"""The window aggregation: normalised events in, one ``WindowCounts`` per (account, day) out.

One Ibis expression defines it, so the same definition compiles for DuckDB (the
embedded store) and for PySpark (the scale-out store); the runner at the end
only executes it and packs rows into ``WindowCounts``. On DuckDB the runner
compiles the expression once per shape, with the requested days and accounts as
parameter tables (``PARAMETER_TABLES``), because building and compiling it
(seconds) costs more than running it on a day's facts. The expression returns
counts only, never ratios (scoring divides, exactly, in Python), and uses no
hashes: every distinct count is over the string columns themselves.

How (spec/scoring-model.md, Counts and Windows):

1. Facts (``seqscore.compute.facts``). Counted events (processed, delivered,
   bounces, spam) are de-duplicated on (account_id, event_id) and rolled up per
   (account, provider, day); human opens are reduced to distinct (account,
   provider, message, day); recipients to (account, recipient, day) with
   sent/engaged flags. The expression reads these facts, derived from the events
   on the fly or kept per day (``seqscore.compute.daycache``).
2. Day classes. Days are integer day numbers (days since 1970-01-01 UTC). Two
   days lying in the same windows of every requested day are interchangeable,
   so each event's day is replaced by its class's last day (``_day_classes``):
   one requested day leaves 3 classes of the 90 days read.
3. Windows, by one of two strategies giving identical results:

   * ``expand`` (few days): each fact is joined to the requested days whose
     windows hold it, then plain group-bys count. Cost grows with the number of
     days, so it serves the nightly one-day run.
   * ``timeline`` (many days, a backfill): every count becomes *deltas* on the
     day axis whose running sum per account is the count on each day. An
     additive count ``c`` on day ``d`` adds ``+c`` at ``d`` and ``-c`` at
     ``d + n`` (window of n days). For a distinct count, a key's fact on ``d``
     whose next fact is on ``next`` is the key's first fact in the windows
     ending on ``d .. min(next, d + n) - 1``: ``+1`` at ``d``, ``-1`` at
     ``min(next, d + n)``. Sent-and-engaged recipients use, between two facts
     of a recipient, its last sent and last engaged day so far: being in both
     windows is then an interval test. One pass serves any number of days.

Per-provider counts go the same way per (account, provider), are ranked per
(account, day) and cut to the top N.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import ibis
import ibis.expr.operations as ops
import pyarrow as pa
import pyarrow.compute as pc
from ibis.common.exceptions import IbisError

from seqscore.compute.facts import COUNTED_KINDS, Facts, facts_from_events
from seqscore.types import ProviderCounts, WindowCounts

__all__ = [
    "ACCOUNT_COUNT_COLUMNS", "EVENTS_TABLE", "EXPAND_MAX_DAYS", "PROVIDER_COUNT_COLUMNS",
    "Strategy", "WindowSpec", "compute_window_counts", "fact_ranges", "provider_counts_expr",
    "window_counts_expr", "window_counts_in_chunks", "window_counts_table",
]

#: The event table a backend is read from when the runner is given a backend.
EVENTS_TABLE = "events"
#: Per-account counts: the ``WindowCounts`` fields between ``day`` and ``providers``.
ACCOUNT_COUNT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(WindowCounts))[2:-1]
#: Per-provider counts: the ``ProviderCounts`` fields after ``provider``.
PROVIDER_COUNT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ProviderCounts))[1:]
#: ``auto`` uses ``expand`` up to this many requested days (given as a list), else
#: ``timeline`` (measured: equal near 3 days, expand 2.5x faster for one day).
EXPAND_MAX_DAYS = 3

Strategy = Literal["auto", "expand", "timeline"]

# Events in W_engagement(D), any type: which accounts are listed when none are named.
_PRESENT = "events_engagement"
# Counted event kinds (rolled-up column -> WindowCounts name stem).
_KINDS = {"processed": "processed", "delivered": "delivered", "invalid": "invalid_bounces",
          "block": "block_bounces", "spam": "spam_reports"}
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Window lengths in UTC days (each window ends with, and includes, the day
    scored) and how many providers to keep. Requires 1 <= short <= long <= engagement."""

    short_days: int = 7
    long_days: int = 30
    engagement_days: int = 90
    top_providers: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.short_days <= self.long_days <= self.engagement_days:
            raise ValueError(f"need 1 <= short <= long <= engagement window days: {self}")
        if self.top_providers < 0:
            raise ValueError(f"top_providers must be >= 0: {self}")


# -- small helpers ------------------------------------------------------------------------

def _flag(condition: Any) -> Any:
    """1 where ``condition`` is true, 0 where false or null."""
    return ibis.cases((condition, 1), else_=0)


def _union(parts: Iterable[Any]) -> Any:
    first, *rest = parts
    return first.union(*rest) if rest else first


def _partial(t: Any, keys: Sequence[str], x: Any, columns: Sequence[str], **values: Any) -> Any:
    """Rows (keys..., x, columns...) summed per (keys, x); columns not in ``values`` are 0."""
    rows = t.select(*keys, x=x.cast("int64"), **{c: v.cast("int64") for c, v in values.items()})
    summed = rows.group_by([*keys, "x"]).agg(**{c: rows[c].sum() for c in values})
    return summed.select(*keys, "x", *[
        summed[c] if c in values else ibis.literal(0, "int64").name(c) for c in columns])


def _totals(parts: Any, keys: Sequence[str], columns: Sequence[str], *, running: bool,
            keep_max: Sequence[str] = ()) -> Any:
    """Sum partials per (keys, x); with ``running``, accumulate them over x too.

    ``until`` (running only) is the last day each row's values hold: the day
    before the key's next x, null on its last row.
    """
    agg = parts.group_by([*keys, "x"]).agg(
        **{c: parts[c].max() for c in keep_max}, **{c: parts[c].sum() for c in columns})
    if not running:
        return agg
    cumulative = ibis.cumulative_window(group_by=list(keys), order_by="x")
    return agg.mutate(
        until=agg.x.lead().over(ibis.window(group_by=list(keys), order_by="x")) - 1,
        **{c: agg[c].sum().over(cumulative) for c in columns},
    )


# -- the requested days, and the events they need ------------------------------------------

def _days_table(days: Any) -> Any:
    """The requested days as a table (day: date, dn: int64), one row per distinct day."""
    if isinstance(days, ibis.Table):
        t = days.select("day").distinct()
        return t.mutate(dn=t.day.epoch_days().cast("int64"))
    unique = sorted(set(days))
    if not unique:
        raise ValueError("no days requested")
    return ibis.memtable(pa.table({
        "day": pa.array(unique, pa.date32()),
        "dn": pa.array([(d - _EPOCH).days for d in unique], pa.int64()),
    }))


def _offsets(w: WindowSpec) -> Any:
    """0 .. engagement_days - 1 as a table (k: int64)."""
    return ibis.memtable(pa.table({"k": pa.array(range(w.engagement_days), pa.int64())}))


def _day_classes(t: Any, w: WindowSpec, offsets: Any) -> Any:
    """(dn, cn, k) for every day inside the engagement window of some requested day.

    ``k`` is the day's distance to the nearest requested day on or after it.
    Class boundaries fall on every first day of a window and every day after a
    requested day, so all days of a class lie in the same windows; ``cn`` is the
    class's last day.
    """
    read = t.cross_join(offsets)
    read = read.group_by(dn=read.dn - read.k).agg(k=read.k.min())
    starts = [t.select(b=t.dn - (n - 1)) for n in (w.short_days, w.long_days, w.engagement_days)]
    breaks = _union([t.select(b=t.dn + 1), *starts]).distinct()
    pairs = read.cross_join(breaks)
    pairs = pairs.filter(pairs.b > pairs.dn)
    return pairs.group_by(["dn", "k"]).agg(cn=pairs.b.min() - 1)


@dataclass(frozen=True)
class _Plan:
    """What one expression reads and how: the requested days ``t``, the window spec, the
    strategy, and the day facts (``seqscore.compute.facts``) it counts over."""

    facts: Facts
    days: Any
    t: Any
    accounts: Sequence[int] | ibis.Table | None
    w: WindowSpec
    expand: bool
    offsets: Any

    @property
    def last_dn(self) -> Any:
        if isinstance(self.days, ibis.Table):
            return self.t.dn.max().as_scalar()
        return ibis.literal((max(self.days) - _EPOCH).days, "int64")

    @property
    def first_dn(self) -> Any:
        if isinstance(self.days, ibis.Table):
            return self.t.dn.min().as_scalar()
        return ibis.literal((min(self.days) - _EPOCH).days, "int64")

    def classify(self, facts: Any, window_days: int, columns: Sequence[str]) -> Any:
        """``columns`` of the ``facts`` inside some ``window_days``-day window of a
        requested day, with ``dn`` = their day class and ``k`` (``_day_classes``)."""
        predicates = [facts.dn >= self.first_dn - (window_days - 1), facts.dn <= self.last_dn]
        if self.accounts is not None:
            predicates.append(facts.account_id.isin(_account_ids(self.accounts)))
        f = facts.filter(*predicates)
        f = f.select(*columns, day_number=f.dn)
        classes = _day_classes(self.t, self.w, self.offsets)
        classes = classes.filter(classes.k <= window_days - 1)
        joined = f.join(classes, f.day_number == classes.dn)
        return joined.select(*columns, dn=classes.cn, k=classes.k)

    def targets(self, facts: Any) -> Any:
        """``facts`` (with a class ``dn``) once per requested day x whose engagement
        window holds them, with flags ``s``/``l``: inside the short/long window."""
        w, t = self.w, self.t
        cn = _day_classes(t, w, self.offsets).select("cn").distinct()
        pairs = cn.cross_join(t.select(x="dn"))
        pairs = pairs.filter(pairs.cn <= pairs.x, pairs.cn > pairs.x - w.engagement_days)
        pairs = pairs.mutate(s=_flag(pairs.cn > pairs.x - w.short_days),
                             l=_flag(pairs.cn > pairs.x - w.long_days))
        joined = facts.join(pairs, facts.dn == pairs.cn)
        return joined.select(*[c for c in facts.columns if c != "dn"], "x", "s", "l")


# -- facts, by day class ---------------------------------------------------------------------

def _counted_daily(plan: _Plan) -> Any:
    """Counted events per (account, provider, day class)."""
    f = plan.classify(plan.facts.counted, plan.w.long_days,
                      ["account_id", "provider", *COUNTED_KINDS])
    return f.group_by(["account_id", "provider", "dn"]).agg(
        **{k: f[k].sum() for k in COUNTED_KINDS})


def _human_opens(plan: _Plan) -> Any:
    """Distinct (account, provider, message_id, day class) of human opens."""
    f = plan.classify(plan.facts.opens, plan.w.long_days,
                      ["account_id", "provider", "message_id"])
    return f.select("account_id", "provider", "message_id", "dn").distinct()


def _recipient_events(plan: _Plan) -> Any:
    """Recipients sent to (``processed``, long window) or engaged (human open or click,
    engagement window) per day, with 0/1 columns ``sent``, ``engaged``."""
    w = plan.w
    f = plan.classify(plan.facts.recipients, w.engagement_days,
                      ["account_id", "recipient", "sent", "engaged"])
    f = f.mutate(sent=f.sent * _flag(f.k < w.long_days))
    return f.filter((f.sent == 1) | (f.engaged == 1))


# -- strategy expand: facts joined to the days whose windows hold them ----------------------

def _account_expand(plan: _Plan, daily: Any, opens: Any, presence: Any,
                    columns: Sequence[str]) -> list[Any]:
    key = ["account_id"]
    acc = plan.targets(daily)
    parts = [_partial(acc, key, acc.x, columns, **{
        f"{name}_{size}": acc[kind] * acc[flag] for kind, name in _KINDS.items()
        for size, flag in (("short", "s"), ("long", "l"))})]
    opened = plan.targets(opens)
    opened = opened.filter(opened.l == 1).select("account_id", "message_id", "x").distinct()
    parts.append(_partial(opened, key, opened.x, columns, opened_long=ibis.literal(1)))
    r = plan.targets(_recipient_events(plan))
    # how recently a recipient engaged, as one number (the short window lies inside
    # the long one): 3 in the short window, 2 in the long, 1 in the engagement window
    # only, 0 never; two aggregates instead of four over the nightly's largest group-by
    r = r.group_by(["account_id", "recipient", "x"]).agg(
        sent=(r.sent * r.l).max(), level=(r.engaged * (1 + r.l + r.s)).max())
    parts.append(_partial(
        r, key, r.x, columns, sent_recipients_long=r.sent,
        engaged_recipients_short=_flag(r.level >= 3), engaged_recipients_long=_flag(r.level >= 2),
        sent_engaged_recipients=r.sent * _flag(r.level >= 1)))
    if presence is not None:
        p = plan.targets(presence).select("account_id", "x").distinct()
        parts.append(_partial(p, key, p.x, columns, **{_PRESENT: ibis.literal(1)}))
    return parts


def _provider_expand(plan: _Plan, delivered: Any, opens: Any) -> Any:
    key, cols = ["account_id", "provider"], PROVIDER_COUNT_COLUMNS
    d = plan.targets(delivered)
    o = plan.targets(opens)
    o = o.filter(o.l == 1).group_by([*key, "message_id", "x"]).agg(s=o.s.max())
    parts = [
        _partial(d, key, d.x, cols, delivered_short=d.delivered * d.s,
                 delivered_long=d.delivered * d.l),
        _partial(o, key, o.x, cols, opened_short=o.s, opened_long=ibis.literal(1)),
    ]
    return _totals(_union(parts), key, cols, running=False)


# -- strategy timeline: deltas on the day axis, summed up over days --------------------------

def _first_in_window(facts: Any, group: Sequence[str], key: str, windows: dict[str, int],
                     columns: Sequence[str]) -> list[Any]:
    """Deltas, per ``group``, of counts of distinct ``key`` over windows of ``windows[col]``
    days; ``facts`` has one row per (group, key, dn). See the module docstring."""
    nxt = facts.dn.lead().over(ibis.window(group_by=[*group, key], order_by="dn"))
    t = facts.select(*group, "dn", nxt=nxt)
    plus = _partial(t, group, t.dn, columns, **{c: ibis.literal(1) for c in windows})
    return [plus, *(
        _partial(t, group, ibis.coalesce(ibis.least(t.nxt, t.dn + n), t.dn + n), columns,
                 **{c: ibis.literal(-1)})
        for c, n in windows.items())]


def _account_timeline(plan: _Plan, daily: Any, opens: Any, presence: Any,
                      columns: Sequence[str]) -> list[Any]:
    w, key = plan.w, ["account_id"]
    acc = daily.group_by(["account_id", "dn"]).agg(**{k: daily[k].sum() for k in _KINDS})
    parts = [
        _partial(acc, key, acc.dn, columns, **{f"{name}_{size}": acc[kind]
                                               for kind, name in _KINDS.items()
                                               for size in ("short", "long")}),
        _partial(acc, key, acc.dn + w.short_days, columns,
                 **{f"{name}_short": -acc[kind] for kind, name in _KINDS.items()}),
        _partial(acc, key, acc.dn + w.long_days, columns,
                 **{f"{name}_long": -acc[kind] for kind, name in _KINDS.items()}),
    ]
    messages = opens.select("account_id", "message_id", "dn").distinct()
    parts += _first_in_window(messages, key, "message_id", {"opened_long": w.long_days},
                              columns)
    parts += _recipient_timeline(plan, columns)
    if presence is not None:
        parts += [_partial(presence, key, presence.dn, columns, **{_PRESENT: ibis.literal(1)}),
                  _partial(presence, key, presence.dn + w.engagement_days, columns,
                           **{_PRESENT: ibis.literal(-1)})]
    return parts


def _recipient_timeline(plan: _Plan, columns: Sequence[str]) -> list[Any]:
    """Deltas of sent, engaged and sent-and-engaged recipients. Between a recipient's fact
    on ``dn`` and its next fact, it counts in an n-day window ending on D while
    D <= (its last qualifying day so far) + n - 1."""
    w, ev = plan.w, _recipient_events(plan)
    t = ev.group_by(["account_id", "recipient", "dn"]).agg(
        sent=ev.sent.max(), engaged=ev.engaged.max())
    running = ibis.cumulative_window(group_by=["account_id", "recipient"], order_by="dn")
    ordered = ibis.window(group_by=["account_id", "recipient"], order_by="dn")
    t = t.select(
        "account_id", "dn",
        seg_end=ibis.coalesce(t.dn.lead().over(ordered) - 1, plan.last_dn),
        last_sent=ibis.cases((t.sent == 1, t.dn), else_=None).max().over(running),
        last_engaged=ibis.cases((t.engaged == 1, t.dn), else_=None).max().over(running),
    )
    sent_end = t.last_sent + (w.long_days - 1)
    bounds = {
        "sent_recipients_long": [sent_end],
        "engaged_recipients_short": [t.last_engaged + (w.short_days - 1)],
        "engaged_recipients_long": [t.last_engaged + (w.long_days - 1)],
        "sent_engaged_recipients": [sent_end, t.last_engaged + (w.engagement_days - 1)],
    }
    # Engines differ on least() with a null argument; a null bound (never sent or
    # never engaged so far) must give a null end, i.e. no contribution.
    t = t.select("account_id", "dn", **{
        c: ibis.cases((ibis.or_(*(b.isnull() for b in bs)), None),
                      else_=ibis.least(t.seg_end, *bs))
        for c, bs in bounds.items()})
    key = ["account_id"]
    parts = [_partial(t, key, t.dn, columns, **{c: _flag(t[c] >= t.dn) for c in bounds})]
    for c in bounds:
        hit = t.filter(t[c] >= t.dn)
        parts.append(_partial(hit, key, hit[c] + 1, columns, **{c: ibis.literal(-1)}))
    return parts


def _provider_timeline(plan: _Plan, delivered: Any, opens: Any) -> Any:
    w, key, cols = plan.w, ["account_id", "provider"], PROVIDER_COUNT_COLUMNS
    d = delivered
    parts = [
        _partial(d, key, d.dn, cols, delivered_short=d.delivered, delivered_long=d.delivered),
        _partial(d, key, d.dn + w.short_days, cols, delivered_short=-d.delivered),
        _partial(d, key, d.dn + w.long_days, cols, delivered_long=-d.delivered),
        *_first_in_window(opens, key, "message_id",
                          {"opened_short": w.short_days, "opened_long": w.long_days}, cols),
    ]
    deltas = _union(parts)
    run = _totals(deltas.filter(deltas.x <= plan.last_dn), key, cols, running=True)
    run = run.filter(run.delivered_long > 0)
    # each run of equal totals, as the days it holds from the first requested day on
    # (then kept where requested): a range join here produced every (run, later day)
    # pair first, ten times the rows kept
    days = plan.t.select(target="dn")
    until = ibis.coalesce(run.until, plan.last_dn)
    held = run.mutate(target=ibis.range(ibis.greatest(run.x, plan.first_dn), until + 1).unnest())
    joined = held.join(days, held.target == days.target)
    return joined.select(*key, x=held.target, **{c: joined[c] for c in cols})


# -- the expressions -----------------------------------------------------------------------

def fact_ranges(days: Any, windows: WindowSpec) -> dict[str, tuple[Any, Any]]:
    """The days (first, last), inclusive, of each fact table that requested ``days`` (a
    non-empty list of dates, or an Ibis table with a ``day`` column) read."""
    if isinstance(days, ibis.Table):
        first, last = days.day.min().as_scalar(), days.day.max().as_scalar()
    else:
        first, last = ibis.literal(min(days), "date"), ibis.literal(max(days), "date")

    def back(n: int) -> tuple[Any, Any]:
        return first - ibis.interval(days=n - 1), last

    long, engagement = back(windows.long_days), back(windows.engagement_days)
    return {"counted": long, "opens": long, "recipients": engagement, "presence": engagement}


def _account_ids(accounts: Sequence[int] | ibis.Table) -> Any:
    """What ``isin`` takes: the ids, or the ``account_id`` column of a table of them."""
    return accounts.account_id if isinstance(accounts, ibis.Table) else list(accounts)


def _plan(source: Any, days: Any, accounts: Sequence[int] | ibis.Table | None,
          windows: WindowSpec, strategy: Strategy, offsets: Any = None) -> _Plan:
    if strategy not in ("auto", "expand", "timeline"):
        raise ValueError(f"unknown strategy {strategy!r}")
    t = _days_table(days)
    expand = strategy == "expand" or (
        strategy == "auto" and not isinstance(days, ibis.Table)
        and len(set(days)) <= EXPAND_MAX_DAYS)
    facts = source if isinstance(source, Facts) else facts_from_events(
        source, fact_ranges(days, windows), accounts)
    return _Plan(facts, days, t, accounts, windows, expand,
                 _offsets(windows) if offsets is None else offsets)


def _ranked_providers(plan: _Plan, daily: Any, opens: Any) -> Any:
    """Top providers per (account, x): rank 0 has the most long-window deliveries."""
    delivered = daily.filter(daily.provider.notnull(), daily.delivered > 0).select(
        "account_id", "provider", "dn", "delivered")
    opens = opens.filter(opens.provider.notnull())
    totals = (_provider_expand if plan.expand else _provider_timeline)(plan, delivered, opens)
    totals = totals.filter(totals.delivered_long > 0)
    rank = ibis.row_number().over(
        group_by=["account_id", "x"], order_by=[ibis.desc("delivered_long"), "provider"])
    ranked = totals.mutate(rank=rank)
    return ranked.filter(ranked.rank < plan.w.top_providers)


def provider_counts_expr(events: Any, days: Any, accounts: Sequence[int] | None,
                         windows: WindowSpec, *, strategy: Strategy = "auto") -> Any:
    """Top providers per (account, day): columns account_id, day, rank (0 = most
    delivered_long; ties by provider name ascending), provider, delivered_short,
    opened_short, delivered_long, opened_long. Providers without a delivery in the
    long window, and null providers, are never listed; at most ``top_providers``
    rows per (account, day). Arguments as for ``window_counts_expr``."""
    plan = _plan(events, days, accounts, windows, strategy)
    top = _ranked_providers(plan, _counted_daily(plan), _human_opens(plan))
    return top.join(plan.t, top.x == plan.t.dn).select(
        "account_id", "day", "rank", "provider", *PROVIDER_COUNT_COLUMNS)


def window_counts_expr(events: Any, days: Any, accounts: Sequence[int] | ibis.Table | None,
                       windows: WindowSpec, *, strategy: Strategy = "auto",
                       offsets: Any = None) -> Any:
    """One row per requested (account, day) with the columns of ``WindowCounts``.

    ``events``: a table of ``EVENT_SCHEMA`` (duplicates of (account_id, event_id)
    count once), or its ``Facts`` (``seqscore.compute.facts``; e.g. kept per day by
    ``seqscore.compute.daycache``), which may hold more days or accounts than asked.
    ``days``: UTC dates, as a non-empty list or a table with a ``day`` date column.
    ``accounts``: the accounts to list (ids, or a table with an ``account_id``
    column), each on every requested day even with no events (all counts 0);
    ``None`` lists, for each day D, every account with at least one event (any
    type) in the engagement window ending on D. Only events of days inside some
    requested day's windows are read. All counts are int64 numbers of events,
    messages or recipients; ``providers`` is a list of structs (provider, rank and
    the provider counts) in no particular order, empty or null when no provider had
    a delivery. ``strategy`` picks how
    windows are summed (module docstring); results never depend on it. ``offsets``:
    a table of the integers 0 .. engagement_days - 1 in a column ``k`` (default: an
    in-memory table), for a compiled form whose parameters are named tables.
    """
    plan = _plan(events, days, accounts, windows, strategy, offsets)
    columns = [*ACCOUNT_COUNT_COLUMNS, *([_PRESENT] if accounts is None else [])]
    daily, opens = _counted_daily(plan), _human_opens(plan)
    presence = None
    if accounts is None:
        presence = plan.classify(plan.facts.presence, windows.engagement_days,
                                 ["account_id"]).select("account_id", "dn").distinct()
        listed = presence.select("account_id").distinct()
    elif isinstance(accounts, ibis.Table):
        listed = accounts.select(account_id=accounts.account_id.cast("int64")).distinct()
    else:
        listed = ibis.memtable(pa.table({
            "account_id": pa.array(sorted(set(accounts)), pa.int64())}))
    parts = (_account_expand if plan.expand else _account_timeline)(
        plan, daily, opens, presence, columns)
    parts = _union(parts).mutate(target=ibis.literal(0, "int8"))
    parts = parts.filter(parts.x <= plan.last_dn)
    # One zero row per wanted (account, day): the totals are read on those rows.
    spine = listed.cross_join(plan.t.select("dn")).select(
        "account_id", x="dn", **{c: ibis.literal(0, "int64") for c in columns},
        target=ibis.literal(1, "int8"))
    run = _totals(parts.union(spine), ["account_id"], columns, running=not plan.expand,
                  keep_max=["target"])
    run = run.filter(run.target == 1)
    if accounts is None:
        run = run.filter(run[_PRESENT] > 0)
    run = run.join(plan.t, run.x == plan.t.dn)
    top = _ranked_providers(plan, daily, opens)
    nested = top.group_by(["account_id", "x"]).agg(providers=ibis.struct({
        "provider": top.provider, "rank": top.rank,
        **{c: top[c] for c in PROVIDER_COUNT_COLUMNS}}).collect())
    out = run.left_join(nested, ["account_id", "x"])
    return out.select("account_id", "day", *ACCOUNT_COUNT_COLUMNS, "providers")


#: The parameter tables of the compiled aggregation on DuckDB (registered for each run).
PARAMETER_TABLES = {"days": "seqscore_param_days", "accounts": "seqscore_param_accounts",
                    "offsets": "seqscore_param_offsets"}
_COMPILED: dict[tuple[Any, ...], tuple[str, pa.Schema]] = {}
_COMPILED_MAX = 64


def _run_compiled(events: Any, days: Any, accounts: Sequence[int] | None, spec: WindowSpec,
                  strategy: Strategy) -> pa.Table | None:
    """On DuckDB, run the aggregation from SQL compiled once per shape (source tables,
    windows, strategy, accounts named or not) with days, accounts and offsets as
    parameter tables: building and compiling the expression costs more than running
    it on a day's facts. ``None`` on other engines, or for days given as a table."""
    if isinstance(days, ibis.Table):
        return None
    sources = [events.counted, events.opens, events.recipients, events.presence] if isinstance(
        events, Facts) else [events]
    if any(t.op().find(ops.InMemoryTable) for t in sources):
        return None  # in-memory tables are registered by Ibis's own execution only
    try:
        backend = sources[0]._find_backend()
    except IbisError:
        return None
    if getattr(backend, "name", None) != "duckdb":
        return None
    key = (tuple(backend.compile(t) for t in sources), spec, strategy, accounts is None)
    compiled = _COMPILED.get(key)
    if compiled is None:
        names = PARAMETER_TABLES
        expr = window_counts_expr(
            events, ibis.table({"day": "date"}, name=names["days"]),
            None if accounts is None else ibis.table({"account_id": "int64"},
                                                     name=names["accounts"]),
            spec, strategy=strategy, offsets=ibis.table({"k": "int64"}, name=names["offsets"]))
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()  # a handful of shapes is normal; never grow without bound
        compiled = _COMPILED.setdefault(key, (backend.compile(expr),
                                              expr.schema().to_pyarrow()))
    sql, schema = compiled
    parameters = {
        "days": pa.table({"day": pa.array(sorted(set(days)), pa.date32())}),
        "accounts": pa.table({"account_id": pa.array(sorted(set(accounts or ())), pa.int64())}),
        "offsets": pa.table({"k": pa.array(range(spec.engagement_days), pa.int64())}),
    }
    con = backend.con
    for name, value in parameters.items():
        con.register(PARAMETER_TABLES[name], value)
    try:
        result: pa.Table = con.sql(sql).to_arrow_table()
    finally:
        for name in parameters:
            con.unregister(PARAMETER_TABLES[name])
    # as Ibis's own execution does: DuckDB's sums are 128-bit, the expression's int64
    return result.cast(schema)


def window_counts_table(source: Any, days: Sequence[dt.date] | ibis.Table,
                        accounts: Sequence[int] | None, spec: WindowSpec, *,
                        strategy: Strategy = "auto") -> pa.Table | None:
    """The aggregation's rows as one Arrow table sorted by (account_id, day), or ``None``
    when nothing is asked (no days, or an empty ``accounts``). Arguments as for
    ``compute_window_counts``, the windows as a ``WindowSpec``;
    ``window_counts_in_chunks`` turns the table into counts."""
    if not isinstance(days, ibis.Table):
        days = list(days)
        if not days:
            return None
    if accounts is not None and not accounts:
        return None
    events = source if isinstance(source, (ibis.Table, Facts)) else source.table(EVENTS_TABLE)
    if strategy == "auto" and not isinstance(days, ibis.Table):
        strategy = "expand" if len(set(days)) <= EXPAND_MAX_DAYS else "timeline"
    table = _run_compiled(events, days, accounts, spec, strategy)
    if table is None:
        table = window_counts_expr(events, days, accounts, spec,
                                   strategy=strategy).to_pyarrow()
    return table.sort_by([("account_id", "ascending"), ("day", "ascending")])


def window_counts_in_chunks(table: pa.Table | None,
                            chunk: int = 10_000) -> Iterator[list[WindowCounts]]:
    """The ``WindowCounts`` of ``window_counts_table``'s rows, at most ``chunk`` at a time
    and in its order: a backfill's counts as Python objects all at once weighed more
    than the results they give, so callers may unpack and use them a chunk at a time."""
    if table is None:
        return
    names = ("account_id", "day", *ACCOUNT_COUNT_COLUMNS)
    provider_names = ("rank", "provider", *PROVIDER_COUNT_COLUMNS)
    for batch in table.to_batches(max_chunksize=max(chunk, 1)):
        columns = [batch.column(name).to_pylist() for name in names]
        # the nested providers as flat columns: Arrow's to_pylist of a list of structs
        # builds a Python object per value and cost more than all the scoring
        nested = batch.column("providers")
        lengths = pc.fill_null(pc.list_value_length(nested), 0).to_pylist()
        flat = nested.flatten()
        provider_rows = list(zip(*(flat.field(name).to_pylist() for name in provider_names),
                                 strict=True))
        chunked: list[WindowCounts] = []
        at = 0
        for *values, length in zip(*columns, lengths, strict=True):
            own = sorted(provider_rows[at:at + length])  # by rank (unique per row)
            at += length
            values.append(tuple(ProviderCounts(*p[1:]) for p in own))
            chunked.append(WindowCounts(*values))
        yield chunked


def compute_window_counts(
    source: Any,
    days: Sequence[dt.date] | ibis.Table,
    accounts: Sequence[int] | None = None,
    *,
    short_window_days: int = 7,
    long_window_days: int = 30,
    engagement_window_days: int = 90,
    top_providers: int = 5,
    strategy: Strategy = "auto",
) -> list[WindowCounts]:
    """Compute ``WindowCounts`` for every requested (account, day), in one query.

    ``source`` is an Ibis backend (its table ``events`` is read), an Ibis table
    of ``EVENT_SCHEMA`` or the events' ``Facts``; ``days`` a sequence of UTC dates or a table with a
    ``day`` column. Which accounts are listed: see ``window_counts_expr``. Window
    lengths are in UTC days. The result is sorted by (account_id, day); no days
    or an empty ``accounts`` give ``[]``.
    """
    spec = WindowSpec(short_window_days, long_window_days, engagement_window_days,
                      top_providers)
    table = window_counts_table(source, days, accounts, spec, strategy=strategy)
    return [counts for chunk in window_counts_in_chunks(table) for counts in chunk]
