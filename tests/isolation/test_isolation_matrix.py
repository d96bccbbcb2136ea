"""No account ever reads or writes another's data: the whole matrix, on a real server.

Every (caller key, target account, endpoint, header variant) is sent to a real
uvicorn server on loopback (``live_server.serving``) over one keep-alive connection:

- callers: ``isolation_world.CALLERS`` (every kind of key of a parent, a subuser and a
  customer account, and the full keys of the other family);
- targets: every account of both families (so, relative to the caller: itself, its own
  subuser and customer account, its parent, its siblings, the other parent and that
  parent's children) and one that does not exist;
- endpoints: every route that touches account data, listed in ``ENDPOINTS``; a test
  checks the list against the app's routes, so a new endpoint cannot be forgotten;
- header variants: no ``on-behalf-of``; ``on-behalf-of`` naming the target by username;
  by ``account-id <user_id>``; malformed; and HTTP Basic credentials (the receiver's
  form) naming the target as it should be named.

The expected answer is computed from the authority rule in ``isolation_world``
(``may_act_for``, ``named_by_header``) and each endpoint's documented meaning, never
from the app. Each answer must have the expected status; its body must carry data
(markers) only of the accounts the acting account may see, and the data it exists to
show; no body ever quotes an API key except the one a key creation returns; and the
stores (accounts, keys, results, jobs, quarantine, events per account) must change
only for the acting account, only when allowed, and exactly as the request asked.

The authority tests of /v3 (tests/api/test_api_seq_authority.py) check exact bodies and
both engines for the two SEQ endpoints; this one proves isolation across all endpoints.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from isolation_world import (
    CALLERS,
    CLOSED,
    GHOST_USER_ID,
    GHOST_USERNAME,
    RESULT_DAYS,
    Fingerprint,
    IsoWorld,
    Key,
    Signer,
    Stores,
    app_routes,
    build_world,
    changed,
    event_batch,
    full_keys_in,
    header_form,
    may_act_for,
    named_by_header,
)

from live_server import serving
from seqscore.api.app import create_app
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import Account, AccountKind
from seqscore_testing import TEST_NOW

pytestmark = pytest.mark.slow

EQ, SCORES = "engagement_quality.read", "scores.read"
FULL = "full_access"
VARIANTS = ("none", "obo-username", "obo-account-id", "obo-malformed", "basic")


@dataclass(frozen=True)
class Endpoint:
    """One route that touches account data, and what it means.

    ``kind``: ``self`` acts on the acting account; ``children`` lists or creates the
    acting parent's children (a child is refused); ``overview`` shows the acting
    account's children, or itself; ``path-child`` names one of the acting parent's
    children in the path (another account is 404); ``path-view`` names the acting
    account or one of its children in the path (else 403); ``path-key`` names a key of
    the acting account (else 404); ``page``/``page-view`` are dashboard pages, which act
    as the signed-in account only.
    """

    method: str
    route: str
    scopes: tuple[str, ...]  # any one of them suffices
    kind: str
    obo: bool = True  # reads on-behalf-of
    ok: int = 200

    @property
    def write(self) -> bool:
        return self.method != "GET"

    @property
    def page(self) -> bool:
        return self.kind in ("page", "page-view")


#: Reads first, then writes (the writes change what the reads would show), account
#: creation last.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/v3/engagementquality/scores", (EQ,), "self"),
    Endpoint("GET", "/v3/engagementquality/subusers/scores", (EQ,), "children"),
    Endpoint("GET", "/v3/subusers", ("subusers.read",), "children", obo=False),
    Endpoint("GET", "/v3/api_keys", ("api_keys.read",), "self"),
    Endpoint("GET", "/api/v1/scores/{date}", (SCORES, EQ), "self"),
    Endpoint("GET", "/api/v1/scores", (SCORES, EQ), "self"),
    Endpoint("GET", "/api/v1/subusers/{username}/scores/{date}", (SCORES, EQ), "path-child"),
    Endpoint("GET", "/api/v1/webhook-key", (FULL,), "self"),
    Endpoint("GET", "/api/v1/dashboard/overview", (EQ,), "overview"),
    Endpoint("GET", "/api/v1/dashboard/accounts/{username}", (EQ,), "path-view"),
    Endpoint("GET", "/", (EQ,), "page", obo=False),
    Endpoint("GET", "/accounts/{username}", (EQ,), "page-view", obo=False),
    Endpoint("DELETE", "/v3/api_keys/{api_key_id}", ("api_keys.delete",), "path-key", ok=204),
    Endpoint("POST", "/v3/api_keys", ("api_keys.create",), "self", ok=201),
    Endpoint("PUT", "/api/v1/webhook-key", (FULL,), "self"),
    Endpoint("DELETE", "/api/v1/webhook-key", (FULL,), "self", ok=204),
    Endpoint("POST", "/api/v1/events/sendgrid", ("events.write",), "self"),
    Endpoint("POST", "/v3/subusers", ("subusers.create",), "children", obo=False, ok=201),
)

#: Routes that touch no account's data, and why.
NOT_ACCOUNT_DATA: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health"): "liveness, no account",
    ("GET", "/api/openapi.json"): "the API description",
    ("GET", "/api/docs"): "the API description",
    ("GET", "/static/{name}"): "the dashboard's packaged assets",
    ("GET", "/login"): "the login form (test_isolation_web checks its headers)",
    ("POST", "/login"): "exchanges a key for a session; the matrix signs in through it",
    ("POST", "/logout"): "drops the browser's cookie; no server state",
}

MALFORMED = ("account-id {id}x", "{name},{name}", "account-id 0x{id:x}", "account-id",
             "@{name}", "account-id {id} {id}")


def test_every_route_is_in_the_matrix_or_touches_no_account(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", worker=False)
    services = Services.open(settings, clock=FrozenClock(TEST_NOW))
    try:
        routes = app_routes(create_app(services))
    finally:
        services.close()
    listed = {(e.method, e.route) for e in ENDPOINTS}
    assert routes - NOT_ACCOUNT_DATA.keys() == listed, (
        "a route is neither in the isolation matrix nor declared free of account data")
    assert routes >= NOT_ACCOUNT_DATA.keys()


# ------------------------------------------------------------------ expectations


@dataclass
class Expect:
    status: int
    acting: Account | None = None  # None: denied
    visible: set[str] = field(default_factory=set)  # whose data the body may carry
    required: set[str] = field(default_factory=set)  # whose data it must carry


@dataclass(frozen=True)
class Case:
    caller: Key
    target: Account | None  # None: the account that does not exist
    endpoint: Endpoint
    variant: str

    @property
    def target_name(self) -> str:
        return self.target.username if self.target else GHOST_USERNAME

    @property
    def target_id(self) -> int:
        return self.target.user_id if self.target else GHOST_USER_ID


def expect(world: IsoWorld, case: Case) -> Expect:
    """The answer the authority rule and the endpoint's meaning prescribe."""
    ep, key = case.endpoint, case.caller
    caller = world.accounts[key.owner]
    target = case.target
    denied_visible = {caller.username} if ep.page else set()

    def deny(status: int) -> Expect:
        return Expect(status, visible=denied_visible)

    # credentials
    if ep.page:
        if case.variant == "basic" or not key.allows(EQ):
            return deny(303)  # no session: sent to the login page
    else:
        if key.revoked or (case.variant == "basic" and ep.route != "/api/v1/events/sendgrid"):
            return deny(401)
        if not any(key.allows(s) for s in ep.scopes):
            return deny(403)
    # whom the request acts as
    acting: Account | None = caller
    if ep.obo and case.variant.startswith("obo-"):
        form = case.variant.removeprefix("obo-")
        acting = None if form == "malformed" else named_by_header(caller, target, form)
    elif ep.obo and case.variant == "basic" and case.target_id != caller.user_id:
        acting = named_by_header(caller, target, header_form(target) if target else "username")
    if acting is None:
        return deny(403)
    assert may_act_for(caller, acting)
    is_parent = acting.parent_id is None
    children = {c.username for c in world.children(acting)}
    me = {acting.username}
    if ep.kind == "self":
        shows = ep.method == "GET"
        return Expect(ep.ok, acting, me, me if shows else set())
    if ep.kind == "children":
        if not is_parent:
            return deny(403)
        return Expect(ep.ok, acting, me | children, children if ep.method == "GET" else set())
    if ep.kind in ("overview", "page"):
        return Expect(200, acting, me | children, children or me)
    if ep.kind == "path-child":
        if not is_parent:
            return deny(403)
        if target is None or target.parent_id != acting.user_id:
            return deny(404)
        return Expect(200, acting, me | {target.username}, {target.username})
    if ep.kind in ("path-view", "page-view"):
        if target is None or not may_act_for(acting, target):
            return deny(404 if ep.page else 403)
        return Expect(200, acting, me | {target.username}, {target.username})
    if ep.kind == "path-key":
        if target is None or target.user_id != acting.user_id:
            return deny(404)
        return Expect(204, acting, me, set())
    raise AssertionError(ep.kind)


