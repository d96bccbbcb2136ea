"""Checks every HTTP response of the /v3 tests against the contract.

Two sources, in this order of authority (spec/seq-api.md: "where that file is
silent, this page decides"):

1. SendGrid's official OpenAPI file, ``tsg_seq_v3.yaml`` (twilio/sendgrid-oai),
   kept at ``../shared/reference/`` relative to the repository root. Responses of
   the two /v3/engagementquality operations are validated against it with
   openapi-core (status documented, media type, body schema incl. formats and
   1..5 bounds).
2. The spec page's rules, for every response of every path: ``application/json``,
   no framework default body (no ``detail`` key), errors in SendGrid's shape, the
   exact 202 and 500 bodies.

Where the file and the spec page disagree, the page wins, and each deviation is
applied here explicitly (never by skipping validation):

* ``SeqError.field`` is typed ``string`` in the file, while the page demands
  ``"field": null`` on 401/403/404/405/429 bodies. ``PATCHES`` widens it to
  ``["string", "null"]`` in the loaded copy of the file.
* Statuses the file does not document for an operation (403 on /scores, 429 on
  both) are not "unknown responses": the page defines them, so they are checked
  against ``SPEC_ERROR_SCHEMA`` only.
* The file leaves the 202 and 401 bodies untyped (``application/json: {}``); the
  page fixes them, so they are also compared with the page's exact shapes.

A missing reference file skips the caller on a developer machine and fails it
in CI (``CI=true``), like every other required resource of the suite.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from starlette.testclient import TestClient

from seqscore_testing import require_or_skip

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_FILE = REPO_ROOT.parent / "shared" / "reference" / "tsg_seq_v3.yaml"
#: the file's first server; openapi-core matches request URLs against ``servers``
REFERENCE_HOST = "https://api.sendgrid.com"

SEQ_PATHS = frozenset({"/v3/engagementquality/scores", "/v3/engagementquality/subusers/scores"})

ACCEPTED_BODY = {"message": "We are processing the score for this date range. "
                            "Please try again later."}
INTERNAL_ERROR_BODY = {"errors": [{"message": "internal server error"}]}

#: The spec page's error shape: {"errors": [{"field": F|null, "message": M}, ...]}.
SPEC_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["errors"],
    "additionalProperties": False,
    "properties": {"errors": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["field", "message"],
            "additionalProperties": False,
            "properties": {"field": {"type": ["string", "null"]},
                           "message": {"type": "string", "minLength": 1}},
        },
    }},
}

#: checked once here, not on every call as ``jsonschema.validate`` does (~20 ms a call)
_SPEC_ERRORS = jsonschema.Draft202012Validator(SPEC_ERROR_SCHEMA)


def _field_nullable(spec: dict[str, Any]) -> None:
    """SeqError.field: ``string`` in the file, ``string | null`` on the spec page."""
    field = spec["components"]["schemas"]["SeqError"]["properties"]["field"]
    assert field["type"] == "string", "reference file changed: revisit PATCHES"
    field["type"] = ["string", "null"]


#: Every place where the spec page overrides the reference file, applied on load.
PATCHES: tuple[Callable[[dict[str, Any]], None], ...] = (_field_nullable,)


def _load_reference_dict() -> dict[str, Any]:
    require_or_skip(REFERENCE_FILE.is_file(),
                    f"SendGrid's OpenAPI file not found at {REFERENCE_FILE}")
    return _parsed_reference()


@functools.cache
def _parsed_reference() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _openapi() -> OpenAPI:
    spec = copy.deepcopy(_parsed_reference())
    for patch in PATCHES:
        patch(spec)
    return OpenAPI.from_dict(spec)


def reference() -> OpenAPI:
    """The patched reference document (skips locally, fails in CI, when absent)."""
    _load_reference_dict()
    return _openapi()


def documented_statuses(path: str, method: str = "get") -> set[int]:
    responses = _load_reference_dict()["paths"][path][method]["responses"]
    return {int(code) for code in responses}


def check_response(method: str, path: str, status: int, headers: Mapping[str, str],
                   body: bytes) -> Any:
    """Assert that one response honours the contract; return its parsed JSON body."""
    where = f"{method} {path} -> {status}"
    if status == 204:
        assert body == b"", f"{where}: a 204 has no body"
        return None
    content_type = headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/json", \
        f"{where}: content-type {content_type!r}"
    data = json.loads(body)
    assert not (isinstance(data, dict) and "detail" in data), \
        f"{where}: framework default body {data!r}"
    if status == 500:
        assert data == INTERNAL_ERROR_BODY, f"{where}: {data!r}"
    elif status >= 400:
        _SPEC_ERRORS.validate(data)
    if status == 202:
        assert data == ACCEPTED_BODY, f"{where}: {data!r}"
    if path in SEQ_PATHS and method.lower() == "get":
        api = reference()
        if status in documented_statuses(path):
            api.validate_response(
                MockRequest(REFERENCE_HOST, "get", path),
                MockResponse(body, status_code=status, content_type=content_type),
            )
        else:
            # not in the file, defined by the spec page (403, 429): its error shape
            assert status in (403, 429), f"{where}: status neither in the file nor the spec"
    return data


def check_httpx(response: Any) -> Any:
    """``check_response`` for an httpx/TestClient response."""
    return check_response(response.request.method, response.request.url.path,
                          response.status_code, response.headers, response.content)


class ValidatingClient(TestClient):
    """A Starlette TestClient that checks every response it receives.

    Server exceptions become 500 responses (as under uvicorn) instead of being
    re-raised in the test, so the 500 body is checked like any other.
    """

    def __init__(self, app: Any, **kwargs: Any) -> None:
        kwargs.setdefault("raise_server_exceptions", False)
        super().__init__(app, **kwargs)

    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().request(*args, **kwargs)
        check_httpx(response)
        return response
