"""The dashboard's session cookie and form tokens.

The session cookie holds the API key the user logged in with, encrypted
(Fernet: AES-128-CBC plus HMAC-SHA256), next to a per-session CSRF token, the
whole signed and time-stamped by itsdangerous. Both keys derive from one
per-installation secret, the file ``dashboard-secret`` in the data dir (0600).
The key is re-verified through the ``Authenticator`` on every request, so a
revoked key or a disabled account logs the session out at once.

The login form, which has no session yet, is protected by a signed pre-session
token (double submit: a short-lived cookie and a hidden field that must match).
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeTimedSerializer

log = logging.getLogger("seqscore.dashboard")

SECRET_FILE = "dashboard-secret"  # noqa: S105 (a file name, not a secret)
SESSION_COOKIE = "seqscore_session"
LOGIN_COOKIE = "seqscore_login"
#: A session lasts at most this long, however active.
SESSION_MAX_AGE_S = 12 * 3600
#: A login form must be sent back within this long.
LOGIN_MAX_AGE_S = 3600


def load_or_create_secret(data_dir: Path) -> bytes:
    """The installation's dashboard secret, created (32 random bytes, mode 0600) if absent.

    Creation is exclusive (``O_EXCL``), so processes starting together on one
    data dir agree on a single secret. Sessions survive restarts; deleting the
    file logs everyone out.
    """
    path = data_dir / SECRET_FILE
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(secrets.token_hex(32) + "\n")
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    for _attempt in range(50):  # another process may have created it and not written yet
        text = path.read_text(encoding="ascii").strip()
        if text:
            if path.stat().st_mode & 0o077:
                log.warning("%s is readable by other users; chmod 600 it", path)
            return bytes.fromhex(text)
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it to create a new dashboard secret")


@dataclass(frozen=True, slots=True)
class Session:
    api_key: str
    csrf_token: str


class Sessions:
    """Issues and reads session cookies and login-form tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"seqscore dashboard session encryption")
        self._fernet = Fernet(base64.urlsafe_b64encode(hkdf.derive(secret)))
        self._session = URLSafeTimedSerializer(secret, salt="seqscore.dashboard.session")
        self._login = URLSafeTimedSerializer(secret, salt="seqscore.dashboard.login")

    def issue(self, api_key: str) -> tuple[str, Session]:
        """A new session for ``api_key`` (already verified) and its cookie value."""
        session = Session(api_key, secrets.token_urlsafe(32))
        sealed = self._fernet.encrypt(api_key.encode("utf-8")).decode("ascii")
        return self._session.dumps({"k": sealed, "c": session.csrf_token}), session

    def read(self, cookie: str | None) -> Session | None:
        """The session of a cookie value; None when absent, forged, expired or unreadable."""
        if not cookie:
            return None
        try:
            payload = self._session.loads(cookie, max_age=SESSION_MAX_AGE_S)
            api_key = self._fernet.decrypt(str(payload["k"]).encode("ascii")).decode("utf-8")
            return Session(api_key, str(payload["c"]))
        except (BadSignature, InvalidToken, KeyError, TypeError, ValueError):
            return None

    def login_token(self) -> tuple[str, str]:
        """A fresh login-form token and the cookie value that vouches for it."""
        token = secrets.token_urlsafe(32)
        return token, self._login.dumps(token)

    def login_token_ok(self, cookie: str | None, submitted: str | None) -> bool:
        """True when ``submitted`` is the token of a valid, unexpired login cookie."""
        if not cookie or not submitted:
            return False
        try:
            expected = self._login.loads(cookie, max_age=LOGIN_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(expected, str) and same_token(expected, submitted)


def same_token(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison of form tokens."""
    return submitted is not None and hmac.compare_digest(expected.encode(), submitted.encode())
