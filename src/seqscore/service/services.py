"""Everything a running seqscore needs, built once from Settings and passed down."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from seqscore.clock import Clock, clock_from_setting
from seqscore.errors import ConfigurationError
from seqscore.scoring import DEFAULT_MODEL, ScoringModel, load_model
from seqscore.service.accounts import AccountService
from seqscore.service.auth import Authenticator
from seqscore.service.committer import GroupCommitter
from seqscore.service.ingest import IngestService
from seqscore.service.ratelimit import Limiter, make_rate_limiter
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
    rate_limiter: Limiter
    seq: SeqService
    accounts: AccountService
    _events: EventStore | None = field(default=None, repr=False)
    _events_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ingest: IngestService | None = field(default=None, repr=False)
    _committer: GroupCommitter | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Services:
        """Open the state store named by ``settings`` (migrating it) and wire the services.

        The event store opens on first use (``events``): commands that only touch
        state never contend for the event store's single-writer file.
        """
        clock = clock or clock_from_setting(settings.now)
        model = load_model(settings.model) if settings.model else DEFAULT_MODEL
        check_retention(settings, model)
        open_data_dir(settings.data_dir)
        state = StateStore.open(settings.resolved_state_url,
                                connect_timeout_s=settings.state_connect_timeout_seconds)
        return cls(
            settings=settings,
            clock=clock,
            state=state,
            model=model,
            auth=Authenticator(state, cache_seconds=settings.auth_cache_seconds),
            rate_limiter=make_rate_limiter(settings.rate_limit_store,
                                           settings.rate_limit_per_minute, state),
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
                    wal_mb=self.settings.events_wal_mb,
                    compact_grace_seconds=self.settings.events_compact_grace_minutes * 60,
                    compact_target_bytes=self.settings.events_compact_target_mb * 1024 * 1024,
                )
            return self._events

    @property
    def ingest(self) -> IngestService:
        """The ingest use case (opens the event store and the installation's secrets)."""
        events = self.events
        with self._events_lock:
            if self._ingest is None:
                self._committer = GroupCommitter(events)
                self._ingest = IngestService.from_settings(
                    self.settings, state=self.state, clock=self.clock,
                    engagement_window_days=self.model.engagement_window_days,
                    append=self._committer.append, providers=self.model.providers)
            return self._ingest

    def close(self) -> None:
        with self._events_lock:
            if self._ingest is not None:
                self._ingest.close()
                self._ingest = None
            if self._committer is not None:
                self._committer.close()
                self._committer = None
            if self._events is not None:
                self._events.close()
                self._events = None
        self.state.close()


def open_data_dir(folder: Path) -> None:
    """Create the data dir, if missing, for its owner only (0700).

    It holds the installation's secrets (each file 0600) and the embedded stores,
    whose files the libraries create with the process umask: the folder's mode is
    what keeps other local users out of them. An existing folder is left as it is.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def check_retention(settings: Settings, model: ScoringModel) -> None:
    """Raise ``ConfigurationError`` when events would be deleted while still inside
    the model's longest window (``engagement_window_days``): results of the days
    still computed would lose them."""
    window = model.engagement_window_days
    if settings.events_retention_days <= window:
        raise ConfigurationError(
            f"SEQSCORE_EVENTS_RETENTION_DAYS={settings.events_retention_days} would delete "
            f"events still inside the scoring model's longest window "
            f"(engagement_window_days = {window} days): keep more than {window} days, "
            f"with a margin for late events (default 120)")
