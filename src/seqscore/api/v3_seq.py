"""GET /v3/engagementquality/scores and /v3/engagementquality/subusers/scores.

Wire-exact with SendGrid (spec/seq-api.md). The hot path is: authenticate
(cached), count the request, check authority, validate, then answer from the
answer cache or build the answer from stored results.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from seqscore.api.answer_cache import AnswerCache, SharedRead
from seqscore.api.openapi_docs import SEQ_PAGE_PARAMS, SEQ_RANGE_PARAMS, seq_responses
from seqscore.api.responses import raw_json
from seqscore.errors import Forbidden
from seqscore.service.auth import MSG_FORBIDDEN, Caller, resolve_target
from seqscore.service.seq import Accepted
from seqscore.service.seq_params import parse_page, parse_range
from seqscore.service.services import Services
from seqscore.settings import MiB
from seqscore.types import Scope

ACCEPTED_BODY = orjson.dumps(
    {"message": "We are processing the score for this date range. Please try again later."}
)


def authorize(services: Services, request: Request, endpoint: str, scope: str) -> Caller:
    """Authenticate, count against the rate limit, then check the scope.

    The rate status is kept on ``request.state`` so every later answer, errors
    included, carries the X-RateLimit headers.
    """
    caller = services.auth.authenticate(request.headers.get("authorization"))
    request.state.rate = services.rate_limiter.hit(caller.key.key_id, endpoint)
    caller.require(scope)
    return caller


def router(services: Services) -> APIRouter:
    api = APIRouter()
    cache = AnswerCache(max_bytes=services.settings.answer_cache_mb * MiB)
    generations = SharedRead(lambda: services.state.generations())
    settings = services.settings
    seq = services.seq

    @api.get("/v3/engagementquality/scores", tags=["SEQ"],
             openapi_extra={"parameters": SEQ_RANGE_PARAMS}, responses=seq_responses())
    async def scores(request: Request) -> Response:
        """The calling (or on-behalf-of) account's scores from `from` to `to`."""
        caller = authorize(services, request, "seq.scores", Scope.ENGAGEMENT_QUALITY_READ)
        target = resolve_target(services.state, caller, request.headers.get("on-behalf-of"))
        params = parse_range(request.query_params, today=seq.today(),
                             history_days=settings.history_days)
        headers = request.state.rate.headers()
        last = min(params.last, seq.last_closed_day())
        key = ("scores", target.user_id, params.first, last)
        generation = await generations()
        body = cache.get(key, generation)
        if body is None:
            answer = seq.account_scores(target, params.first, params.last)
            if isinstance(answer, Accepted):
                return raw_json(ACCEPTED_BODY, 202, headers)
            body = orjson.dumps({"result": answer.entries})
            cache.put(key, generation, body)
        return raw_json(body, 200, headers)

    @api.get("/v3/engagementquality/subusers/scores", tags=["SEQ"],
             openapi_extra={"parameters": SEQ_PAGE_PARAMS}, responses=seq_responses())
    async def subuser_scores(request: Request) -> Response:
        """Every subuser's and customer account's score for `date`, by numeric user_id."""
        caller = authorize(services, request, "seq.subusers_scores",
                           Scope.ENGAGEMENT_QUALITY_READ)
        target = resolve_target(services.state, caller, request.headers.get("on-behalf-of"))
        if target.parent_id is not None:
            raise Forbidden(MSG_FORBIDDEN)  # children have no subusers
        params = parse_page(request.query_params, today=seq.today(),
                            history_days=settings.history_days,
                            limit_max=settings.page_limit_max)
        headers = request.state.rate.headers()
        key = ("page", target.user_id, params.day, params.limit, params.after_user_id,
               params.day <= seq.last_closed_day())
        generation = await generations()
        body = cache.get(key, generation)
        if body is None:
            answer = seq.children_scores(target, params.day, limit=params.limit,
                                         after_user_id=params.after_user_id)
            if isinstance(answer, Accepted):
                return raw_json(ACCEPTED_BODY, 202, headers)
            content: dict[str, Any] = {"result": answer.entries}
            if answer.next_after_key is not None:
                content["_metadata"] = {"next_params": {"after_key": answer.next_after_key}}
            body = orjson.dumps(content)
            cache.put(key, generation, body)
        return raw_json(body, 200, headers)

    return api
