"""The isolation world: two parent families, keys of every kind, and the authority rule.

Imported by name (tests have no packages). ``build_world`` makes, through the real
services, two parents with two subusers and one customer account each, five keys
per account (full access, SEQ read-only, events.write only, no SEQ scope, revoked),
events and results for every account, and a webhook verification key per account
(so every POST to the receiver is signed, by the account it names).

Every account's data carries *markers*, strings that appear nowhere else: its
username (also inside its e-mail address and key names), its user_id (a 7-digit
number matched on digit boundaries), its key ids and its webhook public key. A
response that carries a marker carries that account's data.

``may_act_for`` and ``named_by_header`` are the authority rule, written out here
independently of the app: an account acts for itself; a parent for its own children
(``on-behalf-of: <username>`` for a subuser, ``account-id <user_id>`` for a customer
account); nobody for anyone else.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seqscore.service.accounts import parse_scopes
from seqscore.service.services import Services
from seqscore.types import Account, AccountKind
from seqscore_testing import TEST_NOW, World

CLOSED = TEST_NOW.date() - dt.timedelta(days=1)  # the last closed day: 2026-11-19
RESULT_DAYS = tuple(CLOSED - dt.timedelta(days=n) for n in range(3))
NOW_S = int(TEST_NOW.timestamp())

#: username -> (user_id, parent username, kind). Usernames are markers: none is a
#: substring of another, of a template or of any fixed text of an answer.
ACCOUNTS: dict[str, tuple[int, str | None, AccountKind]] = {
    "qzalder": (7310001, None, AccountKind.SUBUSER),
    "qzbirch": (7310002, "qzalder", AccountKind.SUBUSER),
    "qzcedar": (7310003, "qzalder", AccountKind.SUBUSER),
    "qzdahlia": (7310004, "qzalder", AccountKind.CUSTOMER),
    "qzelm": (7320001, None, AccountKind.SUBUSER),
    "qzfern": (7320002, "qzelm", AccountKind.SUBUSER),
    "qzgorse": (7320003, "qzelm", AccountKind.SUBUSER),
    "qzhazel": (7320004, "qzelm", AccountKind.CUSTOMER),
}
#: Named in requests, never created.
GHOST_USERNAME, GHOST_USER_ID = "qzivy", 7399999

#: key kind -> scopes ("" = full access) and whether it is revoked
KEY_KINDS: dict[str, tuple[str, bool]] = {
    "full": ("", False),
    "seq-read": ("engagement_quality.read", False),
    "events-only": ("events.write", False),
    "no-seq": ("subusers.read,subusers.create,api_keys.read,api_keys.create,api_keys.delete,"
               "events.write", False),
    "revoked": ("", True),
}
#: Who calls in the matrix: every kind of key of a parent; the keys of a subuser and of
#: a customer account that can pass some endpoint's scope check; and the full keys of
#: the other family (the mirror image: the rule is not an accident of one family's ids).
CALLERS: tuple[tuple[str, str], ...] = (
    *(("qzalder", kind) for kind in KEY_KINDS),
    ("qzbirch", "full"), ("qzbirch", "seq-read"), ("qzbirch", "no-seq"),
    ("qzdahlia", "full"), ("qzdahlia", "events-only"),
    ("qzelm", "full"), ("qzfern", "full"),
)

_FULL_KEY_RE = re.compile(rb"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")


class Signer:
    """A P-256 key pair like SendGrid's Event Webhook signing key."""

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()

    def headers(self, payload: bytes, timestamp: int = NOW_S) -> dict[str, str]:
        stamp = str(timestamp)
        signature = self._private.sign(stamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


@dataclass(frozen=True)
class Key:
    owner: str
    kind: str
    secret: str  # the full key, as a client holds it
    key_id: str
    scopes: frozenset[str]
    revoked: bool

    def allows(self, scope: str) -> bool:
        return not self.revoked and ("full_access" in self.scopes or scope in self.scopes)


@dataclass
class IsoWorld:
    services: Services
    accounts: dict[str, Account]
    keys: dict[tuple[str, str], Key]
    signers: dict[str, Signer]
    recipients: dict[str, list[str]]
    _markers: dict[str, list[bytes]] = field(default_factory=dict)
    _id_res: dict[str, re.Pattern[bytes]] = field(default_factory=dict)

    def by_id(self, user_id: int) -> Account | None:
        return next((a for a in self.accounts.values() if a.user_id == user_id), None)

    def children(self, parent: Account) -> list[Account]:
        return [a for a in self.accounts.values() if a.parent_id == parent.user_id]

    def family(self, account: Account) -> set[str]:
        """The account and its children, by username."""
        return {account.username, *(c.username for c in self.children(account))}

    def markers_found(self, body: bytes) -> set[str]:
        """The usernames of the accounts whose data ``body`` carries."""
        if not self._markers:
            for name, account in self.accounts.items():
                self._markers[name] = [name.encode(), self.signers[name].public_key.encode(),
                                       *(k.key_id.encode() for k in self.keys.values()
                                         if k.owner == name)]
                self._id_res[name] = re.compile(rb"(?<![0-9])%d(?![0-9])" % account.user_id)
        return {name for name, needles in self._markers.items()
                if any(n in body for n in needles) or self._id_res[name].search(body)}


def full_keys_in(body: bytes) -> list[bytes]:
    """Every full API key (``SG.<id>.<secret>``) quoted in ``body``."""
    return _FULL_KEY_RE.findall(body)


def event_batch(owner: str, serial: int, count: int = 2) -> tuple[bytes, list[str]]:
    """A webhook body of ``count`` events of the last closed day for ``owner``'s
    recipients: (body, the recipient addresses it names)."""
    stamp = int(dt.datetime(CLOSED.year, CLOSED.month, CLOSED.day, 9, tzinfo=dt.UTC)
                .timestamp())
    addresses = [f"{owner}.Rcpt{serial}x{n}@Example.ORG" for n in range(count)]
    events = [{"email": address, "timestamp": stamp + n, "event": "delivered",
               "sg_event_id": f"ev-{owner}-{serial}-{n}", "sg_message_id": f"m{serial}.{n}"}
              for n, address in enumerate(addresses)]
    return json.dumps(events).encode(), addresses


def build_world(services: Services) -> IsoWorld:
    world = World(services)
    accounts: dict[str, Account] = {}
    for name, (user_id, parent, kind) in ACCOUNTS.items():
        accounts[name] = world.account(name, user_id=user_id, kind=kind,
                                       parent=accounts[parent] if parent else None)
    keys: dict[tuple[str, str], Key] = {}
    for name, account in accounts.items():
        for kind, (scopes, revoked) in KEY_KINDS.items():
            created = services.accounts.create_key(
                account, name=f"{name} {kind}", scopes=parse_scopes(scopes or None))
            if revoked:
                services.accounts.revoke_key(created.key.key_id)
            keys[name, kind] = Key(name, kind, created.api_key, created.key.key_id,
                                   frozenset(created.key.scopes), revoked)
    recipients: dict[str, list[str]] = {}
    for serial, (name, account) in enumerate(accounts.items()):
        payload, addresses = event_batch(name, serial, count=4)
        recipients[name] = addresses
        report = services.ingest.receive(account, payload, signature_b64=None, timestamp=None)
        assert report.answer(None)["accepted"] == 4
        for n, day in enumerate(RESULT_DAYS):
            world.result(account, day, score=1 + (account.user_id + n) % 5)
    signers: dict[str, Signer] = {}
    for name in accounts:
        signers[name] = Signer()
        accounts[name] = services.state.update_account(
            accounts[name].user_id, webhook_public_key=signers[name].public_key)
    services.auth.forget()
    return IsoWorld(services, accounts, keys, signers, recipients)


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers flattened."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI >= 0.165
            if included is not None:
                context = getattr(route, "include_context", None)
                walk(included.routes, prefix + (getattr(context, "prefix", "") or ""))
                continue
            found.update((method, prefix + route.path)
                         for method in getattr(route, "methods", None) or ()
                         if method != "HEAD")

    walk(app.routes, "")
    return found


# ------------------------------------------------------------------ the authority rule


def may_act_for(caller: Account, other: Account | None) -> bool:
    """An account acts for itself; a parent for its own children; nobody for others."""
    if other is None:
        return False
    return other.user_id == caller.user_id or other.parent_id == caller.user_id


def header_form(account: Account) -> str:
    """How ``on-behalf-of`` names a child: by username, or ``account-id`` for customers."""
    return "account-id" if account.kind is AccountKind.CUSTOMER else "username"


def named_by_header(caller: Account, target: Account | None, form: str) -> Account | None:
    """The account an ``on-behalf-of`` header in ``form`` naming ``target`` acts as, or
    None (403). Only a parent uses the header, only for its own child (not itself), and
    only in the form of the child's kind."""
    if caller.parent_id is not None or target is None or target.user_id == caller.user_id:
        return None
    if not may_act_for(caller, target) or header_form(target) != form:
        return None
    return target


# --------------------------------------------------------- what changed in the stores


Fingerprint = dict[int, tuple[Any, ...]]

#: Per account: its row, then digests of its keys, results, jobs and quarantine that
#: change whenever a row is added, removed or changed in a way a request could.
_STATE_QUERIES = (
    "SELECT user_id, username, email, parent_id, kind, disabled, webhook_public_key "
    "FROM accounts",
    "SELECT account_id, count(*), sum(revoked), max(key_id) FROM api_keys GROUP BY 1",
    "SELECT account_id, count(*), sum(stale), total(score), max(computed_at) FROM results "
    "GROUP BY 1",
    "SELECT account_id, count(*), sum(state = 'pending'), max(updated_at) FROM jobs "
    "GROUP BY 1",
    "SELECT account_id, count(*) FROM quarantine GROUP BY 1",
)


class Stores:
    """Reads what every account has in the stores, to see what a request changed.

    The state store is read through a read-only SQLite connection of its own (WAL: it
    never blocks the server, and each query sees everything committed). Only the
    receiver writes events, and counting them costs milliseconds, so the event store is
    counted per account before and after the whole matrix (``event_counts``).
    """

    def __init__(self, world: IsoWorld, state_file: Path) -> None:
        self._world = world
        self._conn = sqlite3.connect(f"file:{state_file}?mode=ro", uri=True,
                                     isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self._conn.close()

    def fingerprint(self) -> Fingerprint:
        """Per account id: its account row and digests of its keys, results, jobs and
        quarantine (``_STATE_QUERIES``)."""
        per: dict[int, list[list[tuple[Any, ...]]]] = {}
        for part, query in enumerate(_STATE_QUERIES):
            for row in self._conn.execute(query):
                per.setdefault(int(row[0]), [[] for _ in _STATE_QUERIES])[part].append(
                    tuple(row[1:]))
        return {user_id: tuple(tuple(part) for part in parts) for user_id, parts in per.items()}

    def key_row(self, key_id: str) -> tuple[int, bool] | None:
        """(account id, revoked) of a stored key."""
        row = self._conn.execute("SELECT account_id, revoked FROM api_keys WHERE key_id = ?",
                                 (key_id,)).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def event_counts(self) -> dict[int, int]:
        rows = self._world.services.events.sql(  # type: ignore[attr-defined]
            "SELECT account_id, count(*) FROM events GROUP BY 1")
        return {int(user_id): int(count) for user_id, count in rows}


def changed(before: Fingerprint, after: Fingerprint) -> set[int]:
    return {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
