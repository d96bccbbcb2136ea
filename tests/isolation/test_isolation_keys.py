"""Secrets are compared in constant time, found by a public id, and never by ``==``.

An API key is ``SG.<id>.<secret>``: the state store is searched by the public id, and
the SHA-256 of the presented key is compared with the stored one by
``hmac.compare_digest``. The in-process cache of verified keys is a dict keyed by the
whole key (a hash lookup with a per-process random seed: no prefix timing). Form tokens
of the dashboard are compared with ``hmac.compare_digest`` too. These are checked by
reading the code (so a later ``==`` cannot slip in) and by behaviour.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from seqscore import apikeys
from seqscore.dashboard import session
from seqscore.errors import Unauthenticated
from seqscore.service import auth
from seqscore.service.services import Services
from seqscore_testing import World

SRC = Path(auth.__file__).resolve().parents[1]
#: Identifiers that name secret material (or its hash) somewhere in seqscore.
SECRET_WORDS = re.compile(r"secret|api_key|token|digest|sha256|signature|password|csrf|hmac",
                          re.I)
#: Equality comparisons whose operands only sound secret, each with the reason.
PUBLIC_EQUALITIES = {
    ("storage/state.py", "api_keys.c.key_id == key_id"): "SQL by the public key id",
    ("storage/state.py", "api_keys.c.account_id == account_id"): "SQL by account",
    ("service/worker.py", "token.split('.')[0] == _pid_namespace()"):
        "a worker's claim token names its process; not a credential",
    ("service/importer.py", "_body_digest(_join(elements[a:b])) != d"):
        "a content digest of an import file's chunk (recognising a re-run); not a credential",
}


def _names(node: ast.AST) -> list[str]:
    return [n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node)
            if isinstance(n, ast.Name | ast.Attribute)]


def _calls(function: object) -> list[str]:
    """Dotted names of everything ``function`` calls."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    return [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]


def test_no_secret_is_compared_with_equality() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Compare)
                    and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)):
                continue
            if any(SECRET_WORDS.search(name)
                   for side in (node.left, *node.comparators) for name in _names(side)):
                where = (path.relative_to(SRC).as_posix(), ast.unparse(node))
                if where not in PUBLIC_EQUALITIES:
                    found.append(f"{where[0]}:{node.lineno}: {where[1]}")
    assert found == [], "compare secrets with hmac.compare_digest, not =="


def test_key_verification_is_a_lookup_by_id_then_a_constant_time_hash_comparison() -> None:
    assert "hmac.compare_digest" in _calls(apikeys.matches)
    assert "digest" in _calls(apikeys.matches)  # hashes of equal length, never raw keys
    calls = _calls(auth.Authenticator.authenticate)
    assert "apikeys.matches" in calls
    assert "apikeys.parse_key_id" in calls and "self._state.get_key" in calls
    assert "hmac.compare_digest" in _calls(session.same_token)
    assert "same_token" in _calls(session.Sessions.login_token_ok)


def test_a_wrong_secret_is_always_checked_and_never_cached(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    key = World(services).key(World(services).account("acme"))
    prefix, key_id, secret = key.split(".")
    wrong = f"{prefix}.{key_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    checks: list[str] = []
    real = apikeys.matches

    def counting(api_key: str, secret_sha256: bytes) -> bool:
        checks.append(api_key)
        return real(api_key, secret_sha256)

    monkeypatch.setattr(apikeys, "matches", counting)
    authenticator = auth.Authenticator(services.state, cache_seconds=60)
    assert authenticator.authenticate(f"Bearer {key}").account.username == "acme"
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            authenticator.authenticate(f"Bearer {wrong}")
    assert authenticator.authenticate(f"Bearer {key}").account.username == "acme"  # cached
    assert checks == [key, wrong, wrong, wrong]
    assert not apikeys.matches(wrong, apikeys.digest(key))
