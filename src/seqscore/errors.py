"""The exception family of seqscore.

    SeqscoreError
    ├── NotFound            a named account, key or resource does not exist
    ├── Conflict            a unique name is taken (username)
    ├── InvalidInput        a request or command argument is wrong (carries field errors)
    ├── Unauthenticated     no usable credentials (401)
    ├── Forbidden           credentials valid, authority missing (403)
    ├── RateLimited         over the per-key limit (429)
    └── Unavailable         a store cannot be reached or is full (503)

Lower layers raise these; the API layer maps each to SendGrid's error shape and
the CLI to a message and exit code. No layer below the API knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


class SeqscoreError(Exception):
    """Base of every error seqscore raises on purpose."""


class NotFound(SeqscoreError):
    pass


class ConfigurationError(SeqscoreError):
    """Settings that contradict each other or the scoring model: nothing starts."""


class Conflict(SeqscoreError):
    pass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str | None
    message: str


class InvalidInput(SeqscoreError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


class Unauthenticated(SeqscoreError):
    pass


class Forbidden(SeqscoreError):
    pass


class RateLimited(SeqscoreError):
    def __init__(self, limit: int, reset_epoch_s: int) -> None:
        super().__init__("too many requests")
        self.limit = limit
        self.reset_epoch_s = reset_epoch_s


class Unavailable(SeqscoreError):
    pass
