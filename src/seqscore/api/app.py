"""The ASGI application: ``create_app(services)`` wires every router.

No import-time globals: everything comes from the ``Services`` passed in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from seqscore import __version__
from seqscore.api import errors, events, v1_scores, v3_management, v3_seq
from seqscore.api.limits import BodySizeLimit
from seqscore.api.openapi_docs import complete_document
from seqscore.api.responses import json_response
from seqscore.api.security_headers import NoSniff
from seqscore.dashboard import router as dashboard_router
from seqscore.service.services import Services

#: Started with the app and stopped with it: the in-process worker and scheduler.
BackgroundTask = Callable[[Services], Callable[[], Awaitable[None]]]


def create_app(services: Services, *, background: list[BackgroundTask] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stops = [start(services) for start in background or []]
        try:
            yield
        finally:
            for stop in stops:
                await stop()

    app = FastAPI(
        title="seqscore",
        version=__version__,
        description="SendGrid Engagement Quality (SEQ) scores, self-hosted. The /v3 endpoints "
                    "are wire-compatible with SendGrid's.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        swagger_ui_oauth2_redirect_url=None,  # no OAuth: one endpoint less
    )
    fastapi_openapi = app.openapi
    app.openapi = lambda: complete_document(fastapi_openapi())  # type: ignore[method-assign]
    app.state.services = services
    errors.install(app)
    app.include_router(v3_seq.router(services))
    app.include_router(v3_management.router(services))
    app.include_router(v1_scores.router(services))
    app.include_router(events.router(services))
    app.include_router(dashboard_router(services))

    @app.get("/api/v1/health", tags=["operations"])
    async def health(request: Request) -> Response:
        """Liveness and the state store's reachability."""
        services.state.generations()
        return json_response({"status": "ok", "version": __version__})

    app.add_middleware(BodySizeLimit, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(NoSniff)  # outermost: the 413 says it too
    return app