# ------------------------------------------------------------------ running a case


@dataclass
class Runner:
    world: IsoWorld
    client: httpx.Client
    stores: Stores
    sessions: dict[tuple[str, str], str]
    spare: Signer = field(default_factory=Signer)
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    posted: dict[int, int] = field(default_factory=dict)  # events stored, by account
    last: Fingerprint | None = None

    def fail(self, case: Case, what: str) -> None:
        self.failures.append(f"{case.caller.owner}/{case.caller.kind} -> {case.target_name} "
                             f"{case.endpoint.method} {case.endpoint.route} [{case.variant}]: "
                             f"{what}")

    def request(self, case: Case) -> tuple[httpx.Request, dict[str, Any]]:
        """The request of a case, and what the check needs to know about it."""
        ep, key, world = case.endpoint, case.caller, self.world
        caller = world.accounts[key.owner]
        headers: dict[str, str] = {}
        if case.variant == "basic":
            token = base64.b64encode(f"apikey:{key.secret}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
            if case.target_id != caller.user_id:
                headers["on-behalf-of"] = (
                    f"account-id {case.target_id}"
                    if case.target is not None and case.target.kind is AccountKind.CUSTOMER
                    else case.target_name)
        elif ep.page:
            session = self.sessions.get((key.owner, key.kind))
            if session is not None:
                headers["Cookie"] = f"seqscore_session={session}"
        else:
            headers["Authorization"] = f"Bearer {key.secret}"
        if case.variant == "obo-username":
            headers["on-behalf-of"] = case.target_name
        elif case.variant == "obo-account-id":
            headers["on-behalf-of"] = f"account-id {case.target_id}"
        elif case.variant == "obo-malformed":
            form = MALFORMED[(case.target_id + len(key.kind)) % len(MALFORMED)]
            headers["on-behalf-of"] = form.format(id=case.target_id, name=case.target_name)
        info: dict[str, Any] = {}
        path = ep.route.replace("{date}", CLOSED.isoformat()).replace(
            "{username}", case.target_name)
        content: bytes | None = None
        if ep.route == "/v3/api_keys/{api_key_id}":
            if case.target is not None:  # a fresh key of the target, to be revoked or not
                victim = world.services.accounts.create_key(
                    case.target, name=f"{case.target_name} victim",
                    scopes=frozenset({"api_keys.read"}))
                info["victim"] = victim.key.key_id
                path = path.replace("{api_key_id}", victim.key.key_id)
            else:
                path = path.replace("{api_key_id}", "qzNoSuchKeyId0000000000")
        elif ep.route == "/v3/api_keys" and ep.method == "POST":
            content = json.dumps({"name": "made by matrix", "scopes": ["api_keys.read"]}).encode()
        elif ep.route == "/api/v1/webhook-key" and ep.method == "PUT":
            content = json.dumps({"public_key": self.spare.public_key}).encode()
        elif ep.route == "/api/v1/events/sendgrid":
            named = case.target if "on-behalf-of" in headers else caller
            signer = world.signers[(named or caller).username]
            content, info["recipients"] = event_batch(caller.username, next(self.serial))
            headers.update(signer.headers(content))
        elif ep.route == "/v3/subusers" and ep.method == "POST":
            name = f"made{next(self.serial)}"
            info["new_username"] = name
            content = json.dumps({"username": name, "email": f"{name}@example.test"}).encode()
        query = {
            "/v3/engagementquality/scores": {"from": CLOSED.isoformat(), "to": CLOSED.isoformat()},
            "/v3/engagementquality/subusers/scores": {"date": CLOSED.isoformat()},
            "/api/v1/scores": {"from": RESULT_DAYS[-1].isoformat(), "to": CLOSED.isoformat()},
            "/api/v1/dashboard/overview": {"date": CLOSED.isoformat()},
            "/api/v1/dashboard/accounts/{username}": {"date": CLOSED.isoformat()},
            "/": {"date": CLOSED.isoformat()},
            "/accounts/{username}": {"date": CLOSED.isoformat()},
        }.get(ep.route, {}) if ep.method == "GET" else {}
        if content is not None:
            headers["Content-Type"] = "application/json"
        return self.client.build_request(ep.method, path, params=query, headers=headers,
                                         content=content), info

    def run(self, case: Case) -> None:
        world = self.world
        wanted = expect(world, case)
        request, info = self.request(case)
        events = case.endpoint.route == "/api/v1/events/sendgrid"
        if self.last is None or "victim" in info:  # the state moved since the last print
            self.last = self.stores.fingerprint()
        before = self.last
        self.client.cookies.clear()
        try:
            answer = self.client.send(request)
        except httpx.TransportError as exc:  # the server dropped the connection (a 500)
            self.fail(case, f"no answer: {exc!r}")
            self.last = None
            return
        after = self.last = self.stores.fingerprint()
        if events and wanted.acting is not None and answer.status_code == 200:
            self.posted[wanted.acting.user_id] = self.posted.get(wanted.acting.user_id, 0) + 2
        body = answer.content
        self.counts[case.endpoint.method + " " + case.endpoint.route] = self.counts.get(
            case.endpoint.method + " " + case.endpoint.route, 0) + 1
        if answer.status_code != wanted.status:
            self.fail(case, f"status {answer.status_code}, expected {wanted.status}: "
                            f"{body[:200]!r}")
        found = world.markers_found(body)
        if found - wanted.visible:
            self.fail(case, f"body carries data of {sorted(found - wanted.visible)}")
        if wanted.required - found:
            self.fail(case, f"body lacks the data of {sorted(wanted.required - found)}")
        quoted = full_keys_in(body)
        if quoted and not (case.endpoint.method == "POST" and case.endpoint.route ==
                           "/v3/api_keys" and answer.status_code == 201 and len(quoted) == 1):
            self.fail(case, "a full API key is quoted in the answer")
        for address in info.get("recipients", []):
            if address.lower().encode() in body.lower():
                self.fail(case, "a recipient address is quoted in the answer")
        self.check_writes(case, wanted, info, before, after, answer)

    def check_writes(self, case: Case, wanted: Expect, info: dict[str, Any],
                     before: dict[int, Any], after: dict[int, Any],
                     answer: httpx.Response) -> None:
        world, ep, acting = self.world, case.endpoint, wanted.acting
        moved = changed(before, after)
        if acting is None or answer.status_code != wanted.status:
            if moved:
                self.fail(case, f"denied, yet the data of accounts {sorted(moved)} changed")
            return
        if not ep.write:  # a read may queue computations of what it shows, nothing else
            allowed = {world.accounts[n].user_id for n in wanted.visible}
            if moved - allowed:
                self.fail(case, f"a read changed the data of accounts {sorted(moved - allowed)}")
            return
        if ep.route == "/v3/subusers":
            new = moved - before.keys()
            rows = [after[i][0][0] for i in new]
            if len(new) != 1 or rows[0][0] != info["new_username"] or rows[0][2] != acting.user_id:
                self.fail(case, f"the new subuser is not one child of the caller: {rows}")
            moved -= new
        if moved - {acting.user_id}:
            self.fail(case, f"the data of accounts {sorted(moved - {acting.user_id})} changed")
        mine_before, mine_after = before[acting.user_id], after[acting.user_id]
        if ep.route == "/v3/api_keys/{api_key_id}":
            if self.stores.key_row(info["victim"]) != (acting.user_id, True):
                self.fail(case, "the key was not revoked")
        elif ep.route == "/v3/api_keys":
            made = self.stores.key_row(answer.json()["api_key_id"])
            if made != (acting.user_id, False) or mine_after[1][0][0] != mine_before[1][0][0] + 1:
                self.fail(case, f"the new key is not one key of the acting account: {made}")
        elif ep.route == "/api/v1/webhook-key":
            expected_key = self.spare.public_key if ep.method == "PUT" else None
            if mine_after[0][0][5] != expected_key:
                self.fail(case, "the acting account's webhook key is not what was asked")
            # put it back, so the next requests are signed as before
            world.services.state.update_account(
                acting.user_id, webhook_public_key=world.signers[acting.username].public_key)
            world.services.auth.forget()
            self.last = None
        elif ep.route == "/api/v1/events/sendgrid" and answer.json().get("accepted") != 2:
            self.fail(case, f"not 2 events accepted: {answer.text}")  # stored: counted at the end


def sign_in(client: httpx.Client, key: Key) -> str | None:
    """A dashboard session cookie for ``key``, or None when it cannot sign in."""
    client.cookies.clear()
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"csrf_token": token, "api_key": key.secret,
                                         "next": "/"})
    session = answer.cookies.get("seqscore_session")
    client.cookies.clear()
    if key.allows(EQ):
        assert answer.status_code == 303 and session, (key.owner, key.kind, answer.text)
    else:
        assert answer.status_code in (401, 403) and not session, (key.owner, key.kind)
    return session


