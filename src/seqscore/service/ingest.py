"""Ingesting a batch of events for one account: the receiver's and the import's use case.

``IngestService.receive`` is the webhook (signature first); ``ingest`` parses a
body (in the parser processes, if any: ``ingest.pool``) and ``store``s it; the
receiver, ``seqscore import`` and ``seqscore demo`` all come through here.
Storing one batch, in this order:

1. its valid events are appended to the event store in one durable transaction
   (through the ``GroupCommitter``); repeats inside the batch, and a whole batch
   posted before (by its keyed digest), are recognised and not stored again;
2. its invalid events go to the quarantine, sealed (``ingest.sealing``), each
   kept once however often it is posted;
3. stored results the events can change are marked stale and their
   recomputation queued: an event of day d changes the results of days
   d .. d + engagement window - 1, so the batch's distinct days become a few
   merged ranges, clipped at the last closed day, one statement each.

Only then does the caller answer: a crash at any point loses nothing (the
sender retries an unanswered batch; a retry repeats steps 2 and 3, which are
idempotent, while step 1 recognises the batch).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric import ec

from seqscore.clock import Clock
from seqscore.errors import Forbidden, NotFound
from seqscore.ingest import signature
from seqscore.ingest.pool import ParserPool
from seqscore.ingest.recipients import load_or_create_recipient_key
from seqscore.ingest.sealing import Sealer, load_or_create_quarantine_key
from seqscore.ingest.webhook import EventParser, ParsedBatch, Reject
from seqscore.service.seq import last_closed_day
from seqscore.settings import Settings
from seqscore.storage.events import AppendOutcome
from seqscore.storage.state import Quarantined, StateStore
from seqscore.types import Account, Day

log = logging.getLogger("seqscore.ingest")

#: The answer lists at most this many errors (spec/events.md: "first ten").
ANSWER_ERRORS: Final = 10
#: Smaller bodies are parsed in this process: sending them costs more than parsing.
POOL_MIN_BODY_BYTES: Final = 64 << 10
MSG_SIGNATURE = "the webhook signature is missing, invalid or too old"

Appender = Callable[[pa.Table, "bytes | None"], AppendOutcome]
ManyAppender = Callable[[Sequence[tuple[pa.Table, "bytes | None"]]], list[AppendOutcome]]


class SignatureRejected(Forbidden):
    """The account verifies signed webhooks and this POST's signature does not hold."""


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What became of one batch.

    ``accepted`` events were stored; ``duplicates`` were recognised as already
    stored (or repeated within the batch) and not stored again; ``rejected`` were
    invalid, each with its ``(index, reason)`` in ``errors`` (index: position in
    the posted array). ``accepted + duplicates + rejected`` is the batch's size.
    ``jobs_queued`` counts recomputations the batch queued.
    """

    accepted: int
    rejected: int
    duplicates: int
    errors: tuple[tuple[int, str], ...] = ()
    jobs_queued: int = 0

    def answer(self, max_errors: int | None = ANSWER_ERRORS) -> dict[str, Any]:
        """The receiver's JSON answer (spec/events.md); ``max_errors=None`` lists all."""
        errors = self.errors if max_errors is None else self.errors[:max_errors]
        return {"accepted": self.accepted, "rejected": self.rejected,
                "duplicates": self.duplicates,
                "errors": [{"index": index, "message": message} for index, message in errors]}


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A body parsed and ready to store: its rows and rejects, its batch key (see
    ``IngestService.batch_key``) and when it was received."""

    parsed: ParsedBatch
    batch_key: bytes
    received_at: dt.datetime


def stale_ranges(days: Iterable[Day], *, window_days: int, last_closed: Day
                 ) -> list[tuple[Day, Day]]:
    """The days whose results events of ``days`` can change, as merged inclusive
    ranges: each day d reaches d .. d + ``window_days`` - 1, clipped at
    ``last_closed`` (later days have no result yet)."""
    reach = dt.timedelta(days=window_days - 1)
    merged: list[tuple[Day, Day]] = []
    for first in sorted(set(days)):
        if first > last_closed:
            break
        last = min(first + reach, last_closed)
        if merged and first <= merged[-1][1] + dt.timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def unique_events(table: pa.Table) -> tuple[pa.Table, int]:
    """``table`` without repeats of an ``event_id`` (the first copy stays), and how
    many were dropped. All rows are one account's. Cheap when there are none."""
    if table.num_rows < 2 or pc.count_distinct(table["event_id"]).as_py() == table.num_rows:
        return table, 0
    ids = table["event_id"].combine_chunks()
    # unique() lists values in order of first occurrence, so a row is a value's first
    # occurrence exactly where the running maximum of its index in that list grows
    seen_max = pc.cumulative_max(pc.index_in(ids, value_set=pc.unique(ids)))
    before = pa.concat_arrays([pa.array([-1], seen_max.type), seen_max[:-1]])
    kept = table.filter(pc.greater(seen_max, before))
    return kept, table.num_rows - kept.num_rows


