"""The state store: accounts, API keys, results, the job queue and the quarantine.

One class over SQLAlchemy 2 Core serves both engines the URL can name:
a SQLite file (the embedded default; WAL, one writer at a time) and PostgreSQL
(``postgresql+psycopg://…``, shared by many processes). Engine differences stay
inside this module (upserts, ``FOR UPDATE SKIP LOCKED``). Migrations are applied
when the store is opened.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from seqscore.errors import Conflict, NotFound, Unavailable
from seqscore.storage import migrate
from seqscore.storage.state_schema import (
    accounts,
    api_keys,
    counters,
    jobs,
    metadata,
    quarantine,
    rate_counts,
    results,
)
from seqscore.types import (
    METRIC_NAMES,
    Account,
    AccountKind,
    ApiKey,
    Day,
    DayResult,
    Eligibility,
    Job,
    JobState,
)

UTC = dt.UTC
#: The shared rate limiter's statement (same text on SQLite >= 3.35 and PostgreSQL).
_COUNT_REQUEST = sa.text(
    "INSERT INTO rate_counts (key_id, endpoint, window_start, count) "
    "VALUES (:key_id, :endpoint, :window_start, 1) "
    "ON CONFLICT (key_id, endpoint, window_start) "
    "DO UPDATE SET count = rate_counts.count + 1 RETURNING count")
RESULTS_GENERATION = "results_generation"
ACCOUNTS_GENERATION = "accounts_generation"
NEXT_USER_ID = "next_user_id"


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's recipe: let SQLAlchemy, not pysqlite, emit BEGIN (see _sqlite_begin)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints,
    cursor.execute("PRAGMA busy_timeout=10000")  # never corrupt; results are recomputable
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # A writing transaction takes the write lock up front (IMMEDIATE): upgrading a
    # read transaction later fails at once with SQLITE_BUSY instead of waiting.
    write = conn.get_execution_options().get("write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_state_engine(url: str, *, connect_timeout_s: int | None = None) -> sa.Engine:
    """An engine for a state-store URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    ``connect_timeout_s`` bounds each new PostgreSQL connection (libpq's
    ``connect_timeout``; a ``connect_timeout`` in the URL wins): a server that accepts
    the connection but never answers fails the request with 503 instead of holding it,
    and the event loop with it, forever.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=False)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {}
        if connect_timeout_s is not None and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = connect_timeout_s
        return sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                                connect_args=connect_args)
    raise ValueError(f"unsupported state store URL {url!r}: use sqlite:/// or postgresql+psycopg://")


