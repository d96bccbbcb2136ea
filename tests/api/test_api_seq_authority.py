"""Who may read which scores: keys, scopes, on-behalf-of, disabled and revoked keys.

One table drives both SEQ endpoints. A row names the key, the endpoint, the
headers, and the expected answer: the account the answer acts as (200) or the
exact error body. The world is built once per engine and only read.

In process, header names reach the app lower-cased whatever the test sends, so
the case variants below check routing only; the wire forms ("On-behalf-of" from
sendgrid-python, "On-Behalf-Of" from both official clients) are sent to a real
server in test_api_seq_clients.py.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from openapi_check import ValidatingClient
from seq_api_support import ENGINES, bearer, client_for, day, entry, module_services

from seqscore.types import Account, AccountKind
from seqscore_testing import World

SCORES = "/v3/engagementquality/scores?from=2026-11-19&to=2026-11-19"
SUBUSERS = "/v3/engagementquality/subusers/scores?date=2026-11-19"
DATE = day("2026-11-19")

AUTH_REQUIRED = (401, {"errors": [{"field": None, "message": "authorization required"}]})
GRANT_INVALID = (401, {"errors": [{"field": None, "message":
                                   "The provided authorization grant is invalid, expired, "
                                   "or revoked"}]})
FORBIDDEN = (403, {"errors": [{"field": None, "message": "access forbidden"}]})

#: name -> (user_id, parent name, kind, disabled)
ACCOUNTS: dict[str, tuple[int, str | None, AccountKind, bool]] = {
    "acme": (10, None, AccountKind.SUBUSER, False),
    "acme-news": (1001, "acme", AccountKind.SUBUSER, False),
    "acme-shop": (99, "acme", AccountKind.CUSTOMER, False),
    "acme-blog": (1000, "acme", AccountKind.SUBUSER, False),
    "acme-gone": (5000, "acme", AccountKind.SUBUSER, True),
    "other": (20, None, AccountKind.SUBUSER, False),
    "other-kid": (2001, "other", AccountKind.SUBUSER, False),
    "other-shop": (2002, "other", AccountKind.CUSTOMER, False),
    "closed-co": (30, None, AccountKind.SUBUSER, True),
    "solo": (40, None, AccountKind.SUBUSER, False),
}

#: key name -> (owner, scopes, revoked)
KEYS: dict[str, tuple[str, str | None, bool]] = {
    "parent": ("acme", None, False),
    "parent-eq-only": ("acme", "engagement_quality.read", False),
    "parent-no-eq": ("acme", "subusers.read,api_keys.read", False),
    "parent-revoked": ("acme", None, True),
    "subuser": ("acme-news", None, False),
    "customer": ("acme-shop", None, False),
    "disabled-child": ("acme-gone", None, False),
    "other-parent": ("other", None, False),
    "disabled-parent": ("closed-co", None, False),
    "solo": ("solo", None, False),
}


def score_for(user_id: int) -> tuple[int, tuple[int, ...]]:
    return user_id % 5 + 1, (user_id % 3 + 1, 2, 3, 4, user_id % 4 + 1)


@dataclass
class Matrix:
    client: ValidatingClient
    accounts: dict[str, Account]
    keys: dict[str, str]

    def as_of(self, name: str) -> dict[str, Any]:
        """200 body of /scores acting as ``name``."""
        account = self.accounts[name]
        return {"result": [entry(account, DATE, *score_for(account.user_id))]}

    def children_of(self, name: str) -> dict[str, Any]:
        """200 body of /subusers/scores for parent ``name``: every child, by user_id."""
        parent_id = ACCOUNTS[name][0]
        kids = sorted((a for a in self.accounts.values() if a.parent_id == parent_id),
                      key=lambda a: a.user_id)
        return {"result": [entry(k, DATE, *score_for(k.user_id)) for k in kids]}


@pytest.fixture(scope="module", params=ENGINES)
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with module_services(request, tmp_path_factory) as services:
        world = World(services)
        made: dict[str, Account] = {}
        for name, (user_id, parent, kind, _disabled) in ACCOUNTS.items():
            made[name] = world.account(name, user_id=user_id, kind=kind,
                                       parent=made[parent] if parent else None)
            world.result(made[name], DATE, *score_for(user_id))
        keys: dict[str, str] = {}
        for key_name, (owner, scopes, revoked) in KEYS.items():
            keys[key_name] = world.key(made[owner], scopes)
            if revoked:  # what `seqscore keys revoke` does, before any use
                services.accounts.revoke_key(keys[key_name].split(".")[1])
        for name, (user_id, *_rest, disabled) in ACCOUNTS.items():
            if disabled:
                made[name] = services.state.update_account(user_id, disabled=True)
        with client_for(services) as client:
            yield Matrix(client, made, keys)


# (id, key, url, extra headers, expected): expected is ("as", account) for
# /scores, ("children", parent) for /subusers/scores, or (status, exact body).
OBO = "on-behalf-of"
CASES: list[tuple[str, str, str, dict[str, str], Any]] = [
    # /scores: the caller itself
    ("parent", "parent", SCORES, {}, ("as", "acme")),
    ("parent-eq-scope-only", "parent-eq-only", SCORES, {}, ("as", "acme")),
    ("subuser-own-key", "subuser", SCORES, {}, ("as", "acme-news")),
    ("customer-own-key", "customer", SCORES, {}, ("as", "acme-shop")),
    ("other-parent", "other-parent", SCORES, {}, ("as", "other")),
    # /scores on behalf of a child: both forms, header name in any case
    ("obo-subuser", "parent", SCORES, {OBO: "acme-news"}, ("as", "acme-news")),
    ("obo-subuser-On-Behalf-Of", "parent", SCORES, {"On-Behalf-Of": "acme-news"},
     ("as", "acme-news")),
    ("obo-subuser-On-behalf-of", "parent", SCORES, {"On-behalf-of": "acme-news"},
     ("as", "acme-news")),
    ("obo-subuser-ON-BEHALF-OF", "parent", SCORES, {"ON-BEHALF-OF": "acme-news"},
     ("as", "acme-news")),
    ("obo-customer", "parent", SCORES, {OBO: "account-id 99"}, ("as", "acme-shop")),
    ("obo-customer-On-Behalf-Of", "parent", SCORES, {"On-Behalf-Of": "account-id 99"},
     ("as", "acme-shop")),
    ("obo-eq-scope-only", "parent-eq-only", SCORES, {OBO: "acme-blog"}, ("as", "acme-blog")),
    ("other-parent-obo-own-child", "other-parent", SCORES, {OBO: "other-kid"},
     ("as", "other-kid")),
    ("other-parent-obo-own-customer", "other-parent", SCORES, {OBO: "account-id 2002"},
     ("as", "other-shop")),
    # /scores on behalf of someone who is not the caller's child, or in the wrong form
    ("obo-customer-by-username", "parent", SCORES, {OBO: "acme-shop"}, FORBIDDEN),
    ("obo-subuser-by-account-id", "parent", SCORES, {OBO: "account-id 1001"}, FORBIDDEN),
    ("obo-another-parents-child", "parent", SCORES, {OBO: "other-kid"}, FORBIDDEN),
    ("obo-another-parents-customer", "parent", SCORES, {OBO: "account-id 2002"}, FORBIDDEN),
    ("obo-another-parent", "parent", SCORES, {OBO: "other"}, FORBIDDEN),
    ("obo-itself", "parent", SCORES, {OBO: "acme"}, FORBIDDEN),
    ("obo-unknown-username", "parent", SCORES, {OBO: "nobody"}, FORBIDDEN),
    ("obo-unknown-account-id", "parent", SCORES, {OBO: "account-id 424242"}, FORBIDDEN),
    ("obo-empty", "parent", SCORES, {OBO: ""}, FORBIDDEN),
    ("obo-account-id-no-number", "parent", SCORES, {OBO: "account-id"}, FORBIDDEN),
    ("obo-account-id-not-digits", "parent", SCORES, {OBO: "account-id 9x9"}, FORBIDDEN),
    ("subuser-obo-sibling", "subuser", SCORES, {OBO: "acme-blog"}, FORBIDDEN),
    ("subuser-obo-itself", "subuser", SCORES, {OBO: "acme-news"}, FORBIDDEN),
    ("customer-obo-sibling", "customer", SCORES, {OBO: "account-id 99"}, FORBIDDEN),
    # scopes, revoked keys, disabled accounts
    ("key-without-eq-scope", "parent-no-eq", SCORES, {}, FORBIDDEN),
    ("key-without-eq-scope-obo", "parent-no-eq", SCORES, {OBO: "acme-news"}, FORBIDDEN),
    ("revoked-key", "parent-revoked", SCORES, {}, GRANT_INVALID),
    ("disabled-parent", "disabled-parent", SCORES, {}, GRANT_INVALID),
    ("disabled-child", "disabled-child", SCORES, {}, GRANT_INVALID),
    # /subusers/scores
    ("subusers-parent", "parent", SUBUSERS, {}, ("children", "acme")),
    ("subusers-eq-scope-only", "parent-eq-only", SUBUSERS, {}, ("children", "acme")),
    ("subusers-other-parent", "other-parent", SUBUSERS, {}, ("children", "other")),
    ("subusers-no-children", "solo", SUBUSERS, {}, (200, {"result": []})),
    ("subusers-subuser-own-key", "subuser", SUBUSERS, {}, FORBIDDEN),
    ("subusers-customer-own-key", "customer", SUBUSERS, {}, FORBIDDEN),
    ("subusers-obo-subuser", "parent", SUBUSERS, {OBO: "acme-news"}, FORBIDDEN),
    ("subusers-obo-subuser-On-Behalf-Of", "parent", SUBUSERS, {"On-Behalf-Of": "acme-news"},
     FORBIDDEN),
    ("subusers-obo-customer", "parent", SUBUSERS, {OBO: "account-id 99"}, FORBIDDEN),
    ("subusers-obo-another-parents-child", "parent", SUBUSERS, {OBO: "other-kid"}, FORBIDDEN),
    ("subusers-key-without-eq-scope", "parent-no-eq", SUBUSERS, {}, FORBIDDEN),
    ("subusers-revoked-key", "parent-revoked", SUBUSERS, {}, GRANT_INVALID),
    ("subusers-disabled-parent", "disabled-parent", SUBUSERS, {}, GRANT_INVALID),
]


@pytest.mark.parametrize(("key", "url", "headers", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_authority(matrix: Matrix, key: str, url: str, headers: dict[str, str],
                   expected: Any) -> None:
    r = matrix.client.get(url, headers=bearer(matrix.keys[key], **headers))
    if expected[0] == "as":
        status, body = 200, matrix.as_of(expected[1])
    elif expected[0] == "children":
        status, body = 200, matrix.children_of(expected[1])
    else:
        status, body = expected
    assert (r.status_code, r.json()) == (status, body)
    if status != 401:  # every answer to an authenticated request is counted
        assert r.headers["X-RateLimit-Limit"] == "600"
        assert int(r.headers["X-RateLimit-Remaining"]) < 600
        assert int(r.headers["X-RateLimit-Reset"]) % 60 == 0


def test_disabled_child_is_still_listed(matrix: Matrix) -> None:
    assert matrix.accounts["acme-gone"].disabled
    body = matrix.children_of("acme")
    assert [e["username"] for e in body["result"]] == [
        "acme-shop", "acme-blog", "acme-news", "acme-gone"]  # 99, 1000, 1001, 5000


# ----------------------------------------------------- the Authorization header

WELL_FORMED_UNKNOWN = "SG." + "A" * 22 + "." + "b" * 43


def malformed_headers(key: str) -> list[tuple[str, dict[str, str]]]:
    basic = base64.b64encode(f"apikey:{key}".encode()).decode()
    return [
        ("missing", {}),
        ("empty", {"Authorization": ""}),
        ("basic", {"Authorization": f"Basic {basic}"}),
        ("bearer-alone", {"Authorization": "Bearer"}),
        ("bearer-space", {"Authorization": "Bearer   "}),
        ("no-scheme", {"Authorization": key}),
        ("token-scheme", {"Authorization": f"Token {key}"}),
        ("not-a-sendgrid-token", {"Authorization": "Bearer not-a-sendgrid-token"}),
        ("short-id", {"Authorization": "Bearer SG.abc." + "b" * 43}),
        ("bad-char", {"Authorization": "Bearer SG." + "A" * 22 + "." + "b" * 42 + "!"}),
    ]


MALFORMED_IDS = [name for name, _ in malformed_headers("SG.x.y")]


@pytest.mark.parametrize("url", [SCORES, SUBUSERS], ids=["scores", "subusers"])
@pytest.mark.parametrize("case", range(len(MALFORMED_IDS)), ids=MALFORMED_IDS)
def test_malformed_authorization_is_authorization_required(matrix: Matrix, url: str,
                                                           case: int) -> None:
    _name, headers = malformed_headers(matrix.keys["parent"])[case]
    r = matrix.client.get(url, headers=headers)
    assert (r.status_code, r.json()) == AUTH_REQUIRED


@pytest.mark.parametrize("url", [SCORES, SUBUSERS], ids=["scores", "subusers"])
def test_well_formed_unknown_key_is_grant_invalid(matrix: Matrix, url: str) -> None:
    r = matrix.client.get(url, headers=bearer(WELL_FORMED_UNKNOWN))
    assert (r.status_code, r.json()) == GRANT_INVALID


def test_known_key_id_with_wrong_secret_is_grant_invalid(matrix: Matrix) -> None:
    key_id = matrix.keys["parent"].split(".")[1]
    r = matrix.client.get(SCORES, headers=bearer(f"SG.{key_id}." + "x" * 43))
    assert (r.status_code, r.json()) == GRANT_INVALID


def test_bearer_scheme_is_case_insensitive(matrix: Matrix) -> None:
    r = matrix.client.get(SCORES, headers={"Authorization": f"bearer {matrix.keys['parent']}"})
    assert (r.status_code, r.json()) == (200, matrix.as_of("acme"))
