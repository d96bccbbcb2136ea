"""Every error leaves as SendGrid's shape; no framework default body ever reaches a client."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from seqscore.api.responses import error_response, json_response
from seqscore.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    SeqscoreError,
    Unauthenticated,
    Unavailable,
)
from seqscore.service.auth import MSG_FORBIDDEN

log = logging.getLogger("seqscore.api")

MSG_NOT_FOUND = "resource not found"
MSG_METHOD = "method not allowed"
MSG_RATE = "too many requests"
MSG_UNAVAILABLE = "service unavailable"
MSG_INTERNAL = "internal server error"
MSG_DISCONNECTED = "client disconnected"
#: At most one "unavailable" warning per this many seconds (a count of the rest follows).
UNAVAILABLE_LOG_INTERVAL_S = 10.0


class OutageLog:
    """Warns about 503s without flooding the log: the first at once, then at most one
    line per ``interval_s`` that counts the ones left out.

    An outage of the state store under load makes every request a 503; one warning
    each (psycopg's messages are three lines) once filled the stderr pipe of a server
    whose output nobody read, and the event loop blocked writing it (issue #7).
    """

    def __init__(self, interval_s: float = UNAVAILABLE_LOG_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last_s = -interval_s
        self._left_out = 0

    def warn(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_s < self._interval_s:
                self._left_out += 1
                return
            left_out, self._left_out, self._last_s = self._left_out, 0, now
        more = f" ({left_out} more 503s since the last warning)" if left_out else ""
        log.warning("unavailable: %s%s", exc, more)


_outages = OutageLog()


def _rate_headers(request: Request) -> dict[str, str]:
    status = getattr(request.state, "rate", None)
    return status.headers() if status is not None else {}


def response_for(request: Request, exc: SeqscoreError) -> Response:
    """The HTTP answer to one of our own errors."""
    headers = _rate_headers(request)
    if isinstance(exc, InvalidInput):
        body = {"errors": [{"field": e.field, "message": e.message} for e in exc.errors]}
        return json_response(body, 400, headers)
    if isinstance(exc, Unauthenticated):
        return error_response(401, str(exc), headers)
    if isinstance(exc, Forbidden):
        return error_response(403, MSG_FORBIDDEN, headers)
    if isinstance(exc, NotFound):
        return error_response(404, MSG_NOT_FOUND, headers)
    if isinstance(exc, Conflict):
        return error_response(409, str(exc), headers)
    if isinstance(exc, RateLimited):
        headers = {"X-RateLimit-Limit": str(exc.limit), "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": str(exc.reset_epoch_s)}
        return error_response(429, MSG_RATE, headers)
    if isinstance(exc, Unavailable):
        _outages.warn(exc)
        return error_response(503, MSG_UNAVAILABLE, {**headers, "Retry-After": "5"})
    return internal_error(request, exc)


def internal_error(request: Request, exc: BaseException) -> Response:
    request_id = uuid.uuid4().hex
    log.error("request %s %s failed (request id %s)", request.method, request.url.path,
              request_id, exc_info=exc)
    return json_response({"errors": [{"message": MSG_INTERNAL}]}, 500,
                         {**_rate_headers(request), "X-Request-Id": request_id})


def install(app: FastAPI) -> None:
    async def on_ours(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SeqscoreError)
        return response_for(request, exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            return error_response(405, MSG_METHOD, {"Allow": (exc.headers or {}).get("Allow", "")})
        if exc.status_code == 404:
            return error_response(404, MSG_NOT_FOUND)
        return error_response(exc.status_code, str(exc.detail))

    async def on_validation(request: Request, exc: Exception) -> Response:
        return error_response(400, "invalid request")

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # the client hung up (or was cut off) before its body arrived: nobody to answer
        log.info("%s %s: client disconnected before its body arrived", request.method,
                 request.url.path)
        return error_response(400, MSG_DISCONNECTED)

    async def on_anything(request: Request, exc: Exception) -> Response:
        return internal_error(request, exc)

    app.add_exception_handler(SeqscoreError, on_ours)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(Exception, on_anything)
