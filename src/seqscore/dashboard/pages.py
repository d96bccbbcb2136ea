"""The dashboard's HTML pages: log in and out, the overview, one account.

Pages are rendered on the server from the same service functions as their JSON
twins (``seqscore.dashboard.twins``); sorting and filtering are query
parameters, so everything works without JavaScript.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seqscore.dashboard.render import METRIC_LABELS, SECURITY_HEADERS, Templates
from seqscore.dashboard.session import (
    LOGIN_COOKIE,
    LOGIN_MAX_AGE_S,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    Session,
    Sessions,
    same_token,
)
from seqscore.dashboard.views import (
    band_ranges,
    history_charts,
    mix_bars,
    overview_link,
    sort_header,
)
from seqscore.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    SeqscoreError,
    Unauthenticated,
    Unavailable,
)
from seqscore.service.account_page import account_history, account_in_view
from seqscore.service.auth import Caller
from seqscore.service.overview import (
    overview,
    parse_day,
    parse_overview_query,
)
from seqscore.service.services import Services
from seqscore.types import METRIC_NAMES, Scope

MAX_FORM_BYTES = 4096
#: a local path to return to after logging in: "/" or "/accounts/…", never "//host"
_NEXT_RE = re.compile(r"/(?:accounts/[A-Za-z0-9._@+%-]+)?(?:\?[A-Za-z0-9._@+%=&-]*)?")
MSG_BAD_KEY = "That API key is not valid, or it has been revoked."
MSG_NO_SCOPE = ("That API key cannot read engagement quality scores (scope "
                "engagement_quality.read).")
MSG_FORM_EXPIRED = "The form expired. Please try again."


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


def _cookie(response: Response, request: Request, name: str, value: str, *, path: str,
            max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def _drop_cookie(response: Response, request: Request, name: str, *, path: str) -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def safe_next(value: str | None) -> str:
    return value if value and _NEXT_RE.fullmatch(value) else "/"


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind the dashboard sends), first value per field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    except ValueError:  # more fields than any dashboard form has
        return {}
    return {name: values[0] for name, values in fields.items()}


def router(services: Services, templates: Templates, sessions: Sessions) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    state, clock, settings = services.state, services.clock, services.settings

    def signed_in(request: Request) -> tuple[Caller, Session] | None:
        """The caller of a valid session, its key re-verified now; None otherwise."""
        session = sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        try:
            caller = services.auth.authenticate(f"Bearer {session.api_key}")
            caller.require(Scope.ENGAGEMENT_QUALITY_READ)
        except (Unauthenticated, Forbidden):
            return None
        services.rate_limiter.hit(caller.key.key_id, "dashboard.pages")
        return caller, session

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        next_part = "" if target == "/" else "?" + urlencode({"next": safe_next(target)})
        response = _redirect("/login" + next_part)
        if SESSION_COOKIE in request.cookies:
            _drop_cookie(response, request, SESSION_COOKIE, path="/")
        return response

    def error_page(exc: SeqscoreError, signed: tuple[Caller, Session] | None) -> Response:
        context: dict[str, Any] = {"viewer": signed[0].account if signed else None,
                                   "csrf_token": signed[1].csrf_token if signed else ""}
        if isinstance(exc, InvalidInput):
            messages = [e.message.removeprefix("failed to parse request: ") for e in exc.errors]
            return templates.page("error.html", 400, title="Invalid request",
                                  messages=messages, **context)
        if isinstance(exc, Forbidden | NotFound):
            return templates.page("error.html", 404, title="Not found",
                                  messages=["No such account among the accounts you can see."],
                                  **context)
        if isinstance(exc, RateLimited):
            return templates.page("error.html", 429, title="Too many requests",
                                  messages=["Please wait a minute and reload."], **context)
        if isinstance(exc, Unavailable):
            return templates.page("error.html", 503, response_headers={"Retry-After": "5"},
                                  title="Service unavailable",
                                  messages=["The state store cannot be reached. Try again "
                                            "in a moment."], **context)
        raise exc

    def login_form(request: Request, *, error: str | None, status: int,
                   next_url: str) -> Response:
        token, cookie = sessions.login_token()
        response = templates.page("login.html", status, viewer=None, csrf_token="",
                                  login_token=token, error=error, next_url=next_url)
        _cookie(response, request, LOGIN_COOKIE, cookie, path="/login", max_age=LOGIN_MAX_AGE_S)
        return response

    @pages.get("/login")
    def login_page(request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        try:
            if signed_in(request) is not None:
                return _redirect(next_url)
        except SeqscoreError as exc:
            return error_page(exc, None)
        return login_form(request, error=None, status=200, next_url=next_url)

    @pages.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        next_url = safe_next(form.get("next"))
        if not sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf_token")):
            return login_form(request, error=MSG_FORM_EXPIRED, status=403, next_url=next_url)
        api_key = form.get("api_key", "").strip()
        try:
            caller = services.auth.authenticate(f"Bearer {api_key}")
            caller.require(Scope.ENGAGEMENT_QUALITY_READ)
        except Unauthenticated:
            return login_form(request, error=MSG_BAD_KEY, status=401, next_url=next_url)
        except Forbidden:
            return login_form(request, error=MSG_NO_SCOPE, status=403, next_url=next_url)
        except SeqscoreError as exc:
            return error_page(exc, None)
        cookie, _session = sessions.issue(api_key)
        response = _redirect(next_url)
        _cookie(response, request, SESSION_COOKIE, cookie, path="/", max_age=SESSION_MAX_AGE_S)
        _drop_cookie(response, request, LOGIN_COOKIE, path="/login")
        return response

    @pages.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        session = sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is not None and not same_token(session.csrf_token, form.get("csrf_token")):
            return templates.page("error.html", 403, viewer=None, csrf_token="",
                                  title="Forbidden",
                                  messages=["The form token is missing or wrong. Reload the "
                                            "page and log out again."])
        response = _redirect("/login")
        _drop_cookie(response, request, SESSION_COOKIE, path="/")
        return response

    @pages.get("/")
    def overview_page(request: Request) -> Response:
        signed = None
        try:
            signed = signed_in(request)
            if signed is None:
                return to_login(request)
            caller, session = signed
            params = request.query_params
            day = parse_day(params.get("date"), clock=clock,
                            settle_minutes=settings.settle_minutes,
                            history_days=settings.history_days)
            data = overview(state, clock, caller.account, day, parse_overview_query(params),
                            settle_minutes=settings.settle_minutes,
                            history_days=settings.history_days)
        except SeqscoreError as exc:
            return error_page(exc, signed)
        headers = [sort_header(data, "username", "Account"), sort_header(data, "score", "Score"),
                   *(sort_header(data, m, METRIC_LABELS[m]) for m in METRIC_NAMES),
                   sort_header(data, "volume", "Volume (30 d)")]
        return templates.page("overview.html", viewer=caller.account,
                              csrf_token=session.csrf_token, data=data, headers=headers,
                              link=lambda **changes: overview_link(data, **changes))

    @pages.get("/accounts/{username}")
    def account_page(request: Request, username: str) -> Response:
        signed = None
        try:
            signed = signed_in(request)
            if signed is None:
                return to_login(request)
            caller, session = signed
            account = account_in_view(state, caller.account, username)
            day = parse_day(request.query_params.get("date"), clock=clock,
                            settle_minutes=settings.settle_minutes,
                            history_days=settings.history_days)
            history = account_history(state, clock, caller.account, account, day,
                                      settle_minutes=settings.settle_minutes,
                                      history_days=settings.history_days)
        except SeqscoreError as exc:
            return error_page(exc, signed)
        score_chart, metric_charts, volume_chart = history_charts(history)
        mix = history.event_mix
        bars = [] if mix is None else mix_bars(mix.processed, [
            ("Processed", mix.processed, "processed"), ("Delivered", mix.delivered, "delivered"),
            ("Unique opens", mix.unique_opens, "opens"), ("Bounces", mix.bounces, "bounces"),
            ("Spam reports", mix.spam_reports, "spam")])
        return templates.page(
            "account.html", viewer=caller.account, csrf_token=session.csrf_token, h=history,
            score_chart=score_chart, metric_charts=metric_charts, volume_chart=volume_chart,
            bars=bars, band_ranges=band_ranges,
            overview_url="/?" + urlencode({"date": history.day.isoformat()}),
            first_day=clock.now().date() - dt.timedelta(days=settings.history_days))

    @pages.get("/static/{name}")
    def static(name: str) -> Response:
        found = templates.asset(name)
        if found is None:
            return Response("not found", 404, media_type="text/plain",
                            headers=dict(SECURITY_HEADERS))
        return found

    return pages
