"""Everything a running seqscore needs, built once from Settings and passed down."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from seqscore.clock import Clock, clock_from_setting
from seqscore.scoring import DEFAULT_MODEL, ScoringModel, load_model
from seqscore.service.accounts import AccountService
from seqscore.service.auth import Authenticator
from seqscore.service.ratelimit import RateLimiter
from seqscore.service.seq import SeqService
from seqscore.settings import Settings
from seqscore.storage.events import EventStore, open_event_store
from seqscore.storage.state import StateStore


@dataclass
class Services:
    settings: Settings
    clock: Clock
    state: StateStore
    model: ScoringModel
    auth: Authenticator
    rate_limiter: RateLimiter
    seq: SeqService
    accounts: AccountService
    _events: EventStore | None = field(default=None, repr=False)
    _events_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Services:
        """Open the state store named by ``settings`` (migrating it) and wire the services.

        The event store opens on first use (``events``): commands that only touch
        state never contend for the event store's single-writer file.
        """
        clock = clock or clock_from_setting(settings.now)
        model = load_model(settings.model) if settings.model else DEFAULT_MODEL
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        state = StateStore.open(settings.resolved_state_url)
        return cls(
            settings=settings,
            clock=clock,
            state=state,
            model=model,
            auth=Authenticator(state, cache_seconds=settings.auth_cache_seconds),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute),
            seq=SeqService(state, clock, settle_minutes=settings.settle_minutes),
            accounts=AccountService(state, clock),
        )

    @property
    def events(self) -> EventStore:
        with self._events_lock:
            if self._events is None:
                self._events = open_event_store(
                    self.settings.resolved_events_url,
                    memory_limit=self.settings.events_memory_limit,
                    threads=self.settings.events_threads or None,
                )
            return self._events

    def close(self) -> None:
        with self._events_lock:
            if self._events is not None:
                self._events.close()
                self._events = None
        self.state.close()