class IngestService:
    """Stores batches of events for accounts (see the module doc). Thread-safe."""

    def __init__(self, *, state: StateStore, append: Appender, clock: Clock,
                 parser: EventParser, sealer: Sealer, batch_secret: bytes,
                 engagement_window_days: int, settle_minutes: int,
                 signature_max_age_s: int, pool: ParserPool | None = None) -> None:
        self._state = state
        self._pool = pool
        self._append = append
        self._clock = clock
        self.parser = parser
        self._sealer = sealer
        self._batch_secret = hashlib.blake2b(batch_secret, digest_size=32,
                                             person=b"seq-batch-key").digest()
        self._window_days = engagement_window_days
        self._settle_minutes = settle_minutes
        self._max_age_s = signature_max_age_s
        self._public_keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._keys_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, state: StateStore, clock: Clock,
                      engagement_window_days: int, append: Appender,
                      providers: Mapping[str, str]) -> IngestService:
        """The service of an installation: its secrets are read from (or created in)
        ``settings.data_dir``; ``providers`` is its domain -> mailbox provider table
        (the scoring model's), used for every event stored from now on."""
        recipient_key = load_or_create_recipient_key(settings.data_dir)
        processes = settings.ingest_processes
        if processes is None:
            cores = os.cpu_count() or 1
            processes = cores if cores > 1 else 0
        pool = None if processes <= 0 else ParserPool(
            processes, recipient_key=recipient_key, raw_cap_bytes=settings.raw_cap_bytes,
            providers=providers)
        return cls(state=state, append=append, clock=clock, pool=pool,
                   parser=EventParser(recipient_key, providers=providers,
                                      raw_cap_bytes=settings.raw_cap_bytes),
                   sealer=quarantine_sealer(settings), batch_secret=recipient_key,
                   engagement_window_days=engagement_window_days,
                   settle_minutes=settings.settle_minutes,
                   signature_max_age_s=settings.webhook_max_age_seconds)

    # ------------------------------------------------------------------ webhook

    def receive(self, account: Account, body: bytes, *, signature_b64: str | None,
                timestamp: str | None) -> IngestReport:
        """A webhook POST for ``account``: when the account has a verification key,
        the signature must hold (else ``SignatureRejected``, nothing stored); then
        ``ingest``. Raises ``BodyError`` for a body that is not a JSON array."""
        self.check_signature(account, body, signature_b64, timestamp)
        return self.ingest(account, body)

    def check_signature(self, account: Account, body: bytes, signature_b64: str | None,
                        timestamp: str | None) -> None:
        """Raise ``SignatureRejected`` unless the account verifies no signatures, or
        ``signature_b64`` signs ``timestamp`` + ``body`` under its key and the
        timestamp is within the replay window (``signature_max_age_s``; 0: any age).

        The key is read from the state store on every call, so a key set or
        cleared by another process applies to the next POST."""
        current = self._state.get_account(account.user_id)
        key_text = current.webhook_public_key if current is not None else None
        if not key_text:
            return
        fresh = self._max_age_s <= 0 or signature.timestamp_is_fresh(
            timestamp, now_s=self._clock.now().timestamp(), window_s=self._max_age_s)
        if not fresh or not signature.verify(self._public_key(key_text), signature_b64,
                                             timestamp, body):
            log.warning("account %s: webhook POST refused (%s)", account.user_id,
                        "signature" if fresh else "timestamp missing or outside the window")
            raise SignatureRejected(MSG_SIGNATURE)

    def _public_key(self, text: str) -> ec.EllipticCurvePublicKey:
        with self._keys_lock:
            key = self._public_keys.get(text)
            if key is None:
                if len(self._public_keys) > 1000:
                    self._public_keys.clear()
                key = self._public_keys[text] = signature.load_public_key(text)
            return key

    # ------------------------------------------------------------------- batches

    def batch_key(self, account: Account, body: bytes) -> bytes:
        """The keyed digest that recognises a repeat of ``body`` for ``account``."""
        return hashlib.blake2b(body, digest_size=16, key=self._batch_secret,
                               salt=account.user_id.to_bytes(16, "big", signed=True)).digest()

    def parse(self, account: Account, body: bytes, *, received_at: dt.datetime) -> ParsedBatch:
        """Parse ``body`` for ``account``, in the pool's processes if there is one and
        the body is not small; raises ``BodyError`` (see ``EventParser``)."""
        pool = self._pool
        parse = (pool.parse if pool is not None and len(body) >= POOL_MIN_BODY_BYTES
                 else self.parser.parse)
        return parse(body, account_id=account.user_id, ingested_at=received_at)

    def close(self) -> None:
        """Stop the parser processes, if any."""
        if self._pool is not None:
            self._pool.close()

    def ingest(self, account: Account, body: bytes, *, quarantine: bool = True) -> IngestReport:
        """Parse ``body`` (a JSON array of events) and ``store`` it for ``account``.

        Raises ``BodyError`` for a body that is not a JSON array: nothing is stored."""
        batch = self.prepare(account, body)
        return self.store(account, batch.parsed, batch_key=batch.batch_key,
                          received_at=batch.received_at, quarantine=quarantine)

    def prepare(self, account: Account, body: bytes) -> PreparedBatch:
        """``body`` parsed for ``account`` and ready to store (``store_many``); raises
        ``BodyError`` for a body that is not a JSON array."""
        received_at = self._clock.now()
        return PreparedBatch(self.parse(account, body, received_at=received_at),
                             self.batch_key(account, body), received_at)

    def store_many(self, account: Account, batches: Sequence[PreparedBatch], *,
                   append_many: ManyAppender, quarantine: bool = True) -> list[IngestReport]:
        """``store`` several batches of ``account`` at once: their events in one
        transaction of ``append_many`` (the event store's own, for a caller that is
        its only writer: the import), then one staleness check for all of them.
        One report per batch; the jobs queued are counted in the first."""
        uniques = [unique_events(batch.parsed.table) for batch in batches]
        outcomes = append_many([(table, batch.batch_key)
                                for (table, _), batch in zip(uniques, batches, strict=True)])
        days: set[Day] = set()
        for batch, (table, _) in zip(batches, uniques, strict=True):
            if quarantine and batch.parsed.rejects:
                self.quarantine(account, batch.parsed.rejects, received_at=batch.received_at)
            days.update(table["day"].unique().to_pylist())
        queued = self.mark_stale(account, days, now=max(b.received_at for b in batches)
                                 ) if batches else 0
        return [IngestReport(
            accepted=outcome.stored, rejected=len(batch.parsed.rejects),
            duplicates=outcome.duplicates + repeats,
            errors=tuple((r.index, r.reason) for r in batch.parsed.rejects),
            jobs_queued=queued if i == 0 else 0)
            for i, (batch, (_, repeats), outcome) in enumerate(zip(batches, uniques, outcomes,
                                                                   strict=True))]

    def store(self, account: Account, parsed: ParsedBatch, *, batch_key: bytes | None,
              received_at: dt.datetime, quarantine: bool = True) -> IngestReport:
        """Store a parsed batch (see the module doc); returns what became of it.

        ``quarantine=False`` leaves the rejects to the caller (the import writes
        them beside its file)."""
        table, repeats = unique_events(parsed.table)
        outcome = self._append(table, batch_key)
        if quarantine and parsed.rejects:
            self.quarantine(account, parsed.rejects, received_at=received_at)
        queued = self.mark_stale(account, table["day"].unique().to_pylist(), now=received_at)
        return IngestReport(
            accepted=outcome.stored, rejected=len(parsed.rejects),
            duplicates=outcome.duplicates + repeats,
            errors=tuple((r.index, r.reason) for r in parsed.rejects), jobs_queued=queued)

    def quarantine(self, account: Account, rejects: Sequence[Reject], *,
                   received_at: dt.datetime) -> int:
        """Keep ``rejects`` whole, sealed; returns how many were new."""
        seal, digest = self._sealer.seal, self._sealer.digest
        account_id = account.user_id
        return self._state.add_quarantined([
            Quarantined(account_id, received_at, r.index, r.reason,
                        seal(r.raw, account_id=account_id), digest(r.raw, account_id=account_id))
            for r in rejects])

    def mark_stale(self, account: Account, days: Iterable[Day], *, now: dt.datetime) -> int:
        """Mark stale and queue the stored results events of ``days`` can change;
        returns how many jobs were queued."""
        ranges = stale_ranges(days, window_days=self._window_days,
                              last_closed=last_closed_day(now, self._settle_minutes))
        return sum(self._state.mark_stale_and_enqueue(account.user_id, first, last, now=now)
                   for first, last in ranges)


def quarantine_sealer(settings: Settings) -> Sealer:
    """The installation's quarantine sealer (its key file is created on first use)."""
    return Sealer(load_or_create_quarantine_key(settings.data_dir))


def open_quarantined(state: StateStore, sealer: Sealer, quarantine_id: int
                     ) -> tuple[Quarantined, bytes]:
    """A kept reject and its original bytes, decrypted. Raises ``NotFound``."""
    kept = state.get_quarantined(quarantine_id)
    if kept is None:
        raise NotFound(f"no quarantined event {quarantine_id}")
    return kept, sealer.unseal(kept.sealed_payload, account_id=kept.account_id)
