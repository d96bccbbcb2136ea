"""The response checker itself: it must find the reference file and reject off-contract bodies.

Without these, a checker that validated nothing would let every other test pass.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_check import (
    REFERENCE_FILE,
    REFERENCE_HOST,
    check_response,
    documented_statuses,
    reference,
)
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse

from seqscore_testing import IN_CI

SCORES = "/v3/engagementquality/scores"
SUBUSERS = "/v3/engagementquality/subusers/scores"
JSON = {"content-type": "application/json"}
METRICS = {"engagement_recency": 4, "open_rate": 3, "bounce_classification": 5,
           "bounce_rate": 5, "spam_rate": 4}
GOOD_ENTRY = {"user_id": "1042", "username": "acme-news", "date": "2026-11-20", "score": 4,
              "metrics": METRICS}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_reference_file_is_found_relative_to_the_repo_root() -> None:
    if IN_CI:
        assert REFERENCE_FILE.is_file(), f"missing in CI: {REFERENCE_FILE}"
    reference()  # skips on a developer machine without ../shared, fails in CI
    assert REFERENCE_FILE.parts[-3:] == ("shared", "reference", "tsg_seq_v3.yaml")
    assert documented_statuses(SCORES) == {200, 202, 400, 401, 500}
    assert documented_statuses(SUBUSERS) == {200, 202, 400, 401, 403, 404, 500}


@pytest.mark.parametrize(("path", "status", "value"), [
    (SCORES, 200, {"result": [GOOD_ENTRY]}),
    (SCORES, 200, {"result": [{"user_id": "1042", "username": "a", "date": "2026-11-20"}]}),
    (SUBUSERS, 200, {"result": [GOOD_ENTRY], "_metadata": {"next_params": {"after_key": "9"}}}),
    (SCORES, 400, {"errors": [{"field": "from", "message": "x"}]}),
    (SCORES, 401, {"errors": [{"field": None, "message": "authorization required"}]}),
    (SCORES, 403, {"errors": [{"field": None, "message": "access forbidden"}]}),
    (SUBUSERS, 429, {"errors": [{"field": None, "message": "too many requests"}]}),
    (SCORES, 500, {"errors": [{"message": "internal server error"}]}),
    (SCORES, 202, {"message": "We are processing the score for this date range. "
                              "Please try again later."}),
])
def test_accepts_contract_bodies(path: str, status: int, value: Any) -> None:
    assert check_response("GET", path, status, JSON, body(value)) == value


def with_entry(**changes: Any) -> dict[str, Any]:
    return {"result": [{**GOOD_ENTRY, **changes}]}


REF = OpenAPIError  # caught by the reference file (openapi-core)
PAGE = (AssertionError, jsonschema.ValidationError)  # caught by the spec page's rules


@pytest.mark.parametrize(("path", "status", "value", "headers", "caught_by"), [
    (SCORES, 200, with_entry(user_id=1042), JSON, REF),  # user_id is a string
    (SCORES, 200, with_entry(score=6), JSON, REF),  # 1..5
    (SCORES, 200, with_entry(score=0), JSON, REF),
    (SCORES, 200, with_entry(date="2026-02-30"), JSON, REF),  # format: date
    (SCORES, 200, with_entry(metrics={**METRICS, "spam_rate": 9}), JSON, REF),
    (SCORES, 200, with_entry(metrics={"open_rate": 3}), JSON, REF),  # all five required
    (SCORES, 200, {"result": [{"username": "no-user-id"}]}, JSON, REF),
    (SUBUSERS, 200, {"result": [], "_metadata": {"next_params": {"after_key": 99}}}, JSON,
     REF),
    (SCORES, 200, {"result": []}, {"content-type": "text/plain"}, PAGE),
    (SCORES, 202, {"message": "accepted"}, JSON, PAGE),  # the page's exact 202 body
    (SCORES, 400, {"errors": [{"field": "from"}]}, JSON, PAGE),  # message required
    (SCORES, 400, {"errors": [{"field": 7, "message": "x"}]}, JSON, PAGE),
    (SCORES, 401, {"detail": "Not authenticated"}, JSON, PAGE),  # a framework default body
    (SCORES, 404, {"detail": "Not Found"}, JSON, PAGE),
    (SCORES, 403, {"error": "forbidden"}, JSON, PAGE),
    (SCORES, 500, {"errors": [{"message": "KeyError: 'score'"}]}, JSON, PAGE),
    (SCORES, 418, {"errors": [{"field": None, "message": "teapot"}]}, JSON, PAGE),
])
def test_rejects_off_contract_bodies(path: str, status: int, value: Any,
                                     headers: dict[str, str], caught_by: Any) -> None:
    with pytest.raises(caught_by):
        check_response("GET", path, status, headers, body(value))


def test_null_field_is_the_one_explicit_deviation_from_the_file() -> None:
    """The raw file refuses ``"field": null``; the loaded copy accepts it (spec page wins)."""
    reference()
    raw = OpenAPI.from_dict(yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8")))
    request = MockRequest(REFERENCE_HOST, "get", SCORES)
    null_field = body({"errors": [{"field": None, "message": "invalid request"}]})
    with pytest.raises(OpenAPIError):
        raw.validate_response(request, MockResponse(null_field, status_code=400,
                                                    content_type="application/json"))
    check_response("GET", SCORES, 400, JSON, null_field)
