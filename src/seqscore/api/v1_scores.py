"""seqscore's own score API (outside /v3): explanations, and history past 90 days.

- ``GET /api/v1/scores/{date}``: the caller's (or on-behalf-of child's) result
  for one day, explained (``service.explain.explain_result``);
- ``GET /api/v1/subusers/{username}/scores/{date}``: the same for a parent's child;
- ``GET /api/v1/scores?from=&to=``: one entry per closed day, up to
  ``results_retention_days`` back (/v3 keeps SendGrid's 90).

Same keys, rate limits and ``on-behalf-of`` rules as /v3. A key needs the
scope ``scores.read`` or ``engagement_quality.read`` (whoever may read a score
may read why). A child named in the path that is not the caller's (unknown, or
another parent's) is 404 either way, so the answer never tells whether an
account exists; a child's own key asking for a subuser is 403, as on /v3.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from seqscore.api.openapi_docs import ON_BEHALF_OF, error
from seqscore.api.responses import error_body, json_response, raw_json
from seqscore.api.v3_seq import ACCEPTED_BODY
from seqscore.errors import Forbidden, NotFound
from seqscore.service.auth import MSG_FORBIDDEN, Caller, resolve_target
from seqscore.service.explain import ExplainService, NotKept
from seqscore.service.seq import Accepted
from seqscore.service.services import Services
from seqscore.types import Account, Day, Scope

#: Either scope lets a key read this API (full-access keys have both).
READ_SCOPES = (Scope.SCORES_READ, Scope.ENGAGEMENT_QUALITY_READ)

_DATE_PARAM = Path(description="The UTC day, YYYY-MM-DD: closed, and at most "
                               "`results_retention_days` (400) days ago.")
_USERNAME_PARAM = Path(description="Username of one of the caller's children (a subuser or "
                                   "a customer account).")
_NULLABLE_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_METRICS_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": {
    "type": "integer", "minimum": 1, "maximum": 5}}
_EXPLANATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "username", "date", "status", "eligible", "eligibility",
                 "eligibility_reasons", "model_version", "counts", "metric_details"],
    "properties": {
        "user_id": {"type": "string"}, "username": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "metrics": _METRICS_SCHEMA,
        "status": {"type": "string", "enum": ["computed", "stale"]},
        "eligible": {"type": "boolean"},
        "eligibility": {"type": "string", "enum": ["eligible", "low_volume",
                                                   "open_tracking_off"]},
        "eligibility_reasons": {"type": "array", "items": {"type": "string"}},
        "model_version": {"type": "string"},
        "computed_at": {"type": "string", "format": "date-time"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "metric_details": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {
                "score": {"type": ["integer", "null"]}, "rate_pct": {"type": "string"},
                "rate_pct_exact": {"type": "boolean"}, "rate_pct_fraction": {"type": "string"},
                "numerator": {"type": "integer"}, "denominator": {"type": "integer"},
                "measure": _NULLABLE_TEXT, "window": _NULLABLE_TEXT,
                "window_days": {"type": ["integer", "null"]}, "provider": _NULLABLE_TEXT,
                "band_edges_pct": {"type": "array", "items": {"type": "string"}},
                "band_pct": {"type": ["object", "null"]},
                "band_score": {"type": ["integer", "null"]}, "weight": _NULLABLE_TEXT}}},
        "weighted_mean": _NULLABLE_TEXT, "weighted_mean_decimal": _NULLABLE_TEXT,
        "rounded": {"type": ["integer", "null"]}, "cap": {"type": ["integer", "null"]},
        "cap_applied": {"type": ["boolean", "null"]},
    },
}
_HISTORY_SCHEMA: dict[str, Any] = {"type": "object", "required": ["result"], "properties": {
    "result": {"type": "array", "items": {
        "type": "object", "required": ["user_id", "username", "date", "status"],
        "properties": {
            "user_id": {"type": "string"}, "username": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "metrics": _METRICS_SCHEMA,
            "status": {"type": "string",
                       "enum": ["computed", "stale", "pending", "unavailable"]},
            "eligibility": {"type": "string"}, "model_version": {"type": "string"}}}}}}
_ACCEPTED = {"description": "Not computed yet (queued), or the day is not closed: try again "
                            "later.",
             "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"message": {"type": "string"}}}}}}
_COMMON: dict[int | str, dict[str, Any]] = {
    400: error("Invalid date (SendGrid's error shape, field `date`, `from` or `to`)."),
    401: error("Missing, malformed, unknown or revoked key."),
    403: error("Key lacks scores.read and engagement_quality.read, or on-behalf-of names no "
               "child of the caller."),
    429: error("Over the per-key rate limit."),
}


def _explained(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description,
                  "content": {"application/json": {"schema": _EXPLANATION_SCHEMA}}},
            202: _ACCEPTED, **_COMMON,
            404: error("No result is kept for this day and it is too old to be recomputed "
                       "(or, on /subusers, no such child of the caller).")}


def _authorize(services: Services, request: Request, endpoint: str) -> Caller:
    """Authenticate, count against the rate limit, then check the scope (as /v3 does)."""
    caller = services.auth.authenticate(request.headers.get("authorization"))
    request.state.rate = services.rate_limiter.hit(caller.key.key_id, endpoint)
    if not any(caller.key.allows(scope) for scope in READ_SCOPES):
        raise Forbidden(MSG_FORBIDDEN)
    return caller


def router(services: Services) -> APIRouter:
    api = APIRouter(tags=["scores"])
    settings = services.settings
    explain = ExplainService(services.state, services.clock,
                             settle_minutes=settings.settle_minutes,
                             history_days=settings.history_days,
                             retention_days=settings.results_retention_days)

    def explanation(request: Request, account: Account, day: Day) -> Response:
        headers = request.state.rate.headers()
        answer = explain.explain(account, day)
        if isinstance(answer, Accepted):
            return raw_json(ACCEPTED_BODY, 202, headers)
        if isinstance(answer, NotKept):
            message = (f"no result is kept for this day, and days more than "
                       f"{answer.history_days} days ago are not recomputed on request")
            return json_response(error_body(message, "date"), 404, headers)
        return json_response(answer, 200, headers)

    @api.get("/api/v1/scores/{date}", openapi_extra={"parameters": [ON_BEHALF_OF]},
             responses=_explained("The day's result, explained."))
    async def explain_day(request: Request, date: Annotated[str, _DATE_PARAM]) -> Response:
        """How the caller's (or on-behalf-of child's) score for `date` was computed:
        counts, each rate exactly, the measure and band chosen, weights, mean and cap."""
        caller = _authorize(services, request, "v1.scores.explain")
        target = resolve_target(services.state, caller, request.headers.get("on-behalf-of"))
        return explanation(request, target, explain.parse_day(date))

    @api.get("/api/v1/subusers/{username}/scores/{date}",
             openapi_extra={"parameters": [ON_BEHALF_OF]},
             responses=_explained("The child's result for the day, explained."))
    async def explain_child_day(request: Request, username: Annotated[str, _USERNAME_PARAM],
                                date: Annotated[str, _DATE_PARAM]) -> Response:
        """A child's result for `date`, explained (parent keys only). A username that is
        not a child of the caller is 404, whether or not it exists."""
        caller = _authorize(services, request, "v1.subusers.explain")
        parent = resolve_target(services.state, caller, request.headers.get("on-behalf-of"))
        if parent.parent_id is not None:
            raise Forbidden(MSG_FORBIDDEN)  # children have no subusers
        child = services.state.get_account_by_username(username)
        if child is None or child.parent_id != parent.user_id:
            raise NotFound(f"no child {username!r} of account {parent.user_id}")
        return explanation(request, child, explain.parse_day(date))

    @api.get("/api/v1/scores", responses={
        200: {"description": "One entry per closed day, oldest first.",
              "content": {"application/json": {"schema": _HISTORY_SCHEMA}}},
        202: _ACCEPTED, **_COMMON,
    }, openapi_extra={"parameters": [
        ON_BEHALF_OF,
        {"name": "from", "in": "query", "required": True,
         "schema": {"type": "string", "format": "date"},
         "description": "First day (UTC), at most `results_retention_days` (400) days ago."},
        {"name": "to", "in": "query", "required": True,
         "schema": {"type": "string", "format": "date"},
         "description": "Last day (UTC), not after today."},
    ]})
    async def history(request: Request) -> Response:
        """The caller's (or on-behalf-of child's) daily scores from `from` to `to`, past
        SendGrid's 90 days, with each day's status and eligibility. Closed days without a
        result are listed as `pending` and queued (`unavailable` beyond 90 days)."""
        caller = _authorize(services, request, "v1.scores.history")
        target = resolve_target(services.state, caller, request.headers.get("on-behalf-of"))
        params = explain.parse_range(request.query_params)
        headers = request.state.rate.headers()
        answer = explain.history(target, params.first, params.last)
        if isinstance(answer, Accepted):
            return raw_json(ACCEPTED_BODY, 202, headers)
        return json_response({"result": answer.entries}, 200, headers)

    return api
