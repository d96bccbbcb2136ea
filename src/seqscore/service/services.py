"""Everything a running seqscore needs, built once from Settings and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from seqscore.clock import Clock, clock_from_setting
from seqscore.service.accounts import AccountService
from seqscore.service.auth import Authenticator
from seqscore.service.ratelimit import RateLimiter
from seqscore.service.seq import SeqService
from seqscore.settings import Settings
from seqscore.storage.state import StateStore


@dataclass
class Services:
    settings: Settings
    clock: Clock
    state: StateStore
    auth: Authenticator
    rate_limiter: RateLimiter
    seq: SeqService
    accounts: AccountService

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Services:
        """Open the stores named by ``settings`` (migrating them) and wire the services."""
        clock = clock or clock_from_setting(settings.now)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        state = StateStore.open(settings.resolved_state_url)
        return cls(
            settings=settings,
            clock=clock,
            state=state,
            auth=Authenticator(state, cache_seconds=settings.auth_cache_seconds),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute),
            seq=SeqService(state, clock, settle_minutes=settings.settle_minutes),
            accounts=AccountService(state, clock),
        )

    def close(self) -> None:
        self.state.close()
