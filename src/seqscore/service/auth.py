"""Who is calling, and on whose behalf.

``Authenticator`` turns an ``Authorization`` header into a ``Caller`` (key plus
account), with a short in-process cache so the hot read paths do not hit the
state store on every request. ``resolve_target`` applies SendGrid's
``on-behalf-of`` rules.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from seqscore import apikeys
from seqscore.errors import Forbidden, Unauthenticated
from seqscore.storage.state import StateStore
from seqscore.types import Account, AccountKind, ApiKey

MSG_AUTH_REQUIRED = "authorization required"
MSG_GRANT_INVALID = "The provided authorization grant is invalid, expired, or revoked"
MSG_FORBIDDEN = "access forbidden"


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey
    account: Account

    def require(self, scope: str) -> None:
        """Raise ``Forbidden`` unless the key has ``scope`` (full access has all)."""
        if not self.key.allows(scope):
            raise Forbidden(MSG_FORBIDDEN)


def presented_key(authorization: str | None, *, allow_basic: bool = False) -> str:
    """The API key in an ``Authorization`` header (Bearer, or Basic's password)."""
    if not authorization:
        raise Unauthenticated(MSG_AUTH_REQUIRED)
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if allow_basic and scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError as exc:
            raise Unauthenticated(MSG_AUTH_REQUIRED) from exc
        _user, sep, password = decoded.partition(":")
        if sep and password:
            return password
    raise Unauthenticated(MSG_AUTH_REQUIRED)


class Authenticator:
    """Verifies API keys against the state store, caching good ones briefly.

    Only verified keys are cached, keyed by the full presented key, so a wrong
    secret for a known key id is always re-checked (constant-time) and never
    served from the cache.
    """

    def __init__(
        self,
        state: StateStore,
        *,
        cache_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._ttl = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None, *, allow_basic: bool = False) -> Caller:
        api_key = presented_key(authorization, allow_basic=allow_basic)
        now = self._monotonic()
        cached = self._cache.get(api_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        key_id = apikeys.parse_key_id(api_key)
        if key_id is None:
            raise Unauthenticated(MSG_AUTH_REQUIRED)
        found = self._state.get_key(key_id)
        if found is None:
            raise Unauthenticated(MSG_GRANT_INVALID)
        key, secret_sha256 = found
        if not apikeys.matches(api_key, secret_sha256) or key.revoked:
            raise Unauthenticated(MSG_GRANT_INVALID)
        account = self._state.get_account(key.account_id)
        if account is None or account.disabled:
            raise Unauthenticated(MSG_GRANT_INVALID)
        caller = Caller(key, account)
        if self._ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[api_key] = (now + self._ttl, caller)
        return caller

    def forget(self) -> None:
        """Drop every cached key (after a revocation or an account change)."""
        with self._lock:
            self._cache.clear()


def resolve_target(state: StateStore, caller: Caller, on_behalf_of: str | None) -> Account:
    """The account a request acts as: the caller's, or the child it names.

    ``<username>`` names a subuser, ``account-id <user_id>`` a customer account.
    Only a parent (top-level account) may use the header, and only for its own
    children; anything else is ``Forbidden``.
    """
    if on_behalf_of is None:
        return caller.account
    value = on_behalf_of.strip()
    if not value or caller.account.parent_id is not None:
        raise Forbidden(MSG_FORBIDDEN)
    prefix, _, rest = value.partition(" ")
    if prefix.lower() == "account-id":
        rest = rest.strip()
        if not (rest.isascii() and rest.isdigit()) or len(rest) > 18:
            raise Forbidden(MSG_FORBIDDEN)
        child = state.get_account(int(rest))
        wanted_kind = AccountKind.CUSTOMER
    else:
        child = state.get_account_by_username(value)
        wanted_kind = AccountKind.SUBUSER
    if child is None or child.parent_id != caller.account.user_id or child.kind != wanted_kind:
        raise Forbidden(MSG_FORBIDDEN)
    return child
