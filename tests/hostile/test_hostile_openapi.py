"""Schemathesis against a real server: SendGrid's SEQ file and seqscore's own document.

Every operation of each document gets generated requests, valid ones (positive)
and invalid ones (negative), sent over loopback to a server configured as
``seqscore serve`` configures it, with a full-access key of a seeded parent.
Every answer must be no 5xx and conform to the document (status documented,
media type, body schema, headers); answers of the /v3 and /api paths must also
pass the spec page's rules (``tests/api/openapi_check.check_response``: SendGrid's
error shape, never a framework body; the SEQ answers also against the patched
reference file with openapi-core).

The runs are derandomized (a fixed seed per operation): CI sends the same
requests every time. ``REQUESTS_*`` are lower bounds the run must reach.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hostile_support import HOSTILE, ErrorLog, Installation, install, production_server
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from seqscore.api.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from openapi_check import (
    PATCHES,
    SPEC_ERROR_SCHEMA,
    _load_reference_dict,
    check_response,
)

#: a seeded installation, its app and the base URL of its server
Site = tuple[Installation, Any, str]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
#: examples per (operation, mode): the reference file has 2 operations, ours about 25
REFERENCE_EXAMPLES = 300
OWN_EXAMPLES = 50
#: the least number of requests each run must have sent (Hypothesis stops early on
#: operations with few distinct inputs)
REQUESTS_REFERENCE = 1200
REQUESTS_OWN = 1500
#: the document itself and its viewer: served, not described in themselves
DOCUMENT_ROUTES = {("/api/openapi.json", "get"), ("/api/docs", "get")}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("hostile-openapi")
    shop = install(folder, f"sqlite:///{folder / 'state.sqlite3'}")
    app = create_app(shop.services)
    try:
        with production_server(app, shop.services.settings) as (host, port):
            yield shop, app, f"http://{host}:{port}"
    finally:
        shop.services.close()


# -- the document describes every route ------------------------------------------------------

def served_routes(app: Any) -> set[tuple[str, str]]:
    """(path, method) of every route the app answers, included routers walked."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "effective_candidates"):  # an included router (FastAPI >= 0.16x)
                walk(route.effective_candidates())
            elif hasattr(route, "routes") and not hasattr(route, "methods"):
                walk(route.routes)
            else:
                found.update((route.path, m.lower()) for m in route.methods or ()
                             if m != "HEAD")

    walk(app.router.routes)
    return found


def test_the_own_document_describes_every_route_the_app_serves(site: Site) -> None:
    _shop, app, base = site
    document = requests.get(f"{base}/api/openapi.json", timeout=10).json()
    validate_openapi(document)
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method in HTTP_METHODS}
    served = served_routes(app)
    assert len(served) > 20, served  # the walk found the included routers
    assert served - DOCUMENT_ROUTES == documented, {
        "served, not documented": sorted(served - DOCUMENT_ROUTES - documented),
        "documented, not served": sorted(documented - served)}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                assert operation.get("responses"), f"{method} {path}: no responses"
    assert requests.get(f"{base}/docs/oauth2-redirect", timeout=10).status_code == 404


# -- schemathesis ----------------------------------------------------------------------------

def reference_document() -> dict[str, Any]:
    """tsg_seq_v3.yaml with the spec page's overrides (tests/api/openapi_check.py):
    ``SeqError.field`` nullable, and the statuses the page adds to the file's (403
    and 429 on both operations) in the page's error shape."""
    document: dict[str, Any] = copy.deepcopy(_load_reference_dict())
    for patch in PATCHES:
        patch(document)
    for item in document["paths"].values():
        responses = item["get"]["responses"]
        for status, description in (("403", "spec page: forbidden"),
                                    ("429", "spec page: rate limited")):
            responses.setdefault(status, {"description": description, "content": {
                "application/json": {"schema": SPEC_ERROR_SCHEMA}}})
    return document


def run_schemathesis(document: dict[str, Any], base: str, shop: Installation,
                     examples: int) -> dict[str, int]:
    """Generated requests for every operation and mode; returns requests per operation."""
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    sent: dict[str, int] = {}
    problems: list[str] = []
    headers = {"Authorization": f"Bearer {shop.parent_key}"}

    def exercise(operation: Any, mode: GenerationMode, label: str) -> None:
        @settings(HOSTILE, max_examples=examples)
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            response = case.call(base_url=base, session=session, allow_redirects=False,
                                 timeout=30, headers=headers)
            sent[label] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
            path = response.request.path_url.split("?")[0]
            if path.startswith(("/v3/", "/api/")):
                check_response(response.request.method, path, response.status_code,
                               {name.lower(): values[0]
                                for name, values in response.headers.items()},
                               response.content)

        one()

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert operations
    for operation in operations:
        for mode in MODES:
            label = f"{operation.label} [{mode.value}]"
            sent[label] = 0
            try:
                exercise(operation, mode, label)
            except Unsatisfiable:
                # nothing of the operation can be made invalid (no parameters, or only
                # strings): schemathesis generates no negative case
                assert mode is GenerationMode.NEGATIVE, label
                del sent[label]
            except (Exception, BaseExceptionGroup) as exc:  # every failing operation
                problems.append(f"{label}: {exc}")
    assert not problems, "\n\n".join(problems)
    return sent


def report(name: str, sent: dict[str, int], seconds: float) -> None:
    print(f"\n{name}: {sum(sent.values())} requests in {seconds:.1f} s")
    for label, count in sorted(sent.items()):
        print(f"  {count:5d}  {label}")


@pytest.mark.slow
def test_schemathesis_against_sendgrids_seq_file(site: Site, errors: ErrorLog) -> None:
    shop, _app, base = site
    before = shop.snapshot()
    started = time.monotonic()
    sent = run_schemathesis(reference_document(), base, shop, REFERENCE_EXAMPLES)
    report("tsg_seq_v3.yaml", sent, time.monotonic() - started)
    assert sum(sent.values()) >= REQUESTS_REFERENCE, sent
    assert all(count > 0 for count in sent.values()), sent
    assert shop.snapshot()[:3] == before[:3]  # reads only: accounts, keys, results unchanged


@pytest.mark.slow
def test_schemathesis_against_the_own_document(site: Site, errors: ErrorLog) -> None:
    shop, app, base = site
    document = requests.get(f"{base}/api/openapi.json", timeout=10).json()
    started = time.monotonic()
    sent = run_schemathesis(document, base, shop, OWN_EXAMPLES)
    report("/api/openapi.json", sent, time.monotonic() - started)
    assert sum(sent.values()) >= REQUESTS_OWN, sent
    assert {label.split(" [")[0] for label in sent} >= {
        f"{method.upper()} {path}" for path, method in served_routes(app) - DOCUMENT_ROUTES}


def test_the_strategies_are_seeded() -> None:
    """The profile that makes CI's requests the same on every run."""
    assert HOSTILE.derandomize and HOSTILE.database is None

    def draws() -> list[int]:
        drawn: list[int] = []

        @settings(HOSTILE, max_examples=5)
        @given(st.integers())
        def draw(value: int) -> None:
            drawn.append(value)

        draw()
        return drawn

    assert draws() == draws()
