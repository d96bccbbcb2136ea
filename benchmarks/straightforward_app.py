"""The two SEQ answers built the straightforward way: the comparison point of api_seq.py.

The same state store, the same authentication, rate limiting, on-behalf-of and
parameter validation calls as seqscore's /v3 routes, but each answer is built on
every request by reading the stored results and returning pydantic models that
FastAPI validates and serialises through ``response_model``. No answer cache.

It gives the same JSON as seqscore for complete data (api_seq.py checks this
before timing anything). Not part of the product; run by api_seq.py::

    python benchmarks/straightforward_app.py --data-dir DIR --port 8001
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from seqscore.api import errors
from seqscore.api.responses import json_response
from seqscore.api.v3_seq import ACCEPTED_BODY, authorize
from seqscore.errors import Forbidden
from seqscore.server import freeze_heap, server_config
from seqscore.service.auth import MSG_FORBIDDEN, resolve_target
from seqscore.service.seq_params import parse_page, parse_range
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import Account, DayResult, Scope


class Metrics(BaseModel):
    engagement_recency: int
    open_rate: int
    bounce_classification: int
    bounce_rate: int
    spam_rate: int


class ScoreEntry(BaseModel):
    user_id: str
    username: str
    date: dt.date
    score: int | None = None
    metrics: Metrics | None = None


class ScoresAnswer(BaseModel):
    result: list[ScoreEntry]


class NextParams(BaseModel):
    after_key: str


class PageMetadata(BaseModel):
    next_params: NextParams


class PageAnswer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    result: list[ScoreEntry]
    metadata: PageMetadata | None = Field(default=None, alias="_metadata")


def entry(account: Account, day: dt.date, result: DayResult) -> ScoreEntry:
    if result.score is None or result.metrics is None:
        return ScoreEntry(user_id=str(account.user_id), username=account.username, date=day)
    return ScoreEntry(user_id=str(account.user_id), username=account.username, date=day,
                      score=result.score, metrics=Metrics(**result.metrics))


def accepted(headers: dict[str, str]) -> Response:
    return Response(ACCEPTED_BODY, 202, headers, media_type="application/json")


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="seqscore (straightforward build, benchmark only)")
    errors.install(app)
    settings, seq, state = services.settings, services.seq, services.state

    @app.get("/api/v1/health")
    async def health() -> Response:
        state.generations()
        return json_response({"status": "ok"})

    @app.get("/v3/engagementquality/scores", response_model=ScoresAnswer,
             response_model_exclude_none=True)
    async def scores(request: Request, response: Response) -> ScoresAnswer | Response:
        caller = authorize(services, request, "seq.scores", Scope.ENGAGEMENT_QUALITY_READ)
        target = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        params = parse_range(request.query_params, today=seq.today(),
                             history_days=settings.history_days)
        headers = request.state.rate.headers()
        last = min(params.last, seq.last_closed_day())
        found = state.get_results(target.user_id, params.first, last)
        days = [params.first + dt.timedelta(days=i) for i in range((last - params.first).days + 1)]
        if not days or any(d not in found for d in days):
            seq.account_scores(target, params.first, params.last)  # queues what is missing
            return accepted(headers)
        response.headers.update(headers)
        return ScoresAnswer(result=[entry(target, d, found[d]) for d in days])

    @app.get("/v3/engagementquality/subusers/scores", response_model=PageAnswer,
             response_model_exclude_none=True)
    async def subuser_scores(request: Request, response: Response) -> PageAnswer | Response:
        caller = authorize(services, request, "seq.subusers_scores",
                           Scope.ENGAGEMENT_QUALITY_READ)
        target = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        if target.parent_id is not None:
            raise Forbidden(MSG_FORBIDDEN)
        params = parse_page(request.query_params, today=seq.today(),
                            history_days=settings.history_days,
                            limit_max=settings.page_limit_max)
        headers = request.state.rate.headers()
        children = state.list_children(target.user_id, after_user_id=params.after_user_id,
                                       limit=params.limit + 1)
        page, more = children[: params.limit], len(children) > params.limit
        found = (state.get_results_for_accounts([c.user_id for c in page], params.day)
                 if params.day <= seq.last_closed_day() else {})
        if params.day > seq.last_closed_day() or any(c.user_id not in found for c in page):
            seq.children_scores(target, params.day, limit=params.limit,
                                after_user_id=params.after_user_id)  # queues what is missing
            return accepted(headers)
        response.headers.update(headers)
        metadata = (PageMetadata(next_params=NextParams(after_key=str(page[-1].user_id)))
                    if more and page else None)
        return PageAnswer(result=[entry(c, params.day, found[c.user_id]) for c in page],
                          metadata=metadata)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings.from_env(data_dir=args.data_dir, host="127.0.0.1", port=args.port)
    services = Services.open(settings)
    app = create_app(services)
    freeze_heap()  # as seqscore.server.run does: only the way answers are built differs
    try:
        # the same uvicorn configuration as seqscore.server.run (its guarded protocol too)
        uvicorn.Server(server_config(app, settings)).run()
    finally:
        services.close()


if __name__ == "__main__":
    main()