PATH_KINDS = ("path-child", "path-view", "path-key", "page-view")


def cases(world: IsoWorld) -> list[Case]:
    """The matrix. Without on-behalf-of, a request whose path names no account names no
    target at all: it is sent once, with the caller as the target."""
    targets: list[Account | None] = [*world.accounts.values(), None]
    return [Case(world.keys[caller], target, endpoint, variant)
            for endpoint in ENDPOINTS for caller in CALLERS
            for target in targets for variant in VARIANTS
            if variant != "none" or endpoint.kind in PATH_KINDS
            or (target is not None and target.username == caller[0])]


def test_no_account_reads_or_writes_another_accounts_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, worker=False, rate_limit_per_minute=1_000_000,
                        ingest_processes=0)
    services = Services.open(settings, clock=FrozenClock(TEST_NOW))
    try:
        world = build_world(services)
        with serving(create_app(services)) as url, \
                httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
            sessions = {(k.owner, k.kind): s for k in world.keys.values()
                        if (s := sign_in(client, k)) is not None}
            stores = Stores(world, data_dir / "state.sqlite3")
            events_before = stores.event_counts()
            runner = Runner(world, client, stores, sessions)
            started = time.monotonic()
            all_cases = cases(world)
            for case in all_cases:
                runner.run(case)
            elapsed = time.monotonic() - started
            events_after = stores.event_counts()
            stores.close()
    finally:
        services.close()
    allowed = sum(1 for c in all_cases if expect(world, c).acting is not None)
    print(f"\nisolation matrix: {len(all_cases)} requests ({allowed} allowed, "
          f"{len(all_cases) - allowed} denied) over {len(ENDPOINTS)} endpoints, "
          f"{len(CALLERS)} caller keys, {len(world.accounts) + 1} targets, {len(VARIANTS)} "
          f"header variants, in {elapsed:.1f} s")
    assert events_after == {i: n + runner.posted.get(i, 0) for i, n in events_before.items()}
    assert not runner.failures, f"{len(runner.failures)} failures:\n" + "\n".join(
        runner.failures[:40])
    per_caller = sum(9 * len(VARIANTS) if e.kind in PATH_KINDS else 1 + 9 * (len(VARIANTS) - 1)
                     for e in ENDPOINTS)
    assert len(all_cases) == len(CALLERS) * per_caller
    assert 0 < allowed < len(all_cases)