class StateStore:
    """Accounts, keys, results and jobs. Thread-safe; every method is one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def open(cls, url: str, *, connect_timeout_s: int | None = None) -> StateStore:
        """Connect and migrate to the newest schema (``connect_timeout_s``: see
        ``create_state_engine``)."""
        engine = create_state_engine(url, connect_timeout_s=connect_timeout_s)
        try:
            migrate.upgrade_to_head(engine)
        except sa.exc.OperationalError as exc:
            raise Unavailable(f"state store unreachable: {exc.orig}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """One transaction; ``write=False`` for read-only ones (no write lock on SQLite)."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(write=write)
                with conn.begin():
                    yield conn
        except sa.exc.OperationalError as exc:
            raise Unavailable(f"state store unavailable: {exc.orig}") from exc

    def _read(self) -> AbstractContextManager[sa.Connection]:
        return self._tx(write=False)

    # ---------------------------------------------------------------- accounts

    def create_account(
        self,
        username: str,
        *,
        email: str = "",
        parent_id: int | None = None,
        kind: AccountKind = AccountKind.SUBUSER,
        open_tracking: bool = True,
        user_id: int | None = None,
        now: dt.datetime,
    ) -> Account:
        """Create an account; ``user_id`` is allocated (max + 1) unless given.

        Raises ``Conflict`` when the username or user_id is taken and
        ``NotFound`` when the parent does not exist.
        """
        for _attempt in range(5):
            try:
                with self._tx() as conn:
                    if parent_id is not None and not conn.execute(
                        sa.select(accounts.c.user_id).where(accounts.c.user_id == parent_id)
                    ).first():
                        raise NotFound(f"parent account {parent_id} does not exist")
                    taken = conn.execute(
                        sa.select(accounts.c.user_id).where(accounts.c.username == username)
                    ).first()
                    if taken:
                        raise Conflict(f"username {username!r} is taken")
                    new_id = user_id if user_id is not None else self._next_user_id(conn)
                    row = {
                        "user_id": new_id, "username": username, "email": email,
                        "parent_id": parent_id, "kind": kind.value,
                        "open_tracking": open_tracking, "disabled": False,
                        "created_at": now,
                    }
                    conn.execute(accounts.insert().values(**row))
                    self._bump(conn, ACCOUNTS_GENERATION)
                    return _account(row)
            except sa.exc.IntegrityError as exc:
                if user_id is not None:
                    raise Conflict(f"user_id {user_id} or username {username!r} is taken") from exc
                continue  # a concurrent create took the same id: allocate again
        raise Conflict(f"could not allocate a user_id for {username!r}")

    def _next_user_id(self, conn: sa.Connection) -> int:
        """Allocate a user_id: a counter row whose lock serialises concurrent creators,
        kept above any id given explicitly."""
        conn.execute(self._insert(counters).values(name=NEXT_USER_ID, value=0)
                     .on_conflict_do_nothing())
        highest = sa.select(sa.func.coalesce(sa.func.max(accounts.c.user_id), 0) + 1)
        greatest = sa.func.greatest if self.dialect == "postgresql" else sa.func.max
        return int(conn.execute(
            counters.update().where(counters.c.name == NEXT_USER_ID)
            .values(value=greatest(counters.c.value + 1, highest.scalar_subquery()))
            .returning(counters.c.value)).scalar_one())

    def get_account(self, user_id: int) -> Account | None:
        with self._read() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.user_id == user_id)).first()
        return _account(row._mapping) if row else None

    def get_account_by_username(self, username: str) -> Account | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(accounts).where(accounts.c.username == username)
            ).first()
        return _account(row._mapping) if row else None

    def require_account(self, username: str) -> Account:
        account = self.get_account_by_username(username)
        if account is None:
            raise NotFound(f"no account named {username!r}")
        return account

    def list_accounts(self) -> list[Account]:
        with self._read() as conn:
            rows = conn.execute(sa.select(accounts).order_by(accounts.c.user_id)).all()
        return [_account(r._mapping) for r in rows]

    def list_children(
        self,
        parent_id: int,
        *,
        after_user_id: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        username: str | None = None,
    ) -> list[Account]:
        """Children of a parent in numeric ``user_id`` order (keyset or offset paging)."""
        query = sa.select(accounts).where(accounts.c.parent_id == parent_id)
        if after_user_id is not None:
            query = query.where(accounts.c.user_id > after_user_id)
        if username is not None:
            query = query.where(accounts.c.username == username)
        query = query.order_by(accounts.c.user_id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_account(r._mapping) for r in rows]

    def update_account(
        self,
        user_id: int,
        *,
        disabled: bool | None = None,
        open_tracking: bool | None = None,
        webhook_public_key: str | None = None,
        clear_webhook_key: bool = False,
    ) -> Account:
        values: dict[str, Any] = {}
        if disabled is not None:
            values["disabled"] = disabled
        if open_tracking is not None:
            values["open_tracking"] = open_tracking
        if webhook_public_key is not None or clear_webhook_key:
            values["webhook_public_key"] = webhook_public_key
        with self._tx() as conn:
            if values:
                conn.execute(accounts.update().where(accounts.c.user_id == user_id).values(values))
                self._bump(conn, ACCOUNTS_GENERATION)
            row = conn.execute(sa.select(accounts).where(accounts.c.user_id == user_id)).first()
        if row is None:
            raise NotFound(f"no account with user_id {user_id}")
        return _account(row._mapping)

    # -------------------------------------------------------------------- keys

    def insert_key(
        self,
        *,
        key_id: str,
        account_id: int,
        name: str,
        scopes: Iterable[str],
        secret_sha256: bytes,
        now: dt.datetime,
    ) -> ApiKey:
        row = {
            "key_id": key_id, "account_id": account_id, "name": name,
            "scopes": " ".join(sorted(set(scopes))), "secret_sha256": secret_sha256,
            "revoked": False, "created_at": now,
        }
        with self._tx() as conn:
            conn.execute(api_keys.insert().values(**row))
        return _key(row)

    def get_key(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        """A key and its stored secret hash, or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            return None
        return _key(row._mapping), bytes(row.secret_sha256)

    def list_keys(self, account_id: int) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.account_id == account_id, api_keys.c.revoked.is_(False))
                .order_by(api_keys.c.created_at, api_keys.c.key_id)
            ).all()
        return [_key(r._mapping) for r in rows]

    def revoke_key(self, key_id: str) -> ApiKey:
        with self._tx() as conn:
            conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(revoked=True))
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _key(row._mapping)

    # ----------------------------------------------------------------- results

    def upsert_results(self, day_results: Sequence[DayResult]) -> None:
        """Write results (insert or replace per account and day) and bump the generation."""
        if not day_results:
            return
        rows = [_result_row(r) for r in day_results]
        insert = self._insert(results)
        update_cols = {c: insert.excluded[c] for c in rows[0] if c not in ("account_id", "day")}
        statement = insert.on_conflict_do_update(
            index_elements=[results.c.account_id, results.c.day], set_=update_cols
        )
        with self._tx() as conn:
            conn.execute(statement, rows)
            self._bump(conn, RESULTS_GENERATION)

    def get_results(self, account_id: int, first: Day, last: Day) -> dict[Day, DayResult]:
        """Stored results of one account for the days in [first, last]."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(results).where(
                    results.c.account_id == account_id,
                    results.c.day >= first,
                    results.c.day <= last,
                )
            ).all()
        return {row.day: _day_result(row._mapping) for row in rows}

    def get_results_for_accounts(
        self, account_ids: Sequence[int], day: Day
    ) -> dict[int, DayResult]:
        """Stored results of several accounts for one day, by account."""
        if not account_ids:
            return {}
        out: dict[int, DayResult] = {}
        with self._read() as conn:
            for start in range(0, len(account_ids), 900):  # stay under bind-parameter limits
                chunk = list(account_ids[start : start + 900])
                rows = conn.execute(
                    sa.select(results).where(results.c.day == day,
                                             results.c.account_id.in_(chunk))
                ).all()
                out.update({row.account_id: _day_result(row._mapping) for row in rows})
        return out

    def generations(self) -> tuple[int, int]:
        """(results, accounts) counters: each changes whenever any row of its kind is
        written, so API processes can cache serialized answers keyed by them."""
        with self._read() as conn:
            values = dict(conn.execute(sa.select(counters.c.name, counters.c.value)).all())
        return int(values.get(RESULTS_GENERATION, 0)), int(values.get(ACCOUNTS_GENERATION, 0))

    # -------------------------------------------------------------------- jobs

    def enqueue_jobs(self, pairs: Iterable[tuple[int, Day]], *, now: dt.datetime) -> int:
        """Queue (account, day) computations; a pair already pending is left alone.

        Returns how many new jobs were queued.
        """
        rows = [
            {"account_id": a, "day": d, "state": JobState.PENDING.value, "attempts": 0,
             "not_before": now, "created_at": now, "updated_at": now}
            for a, d in sorted(set(pairs))
        ]
        if not rows:
            return 0
        insert = self._insert(jobs)
        if self.dialect == "postgresql":
            statement = insert.on_conflict_do_nothing(
                index_elements=[jobs.c.account_id, jobs.c.day],
                index_where=sa.text("state = 'pending'"),
            )
        else:
            statement = insert.on_conflict_do_nothing()
        with self._tx() as conn:
            return len(conn.execute(statement.returning(jobs.c.job_id), rows).all())

    def claim_jobs(
        self, worker_id: str, limit: int, *, now: dt.datetime, lease: dt.timedelta
    ) -> list[Job]:
        """Claim up to ``limit`` due jobs for one worker.

        Due: pending with ``not_before <= now``, or running with a lease older
        than ``lease`` (its worker died). A pending job whose (account, day) is
        being computed by a live worker waits, so one result is never written by
        two computations at once. PostgreSQL claims with ``FOR UPDATE SKIP
        LOCKED``; SQLite serialises writers, which gives the same guarantee.
        """
        expired = now - lease
        candidate = jobs.alias("candidate")
        running = jobs.alias("running")
        live_twin = sa.exists().where(
            running.c.account_id == candidate.c.account_id,
            running.c.day == candidate.c.day,
            running.c.state == JobState.RUNNING.value,
            running.c.claimed_at > expired,
            running.c.job_id != candidate.c.job_id,
        )
        due = sa.or_(
            sa.and_(candidate.c.state == JobState.PENDING.value,
                    candidate.c.not_before <= now, ~live_twin),
            sa.and_(candidate.c.state == JobState.RUNNING.value,
                    candidate.c.claimed_at <= expired),
        )
        due_ids = (sa.select(candidate.c.job_id).where(due)
                   .order_by(candidate.c.job_id).limit(limit))
        if self.dialect == "postgresql":
            due_ids = due_ids.with_for_update(skip_locked=True, of=candidate)
        # one UPDATE … RETURNING: atomic on both engines (no read-then-write upgrade)
        claim = (
            jobs.update()
            .where(jobs.c.job_id.in_(due_ids.scalar_subquery()))
            .values(state=JobState.RUNNING.value, claimed_by=worker_id, claimed_at=now,
                    attempts=jobs.c.attempts + 1, updated_at=now)
            .returning(*jobs.c)
        )
        with self._tx() as conn:
            rows = conn.execute(claim).all()
        return sorted((_job(r._mapping) for r in rows), key=lambda j: j.job_id)

    def complete_jobs(self, job_ids: Sequence[int], *, now: dt.datetime) -> None:
        if not job_ids:
            return
        with self._tx() as conn:
            conn.execute(jobs.update().where(jobs.c.job_id.in_(list(job_ids))).values(
                state=JobState.DONE.value, updated_at=now, last_error=None))

    def fail_job(
        self, job_id: int, error: str, *, now: dt.datetime, retry_at: dt.datetime | None
    ) -> None:
        """Record a failure: back to pending at ``retry_at``, or parked as failed if None."""
        state = JobState.PENDING if retry_at is not None else JobState.FAILED
        with self._tx() as conn:
            try:
                with conn.begin_nested():  # a savepoint: PostgreSQL aborts the whole
                    conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(  # tx
                        state=state.value, not_before=retry_at or now,  # on a conflict
                        last_error=error[:4000], updated_at=now, claimed_by=None,
                        claimed_at=None))
            except sa.exc.IntegrityError:
                # a newer pending twin exists: it will do the work; park this one
                conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(
                    state=JobState.DONE.value, last_error=error[:4000], updated_at=now))

    def running_claimants(self) -> set[str]:
        """The workers (``claimed_by``) that hold running jobs."""
        with self._read() as conn:
            return {str(r[0]) for r in conn.execute(
                sa.select(jobs.c.claimed_by).distinct().where(
                    jobs.c.state == JobState.RUNNING.value, jobs.c.claimed_by.is_not(None)))}

    def release_claims(self, claimants: Collection[str], *, now: dt.datetime) -> int:
        """Hand the running jobs of ``claimants``, workers known to be dead, back to
        the queue, due at once: they need not wait for their leases to expire. A job
        whose (account, day) has a pending successor is closed instead (the successor
        does the work). One transaction; returns how many jobs were released."""
        if not claimants:
            return 0
        held = sa.and_(jobs.c.state == JobState.RUNNING.value,
                       jobs.c.claimed_by.in_(sorted(claimants)))
        query = sa.select(jobs.c.job_id).where(held).order_by(jobs.c.job_id)
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        note = "released: the worker that claimed it died"
        with self._tx() as conn:
            job_ids = [int(r[0]) for r in conn.execute(query)]
            for job_id in job_ids:
                mine = sa.and_(jobs.c.job_id == job_id, held)
                try:
                    with conn.begin_nested():
                        conn.execute(jobs.update().where(mine).values(
                            state=JobState.PENDING.value, not_before=now, updated_at=now,
                            claimed_by=None, claimed_at=None, last_error=note))
                except sa.exc.IntegrityError:  # a pending successor exists
                    conn.execute(jobs.update().where(mine).values(
                        state=JobState.DONE.value, updated_at=now, last_error=note))
        return len(job_ids)

    def list_jobs(self, state: JobState | None = None) -> list[Job]:
        query = sa.select(jobs).order_by(jobs.c.job_id)
        if state is not None:
            query = query.where(jobs.c.state == state.value)
        with self._read() as conn:
            return [_job(r._mapping) for r in conn.execute(query)]

    def purge_done_jobs(self, older_than: dt.datetime) -> int:
        with self._tx() as conn:
            result = conn.execute(jobs.delete().where(
                jobs.c.state == JobState.DONE.value, jobs.c.updated_at < older_than))
            return int(result.rowcount or 0)

    def delete_results_before(self, day: Day) -> int:
        with self._tx() as conn:
            deleted = conn.execute(results.delete().where(results.c.day < day)).rowcount
            if deleted:
                self._bump(conn, RESULTS_GENERATION)
            return int(deleted or 0)

    def mark_stale_and_enqueue(self, account_id: int, first: Day, last: Day, *,
                               now: dt.datetime) -> int:
        """Late events touched days ``first..last`` (inclusive) of one account: mark its
        stored results in that range stale and queue their recomputation.

        Queued are the days that already have a result, and the days a job is
        computing (running, claimed) even without a result yet: that computation
        may have read the events before these arrived, so the day gets a pending
        successor, claimed once the running job ends. Other closed days without a
        result are queued by the scheduler or a 202 anyway; a day with a pending
        job keeps it. One read when neither is in the range; else one transaction,
        one UPDATE and two INSERT ... SELECT whatever the range. Returns how many
        jobs were queued.
        """
        probe, mark, queues = self._stale_statements
        params = {"range_account": account_id, "range_first": first, "range_last": last,
                  "queued_at": now}
        with self._read() as conn:  # most late events touch no stored result: no write lock
            if not conn.execute(probe, params).scalar():
                return 0
        with self._tx() as conn:
            if conn.execute(mark, params).rowcount:
                self._bump(conn, RESULTS_GENERATION)
            return sum(len(conn.execute(queue, params).all()) for queue in queues)

    @functools.cached_property
    def _stale_statements(self) -> tuple[sa.Select[Any], sa.Update, list[Any]]:
        """``mark_stale_and_enqueue``'s statements, built once (building them costs
        more than running them): whether the range has a result or a running job,
        mark the results stale, queue the results' days and the running jobs' days."""
        first = sa.bindparam("range_first", type_=sa.Date)
        last = sa.bindparam("range_last", type_=sa.Date)
        account_id = sa.bindparam("range_account", type_=sa.BigInteger)
        stamp = sa.bindparam("queued_at", type_=sa.DateTime(timezone=True))
        in_range = sa.and_(results.c.account_id == account_id, results.c.day >= first,
                           results.c.day <= last)
        running = jobs.alias("running")
        running_in_range = sa.and_(
            running.c.account_id == account_id, running.c.day >= first,
            running.c.day <= last, running.c.state == JobState.RUNNING.value)
        columns = ["account_id", "day", "state", "attempts", "not_before", "created_at",
                   "updated_at"]
        pending = sa.literal(JobState.PENDING.value)
        queues = [
            self._insert(jobs).from_select(columns, sa.select(
                results.c.account_id, results.c.day, pending, sa.literal(0), stamp, stamp,
                stamp).where(in_range)),
            self._insert(jobs).from_select(columns, sa.select(
                running.c.account_id, running.c.day, pending, sa.literal(0), stamp, stamp,
                stamp).where(running_in_range).distinct()),
        ]
        if self.dialect == "postgresql":
            queues = [queue.on_conflict_do_nothing(
                index_elements=[jobs.c.account_id, jobs.c.day],
                index_where=sa.text("state = 'pending'")) for queue in queues]
        else:
            queues = [queue.on_conflict_do_nothing() for queue in queues]
        probe = sa.select(sa.or_(sa.exists().where(in_range), sa.exists().where(running_in_range)))
        mark = results.update().where(in_range, results.c.stale.is_(False)).values(stale=True)
        return probe, mark, [queue.returning(jobs.c.job_id) for queue in queues]

    # -------------------------------------------------------------- quarantine

    def add_quarantined(self, entries: Sequence[Quarantined]) -> int:
        """Keep rejected events. An entry whose ``payload_digest`` the account already
        has (a retried batch, a re-run import) is left out. Returns how many were added."""
        rows = [{"account_id": e.account_id, "received_at": e.received_at,
                 "item_index": e.index, "reason": e.reason, "payload": e.sealed_payload,
                 "payload_digest": e.payload_digest} for e in entries]
        if not rows:
            return 0
        statement = self._insert(quarantine).on_conflict_do_nothing()
        with self._tx() as conn:
            return len(conn.execute(statement.returning(quarantine.c.quarantine_id),
                                    rows).all())

    def list_quarantined(self, *, account_id: int | None = None, limit: int = 100,
                         before_id: int | None = None) -> list[Quarantined]:
        """Kept rejects, newest first (``before_id`` pages on)."""
        query = sa.select(quarantine).order_by(quarantine.c.quarantine_id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(quarantine.c.account_id == account_id)
        if before_id is not None:
            query = query.where(quarantine.c.quarantine_id < before_id)
        with self._read() as conn:
            return [_quarantined(r._mapping) for r in conn.execute(query)]

    def get_quarantined(self, quarantine_id: int) -> Quarantined | None:
        with self._read() as conn:
            row = conn.execute(sa.select(quarantine).where(
                quarantine.c.quarantine_id == quarantine_id)).first()
        return None if row is None else _quarantined(row._mapping)

    def delete_quarantined_before(self, instant: dt.datetime) -> int:
        """Forget rejects received before ``instant``; returns how many."""
        with self._tx() as conn:
            deleted = conn.execute(quarantine.delete().where(
                quarantine.c.received_at < instant)).rowcount
            return int(deleted or 0)

    # ---------------------------------------------------------------- counters

    def advance_counter(self, name: str, value: int) -> bool:
        """Set counter ``name`` to ``value`` if that moves it forward; True if it did.

        Atomic compare-and-set: of many processes advancing to the same value,
        exactly one gets True (the scheduler's once-a-day guarantee).
        """
        with self._tx() as conn:
            moved = conn.execute(counters.update().where(
                counters.c.name == name, counters.c.value < value).values(value=value)).rowcount
            if moved:
                return True
            insert = self._insert(counters).values(name=name, value=value)
            created = conn.execute(
                insert.on_conflict_do_nothing().returning(counters.c.name)).first()
            return created is not None

    def counter(self, name: str) -> int | None:
        with self._read() as conn:
            value = conn.execute(sa.select(counters.c.value)
                                 .where(counters.c.name == name)).scalar()
        return None if value is None else int(value)

    # ------------------------------------------------------------- rate limits

    def count_request(self, key_id: str, endpoint: str, window_start: int) -> int:
        """Count one request of ``key_id`` on ``endpoint`` in the window starting at
        ``window_start`` (Unix seconds); returns the window's count including it.

        One UPSERT ... RETURNING, atomic however many processes count at once; on
        PostgreSQL it runs in autocommit (one round trip: it is on every request's path).
        """
        params = {"key_id": key_id, "endpoint": endpoint, "window_start": window_start}
        if self.dialect != "postgresql":
            with self._tx() as conn:
                return int(conn.execute(_COUNT_REQUEST, params).scalar_one())
        try:
            with self._autocommit.connect() as conn:
                return int(conn.execute(_COUNT_REQUEST, params).scalar_one())
        except sa.exc.OperationalError as exc:
            raise Unavailable(f"state store unavailable: {exc.orig}") from exc

    @functools.cached_property
    def _autocommit(self) -> sa.Engine:
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def forget_rate_windows_before(self, window_start: int) -> int:
        """Delete request counts of windows starting before ``window_start``."""
        with self._tx() as conn:
            deleted = conn.execute(rate_counts.delete().where(
                rate_counts.c.window_start < window_start)).rowcount
            return int(deleted or 0)

    # ----------------------------------------------------------------- helpers

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert(table) if self.dialect == "postgresql"
                else sqlite.insert(table))

    def _bump(self, conn: sa.Connection, name: str) -> None:
        insert = self._insert(counters).values(name=name, value=1)
        conn.execute(insert.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}))


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A rejected event, kept whole but sealed (``payload`` is ciphertext; see
    ``seqscore.ingest.sealing``). ``index`` is its position in the posted array."""

    account_id: int
    received_at: dt.datetime
    index: int
    reason: str
    sealed_payload: bytes
    payload_digest: bytes
    quarantine_id: int | None = None


# ------------------------------------------------------------- moving stores

#: Rows per INSERT while copying a state store.
_COPY_CHUNK = 5000


def copy_state(source: StateStore, target: StateStore) -> dict[str, int]:
    """Copy every table of ``source`` into the empty ``target`` (another engine, e.g.
    SQLite -> PostgreSQL), ids included, in one transaction of ``target``; returns
    the rows copied per table.

    Both stores must be migrated to the same schema (``StateStore.open`` does it).
    Raises ``Conflict`` when ``target`` holds any row. Parents are copied before
    their children; PostgreSQL's id sequences are moved past the copied ids.
    """
    copied: dict[str, int] = {}
    with source._read() as src, target._tx() as dst:
        for table in metadata.sorted_tables:
            if dst.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                raise Conflict(f"the target state store is not empty (table {table.name})")
        for table in metadata.sorted_tables:
            copied[table.name] = _copy_table(src, dst, table)
            if target.dialect == "postgresql" and table.autoincrement_column is not None:
                column = table.autoincrement_column.name
                dst.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                    f"coalesce(max({column}), 1), max({column}) IS NOT NULL) "
                    f"FROM {table.name}"))
    return copied


def _copy_table(src: sa.Connection, dst: sa.Connection, table: sa.Table) -> int:
    stamps = [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]
    query = sa.select(table).order_by(*table.primary_key.columns)
    rows: Iterator[dict[str, Any]] = (
        dict(r._mapping) for r in src.execution_options(yield_per=_COPY_CHUNK).execute(query))
    if table is accounts:  # parent_id refers to accounts: parents first
        rows = iter(_parents_first(list(rows)))
    total = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        for name in stamps:  # SQLite hands back naive datetimes, which are UTC
            if row[name] is not None:
                row[name] = _utc(row[name])
        chunk.append(row)
        if len(chunk) >= _COPY_CHUNK:
            dst.execute(table.insert(), chunk)
            total, chunk = total + len(chunk), []
    if chunk:
        dst.execute(table.insert(), chunk)
        total += len(chunk)
    return total


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {r["user_id"]: r for r in rows}

    def depth(row: dict[str, Any]) -> int:
        n, parent = 0, row["parent_id"]
        while parent is not None and parent in by_id and n <= len(by_id):
            n, parent = n + 1, by_id[parent]["parent_id"]
        return n

    return sorted(rows, key=lambda r: (depth(r), r["user_id"]))


# --------------------------------------------------------------- row mapping


def _account(row: Any) -> Account:
    return Account(
        user_id=int(row["user_id"]), username=row["username"], email=row["email"],
        parent_id=None if row["parent_id"] is None else int(row["parent_id"]),
        kind=AccountKind(row["kind"]), open_tracking=bool(row["open_tracking"]),
        disabled=bool(row["disabled"]), created_at=_utc(row["created_at"]),
        webhook_public_key=row.get("webhook_public_key"),
    )


def _key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"], account_id=int(row["account_id"]), name=row["name"],
        scopes=frozenset(row["scopes"].split()), revoked=bool(row["revoked"]),
        created_at=_utc(row["created_at"]),
    )


def _result_row(result: DayResult) -> dict[str, Any]:
    metrics = result.metrics or {}
    return {
        "account_id": result.account_id, "day": result.day, "score": result.score,
        **{name: metrics.get(name) for name in METRIC_NAMES},
        "eligibility": result.eligibility.value, "model_version": result.model_version,
        "computed_at": result.computed_at, "stale": result.stale,
        "counts_json": json.dumps(dict(result.counts), sort_keys=True),
        "rates_json": json.dumps({k: list(v) for k, v in result.rates.items()}, sort_keys=True),
        "explanation_json": json.dumps(result.explanation, sort_keys=True, default=str),
    }


def _day_result(row: Any) -> DayResult:
    score = row["score"]
    metrics = None if score is None else {name: int(row[name]) for name in METRIC_NAMES}
    return DayResult(
        account_id=int(row["account_id"]), day=row["day"],
        score=None if score is None else int(score), metrics=metrics,
        eligibility=Eligibility(row["eligibility"]), model_version=row["model_version"],
        computed_at=_utc(row["computed_at"]), stale=bool(row["stale"]),
        counts=json.loads(row["counts_json"]),
        rates={k: (int(v[0]), int(v[1])) for k, v in json.loads(row["rates_json"]).items()},
        explanation=json.loads(row["explanation_json"]),
    )


def _job(row: Any) -> Job:
    return Job(
        job_id=int(row["job_id"]), account_id=int(row["account_id"]), day=row["day"],
        state=JobState(row["state"]), attempts=int(row["attempts"]),
        not_before=_utc(row["not_before"]), last_error=row["last_error"],
    )


def _quarantined(row: Any) -> Quarantined:
    return Quarantined(
        account_id=int(row["account_id"]), received_at=_utc(row["received_at"]),
        index=int(row["item_index"]), reason=row["reason"], sealed_payload=bytes(row["payload"]),
        payload_digest=bytes(row["payload_digest"]), quarantine_id=int(row["quarantine_id"]),
    )
