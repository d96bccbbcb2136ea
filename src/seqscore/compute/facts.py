"""Day facts: what the window aggregation needs of the events, one row per key and day.

The aggregation (``seqscore.compute.aggregate``) never reads events directly: it
reads these four tables, each keyed by a UTC day number ``dn`` (days since
1970-01-01), and sums or counts distinct over them per window. They are defined
here once, as Ibis expressions over a table of ``EVENT_SCHEMA``:

* ``counted``: counted events (processed, delivered, invalid and block bounces,
  spam reports) per (account_id, provider, dn), each event once: copies of
  (account_id, event_id) within a day count once (copies of an event share its
  ``ts``, hence its day; the event store's compaction relies on the same);
* ``opens``: distinct (account_id, provider, message_id, dn) of human opens with
  a message id;
* ``recipients``: per (account_id, recipient, dn), ``sent`` (1 if a
  ``processed`` named the recipient that day) and ``engaged`` (1 if a human open
  or a click did), rows with at least one of them;
* ``presence``: distinct (account_id, dn) of any event.

A fact of day d depends on the events of day d only, so the facts of a day can be
computed once and kept (``seqscore.compute.daycache`` does, in the DuckDB event
store) or computed on the fly for the days a query reads (Spark, the lake). Every
column is nullable and of a plain type, so facts from stored tables, from
``NOT NULL`` columns and from literals union without schema conflicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ibis

__all__ = ["COUNTED_KINDS", "FACT_COLUMNS", "Facts", "counted_facts", "facts_from_events",
           "repeated_counted_keys"]

#: Counted kinds, as columns of ``counted`` (in this order).
COUNTED_KINDS: tuple[str, ...] = ("processed", "delivered", "invalid", "block", "spam")
#: The columns of each fact table.
FACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "counted": ("account_id", "provider", "dn", *COUNTED_KINDS),
    "opens": ("account_id", "provider", "message_id", "dn"),
    "recipients": ("account_id", "recipient", "dn", "sent", "engaged"),
    "presence": ("account_id", "dn"),
}


@dataclass(frozen=True)
class Facts:
    """The four fact tables (Ibis tables with the columns of ``FACT_COLUMNS``). They may
    hold more days or accounts than a query needs: the aggregation filters them."""

    counted: Any
    opens: Any
    recipients: Any
    presence: Any


def _flag(condition: Any) -> Any:
    return ibis.cases((condition, 1), else_=0)


def _day_number(events: Any) -> Any:
    return events.day.epoch_days().cast("int64")


def _human(events: Any) -> Any:
    return (events.event == "open") & ~events.machine_open.fill_null(False)


def _event_id_hash(event_id: Any) -> Any:
    return event_id.hash()


def _counted_rows(events: Any, id_hash: Callable[[Any], Any]) -> Any:
    """Counted events of ``events`` as (account_id, event_id, dn, provider, kind, h):
    ``kind`` the index of its ``COUNTED_KINDS`` column, ``h`` = ``id_hash(event_id)``."""
    ev = events.filter(events.event.isin(["processed", "delivered", "spamreport", "bounce"]))
    is_bounce = ev.event == "bounce"
    kinds = list(COUNTED_KINDS)
    kind = ibis.cases(
        (ev.event == "processed", kinds.index("processed")),
        (ev.event == "delivered", kinds.index("delivered")),
        (ev.event == "spamreport", kinds.index("spam")),
        (is_bounce & (ev.bounce_type.isnull() | (ev.bounce_type == "bounce"))
         & ((ev.bounce_class == "Invalid Address")
            | (ev.bounce_class.isnull() & ev.status.startswith("5.1."))), kinds.index("invalid")),
        (is_bounce & (ev.bounce_type.isnull() | ev.bounce_type.isin(["bounce", "blocked"]))
         & ev.bounce_class.isin(["Reputation", "Content"]), kinds.index("block")),
        else_=None,
    )
    t = ev.select(account_id=ev.account_id.cast("int64"), event_id=ev.event_id.cast("string"),
                  dn=_day_number(ev), provider=ev.provider.cast("string"), kind=kind)
    t = t.filter(t.kind.notnull())
    return t.mutate(h=id_hash(t.event_id))


_SHARED_HASH = ["account_id", "dn", "h"]


def repeated_counted_keys(events: Any, *,
                          id_hash: Callable[[Any], Any] = _event_id_hash) -> Any:
    """The (account_id, dn, h) that more than one counted event of ``events`` shares: the
    only places a copy of an event (or another event with the same hash) can be."""
    t = _counted_rows(events, id_hash)
    shared = t.group_by(_SHARED_HASH).agg(rows=t.count())
    return shared.filter(shared.rows > 1).select(*_SHARED_HASH)


def counted_facts(events: Any, repeated: Any = None, *,
                  id_hash: Callable[[Any], Any] = _event_id_hash) -> Any:
    """``counted`` of ``events`` (see the module docstring). A set of copies keeps, column
    by column, its least value: deterministic whatever the row order.

    Without ``repeated``, copies are grouped by ``event_id``, in one query. With
    ``repeated`` (``repeated_counted_keys`` of the same events, computed and kept
    beforehand, as the day-fact cache does) they are found through a hash of the id
    first: a row whose (account, day, hash) no other counted row shares is an event
    of its own and is counted without comparing ids (nearly every row: grouping 37M
    rows by their 22-character ids was most of building the facts); the rows that
    share one are grouped exactly by ``event_id``, so a hash collision never merges
    two events. Both give the same facts. Inline, the hash form reads the counted
    rows three times and DuckDB held them in between (one day of 50M events from
    the events: 19.6 s by id, 42.8 s by hash), hence the choice by caller.
    ``id_hash``: the hash (tests force collisions with it)."""
    t = _counted_rows(events, id_hash)
    if repeated is None:
        unique = t.group_by(["account_id", "dn", "event_id"]).agg(
            kind=t.kind.min(), provider=t.provider.min())
    else:
        single = t.anti_join(repeated, _SHARED_HASH).select("account_id", "dn", "provider",
                                                            "kind")
        shared = t.semi_join(repeated, _SHARED_HASH)
        copies = shared.group_by(["account_id", "dn", "event_id"]).agg(
            kind=shared.kind.min(), provider=shared.provider.min())
        unique = single.union(copies.select("account_id", "dn", "provider", "kind"))
    out = unique.group_by(["account_id", "provider", "dn"]).agg(
        **{name: unique.count(where=unique.kind == i) for i, name in enumerate(COUNTED_KINDS)})
    return out.select(*FACT_COLUMNS["counted"])


def open_facts(events: Any) -> Any:
    """``opens`` of ``events``: distinct human opens of a message, per day."""
    ev = events.filter(_human(events), events.message_id.notnull())
    t = ev.select(account_id=ev.account_id.cast("int64"), provider=ev.provider.cast("string"),
                  message_id=ev.message_id.cast("string"), dn=_day_number(ev))
    return t.distinct()


def recipient_facts(events: Any) -> Any:
    """``recipients`` of ``events``: per recipient and day, sent and engaged flags."""
    ev = events.filter(events.recipient.notnull(),
                       events.event.isin(["processed", "open", "click"]))
    t = ev.select(account_id=ev.account_id.cast("int64"), recipient=ev.recipient.cast("string"),
                  dn=_day_number(ev), sent=_flag(ev.event == "processed").cast("int64"),
                  engaged=_flag(_human(ev) | (ev.event == "click")).cast("int64"))
    t = t.filter((t.sent == 1) | (t.engaged == 1))
    return t.group_by(["account_id", "recipient", "dn"]).agg(
        sent=t.sent.max(), engaged=t.engaged.max())


def presence_facts(events: Any) -> Any:
    """``presence`` of ``events``: the days each account has any event."""
    return events.select(account_id=events.account_id.cast("int64"),
                         dn=_day_number(events)).distinct()


def _within(events: Any, first: Any, last: Any, accounts: Sequence[int] | Any | None) -> Any:
    predicates = [events.day >= first, events.day <= last]
    if isinstance(accounts, ibis.Table):
        predicates.append(events.account_id.isin(accounts.account_id))
    elif accounts is not None:
        predicates.append(events.account_id.isin(list(accounts)))
    return events.filter(*predicates)


def facts_from_events(events: Any, ranges: dict[str, tuple[Any, Any]],
                      accounts: Sequence[int] | Any | None = None) -> Facts:
    """The facts of ``events`` (a table of ``EVENT_SCHEMA``), each table over the days
    ``ranges[name]`` = (first, last) (dates or date scalars, inclusive), for
    ``accounts`` (ids, a table with an ``account_id`` column, or None: all). Each
    table is its own scan of ``events``."""
    def within(name: str) -> Any:
        first, last = ranges[name]
        return _within(events, first, last, accounts)

    return Facts(counted=counted_facts(within("counted")), opens=open_facts(within("opens")),
                 recipients=recipient_facts(within("recipients")),
                 presence=presence_facts(within("presence")))
