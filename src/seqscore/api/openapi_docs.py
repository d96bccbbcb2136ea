"""OpenAPI fragments for routes that parse their own parameters.

The SEQ routes validate query parameters themselves (SendGrid's exact messages
and row order), so FastAPI cannot infer them; they are described here instead.
"""

from __future__ import annotations

from typing import Any


def _query(
    name: str, schema: dict[str, Any], *, required: bool, description: str
) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


ON_BEHALF_OF: dict[str, Any] = {
    "name": "on-behalf-of", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "`<subuser username>` or `account-id <user_id>` of a child account "
                   "(parent keys only).",
}

SEQ_RANGE_PARAMS = [
    ON_BEHALF_OF,
    _query("from", {"type": "string", "format": "date"}, required=True,
           description="First day (UTC), at most 90 days ago."),
    _query("to", {"type": "string", "format": "date"}, required=True,
           description="Last day (UTC), not after today."),
]

SEQ_PAGE_PARAMS = [
    ON_BEHALF_OF,
    _query("date", {"type": "string", "format": "date"}, required=True,
           description="The day (UTC), at most 90 days ago, not after today."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, required=False,
           description="Entries per page, 1..1000 (default 1000)."),
    _query("after_key", {"type": "integer", "minimum": 0}, required=False,
           description="Start after this user_id (from `_metadata.next_params.after_key`)."),
]

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {
        "type": "object",
        "properties": {"field": {"type": ["string", "null"]}, "message": {"type": "string"}},
        "required": ["message"],
    }}},
    "required": ["errors"],
}


def error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


def seq_responses() -> dict[int | str, dict[str, Any]]:
    return {
        202: {"description": "Not computed yet; queued. Try again later.",
              "content": {"application/json": {"schema": {
                  "type": "object", "properties": {"message": {"type": "string"}}}}}},
        400: error("Invalid parameters (SendGrid's messages)."),
        401: error("Missing, malformed, unknown or revoked key."),
        403: error("Key lacks the scope, or on-behalf-of names no child of the caller."),
        429: error("Over the per-key rate limit."),
        500: error("Unexpected failure."),
    }


# -- the dashboard's HTML pages ------------------------------------------------------------
#
# Their router parses its own parameters and answers with HTML, so FastAPI leaves
# them out of the document; ``complete_document`` adds them, so that the document
# describes every endpoint the app serves (tests/hostile checks it route by route).

_HTML = {"text/html": {"schema": {"type": "string"}}}


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": _HTML}


_REDIRECT: dict[str, Any] = {
    "description": "See other: to the login page (no valid session) or to `next`.",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
_PAGE_ERRORS: dict[str, Any] = {
    "429": _page("Over the per-key rate limit."),
    "503": _page("The state store cannot be reached."),
}


def _query_text(name: str, description: str) -> dict[str, Any]:
    return _query(name, {"type": "string"}, required=False, description=description)


_LOGIN_FORM: dict[str, Any] = {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object",
        "properties": {"api_key": {"type": "string"}, "csrf_token": {"type": "string"},
                       "next": {"type": "string"}}}}}}
_LOGOUT_FORM: dict[str, Any] = {"required": False, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"csrf_token": {"type": "string"}}}}}}

