"""Onboarding: accounts, children and API keys (used by the CLI and /v3 management)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from seqscore import apikeys
from seqscore.clock import Clock
from seqscore.errors import FieldError, Forbidden, InvalidInput, NotFound
from seqscore.storage.state import StateStore
from seqscore.types import FULL_ACCESS, Account, AccountKind, ApiKey, Scope

KNOWN_SCOPES: frozenset[str] = frozenset(s.value for s in Scope) | {FULL_ACCESS}
_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    api_key: str  # the only time the full key is ever available

    def scope_names(self) -> list[str]:
        """Scopes as SendGrid lists them: full access expands to every scope."""
        if FULL_ACCESS in self.key.scopes:
            return sorted(s.value for s in Scope)
        return sorted(self.key.scopes)


def parse_scopes(text: str | Iterable[str] | None) -> frozenset[str]:
    """Scope names from ``a,b`` or a list; None or empty means full access."""
    if text is None:
        return frozenset({FULL_ACCESS})
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = frozenset(s.strip() for s in items if s.strip())
    unknown = sorted(scopes - KNOWN_SCOPES)
    if unknown:
        raise InvalidInput([FieldError("scopes", f"unknown scope {unknown[0]!r}; known: "
                                       + ", ".join(sorted(KNOWN_SCOPES)))])
    return scopes or frozenset({FULL_ACCESS})


class AccountService:
    def __init__(self, state: StateStore, clock: Clock) -> None:
        self._state = state
        self._clock = clock

    def create_account(
        self,
        username: str,
        *,
        parent: Account | None = None,
        kind: AccountKind = AccountKind.SUBUSER,
        email: str = "",
        open_tracking: bool = True,
        user_id: int | None = None,
    ) -> Account:
        """Create a top-level account, or a child of ``parent`` (a top-level account)."""
        if not _USERNAME_RE.fullmatch(username):
            raise InvalidInput([FieldError("username", "username must be 1-64 characters of "
                                           "letters, digits and . _ @ + - (starting with a "
                                           "letter or digit)")])
        if parent is not None and parent.parent_id is not None:
            raise InvalidInput([FieldError("parent", f"{parent.username!r} is itself a child "
                                           "account; children cannot have children")])
        return self._state.create_account(
            username, email=email, parent_id=parent.user_id if parent else None, kind=kind,
            open_tracking=open_tracking, user_id=user_id, now=self._clock.now(),
        )

    def create_key(
        self, account: Account, *, name: str, scopes: frozenset[str],
        granted_by: ApiKey | None = None,
    ) -> CreatedKey:
        """A new key for ``account``; a key creating a key cannot grant more than it has."""
        if (
            granted_by is not None
            and FULL_ACCESS not in granted_by.scopes
            and (FULL_ACCESS in scopes or not scopes <= granted_by.scopes)
        ):
            raise Forbidden("access forbidden")
        new = apikeys.generate()
        key = self._state.insert_key(
            key_id=new.key_id, account_id=account.user_id, name=name, scopes=scopes,
            secret_sha256=new.secret_sha256, now=self._clock.now(),
        )
        return CreatedKey(key, new.api_key)

    def revoke_key(self, key_id: str, *, owner: Account | None = None) -> ApiKey:
        """Revoke a key; with ``owner`` only that account's own key (else NotFound)."""
        found = self._state.get_key(key_id)
        if found is None or (owner is not None and found[0].account_id != owner.user_id):
            raise NotFound(f"no API key {key_id!r}")
        return self._state.revoke_key(key_id)
