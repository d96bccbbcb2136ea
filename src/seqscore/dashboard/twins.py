"""JSON twins of the dashboard pages: the same data, for the same keys, as JSON.

``GET /api/v1/dashboard/overview`` and ``GET /api/v1/dashboard/accounts/{username}``
take the pages' query parameters and answer what the pages show. They
authenticate like the /v3 API (Bearer key, rate limit, scope
``engagement_quality.read``, ``on-behalf-of``) and fail in its error shapes.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from seqscore.api.responses import json_response
from seqscore.api.v3_seq import authorize
from seqscore.service.account_page import account_history, account_in_view
from seqscore.service.auth import resolve_target
from seqscore.service.overview import (
    overview,
    parse_day,
    parse_overview_query,
)
from seqscore.service.services import Services
from seqscore.types import Scope


def router(services: Services) -> APIRouter:
    api = APIRouter(tags=["dashboard"])
    state, clock, settings = services.state, services.clock, services.settings

    @api.get("/api/v1/dashboard/overview")
    def overview_json(request: Request) -> Response:
        """Every child account's score and metrics for `date` (default: the last closed
        day), sorted and filtered by `sort`, `order`, `q`, `status` and `max_score`."""
        caller = authorize(services, request, "dashboard.overview",
                           Scope.ENGAGEMENT_QUALITY_READ)
        viewer = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        params = request.query_params
        day = parse_day(params.get("date"), clock=clock, settle_minutes=settings.settle_minutes,
                        history_days=settings.history_days)
        data = overview(state, clock, viewer, day, parse_overview_query(params),
                        settle_minutes=settings.settle_minutes,
                        history_days=settings.history_days)
        return json_response(data, 200, request.state.rate.headers())

    @api.get("/api/v1/dashboard/accounts/{username}")
    def account_json(request: Request, username: str) -> Response:
        """One account's 90 days ending with `date`, and the newest result's explanation
        and event mix."""
        caller = authorize(services, request, "dashboard.account",
                           Scope.ENGAGEMENT_QUALITY_READ)
        viewer = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        account = account_in_view(state, viewer, username)
        day = parse_day(request.query_params.get("date"), clock=clock,
                        settle_minutes=settings.settle_minutes,
                        history_days=settings.history_days)
        history = account_history(state, clock, viewer, account, day,
                                  settle_minutes=settings.settle_minutes,
                                  history_days=settings.history_days)
        return json_response(history, 200, request.state.rate.headers())

    return api