DASHBOARD_PAGES: dict[str, dict[str, Any]] = {
    "/login": {
        "get": {
            "tags": ["dashboard pages"], "summary": "Login page",
            "operationId": "dashboard_login_page",
            "parameters": [_query_text("next", "Where to go after logging in (a local path).")],
            "responses": {"200": _page("The login form."), "303": _REDIRECT,
                          **_PAGE_ERRORS},
        },
        "post": {
            "tags": ["dashboard pages"], "summary": "Log in with an API key",
            "operationId": "dashboard_login",
            "requestBody": _LOGIN_FORM,
            "responses": {"303": _REDIRECT,
                          "401": _page("Unknown or revoked key: the form again."),
                          "403": _page("Expired form, or a key without "
                                       "`engagement_quality.read`: the form again."),
                          **_PAGE_ERRORS},
        },
    },
    "/logout": {"post": {
        "tags": ["dashboard pages"], "summary": "Log out",
        "operationId": "dashboard_logout", "requestBody": _LOGOUT_FORM,
        "responses": {"303": _REDIRECT, "403": _page("Missing or wrong form token.")},
    }},
    "/": {"get": {
        "tags": ["dashboard pages"], "summary": "Overview page",
        "operationId": "dashboard_overview_page",
        "parameters": [
            _query_text("date", "The day (YYYY-MM-DD); default: the last closed day."),
            _query_text("sort", "Column to sort by."), _query_text("order", "`asc` or `desc`."),
            _query_text("q", "Filter accounts by name."),
            _query_text("status", "Filter by eligibility."),
            _query_text("max_score", "Only scores up to this (1..5)."),
        ],
        "responses": {"200": _page("The overview."), "303": _REDIRECT,
                      "400": _page("Invalid parameters."), **_PAGE_ERRORS},
    }},
    "/accounts/{username}": {"get": {
        "tags": ["dashboard pages"], "summary": "Account page",
        "operationId": "dashboard_account_page",
        "parameters": [
            {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}},
            _query_text("date", "The last day shown (YYYY-MM-DD)."),
        ],
        "responses": {"200": _page("The account's history."), "303": _REDIRECT,
                      "400": _page("Invalid parameters."),
                      "404": _page("No such account among those the caller can see."),
                      **_PAGE_ERRORS},
    }},
    "/static/{name}": {"get": {
        "tags": ["dashboard pages"], "summary": "A static asset of the pages",
        "operationId": "dashboard_static",
        "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            _query_text("v", "Cache-busting version (ignored)."),
        ],
        "responses": {
            "200": {"description": "The asset.", "content": {
                "text/css": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}}}},
            "404": {"description": "No such asset.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
        },
    }},
}


_JSON_ERROR_STATUSES: dict[str, str] = {
    "413": "Request body too large (any request: the body size limit comes first).",
    "500": "Unexpected failure.",
    "503": "The state store cannot be reached; retry later.",
}
_AUTH_STATUSES = {"401": "Missing, malformed, unknown or revoked key.",
                  "403": "Key lacks the scope, or on-behalf-of names no child of the caller."}
#: authenticated but never rate-limited (spec/events.md: a refused sender only retries)
_NOT_RATE_LIMITED = ("/api/v1/events/sendgrid", "/api/v1/webhook-key")
_UNAUTHENTICATED = ("/api/v1/health",)

_DASHBOARD_QUERY = [
    _query_text("date", "The day (YYYY-MM-DD); default: the last closed day."),
    _query_text("sort", "Column to sort by."), _query_text("order", "`asc` or `desc`."),
    _query_text("q", "Filter accounts by name."),
    _query_text("status", "Filter by eligibility."),
    _query_text("max_score", "Only scores up to this (1..5)."),
]
#: the JSON twins parse the pages' parameters themselves, like the pages
_TWIN_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "/api/v1/dashboard/overview": [ON_BEHALF_OF, *_DASHBOARD_QUERY],
    "/api/v1/dashboard/accounts/{username}": [
        ON_BEHALF_OF, _query_text("date", "The last day shown (YYYY-MM-DD).")],
}
_TWIN_ERRORS = {"400": "Invalid parameters.",
                "404": "No such account among those the caller can see."}


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    """The statuses every operation of its kind can answer, where the route's own
    declaration leaves them out; FastAPI's 422 is our 400 (``api.errors``)."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if responses.pop("422", None) is not None:
        responses.setdefault("400", error("Invalid parameters."))
    if path in DASHBOARD_PAGES:
        responses.setdefault("413", error(_JSON_ERROR_STATUSES["413"]))
        return
    extra = dict(_JSON_ERROR_STATUSES)
    if path not in _UNAUTHENTICATED:
        extra.update(_AUTH_STATUSES)
        if not path.startswith(_NOT_RATE_LIMITED):
            extra["429"] = "Over the per-key rate limit."
    if path in _TWIN_PARAMETERS:
        extra.update(_TWIN_ERRORS)
        known = {(p.get("name"), p.get("in")) for p in operation.get("parameters", [])}
        operation.setdefault("parameters", []).extend(
            p for p in _TWIN_PARAMETERS[path] if (p["name"], p["in"]) not in known)
    for status, description in extra.items():
        responses.setdefault(status, error(description))


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's) completed so that it describes every endpoint and
    answer of the app: the dashboard's pages added, and the statuses that the
    app's shared machinery (auth, rate limits, body limit, error handlers) gives
    every operation. Idempotent."""
    paths = document.setdefault("paths", {})
    for path, item in DASHBOARD_PAGES.items():
        paths.setdefault(path, item)
    for path, item in paths.items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                _complete_operation(path, operation)
    return document
