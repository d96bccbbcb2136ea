"""/v3/subusers and /v3/api_keys in SendGrid's shapes, so onboarding needs no SQL."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from seqscore.api.openapi_docs import ON_BEHALF_OF, error
from seqscore.api.responses import json_response
from seqscore.api.v3_seq import authorize
from seqscore.errors import FieldError, Forbidden, InvalidInput
from seqscore.service.accounts import parse_scopes
from seqscore.service.auth import MSG_FORBIDDEN, resolve_target
from seqscore.service.services import Services
from seqscore.types import Account, Scope

_MAX_JSON_BYTES = 64 * 1024


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _MAX_JSON_BYTES:
        raise InvalidInput([FieldError(None, "request body too large")])
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidInput([FieldError(None, "request body is not valid JSON")]) from exc
    if not isinstance(body, dict):
        raise InvalidInput([FieldError(None, "request body must be a JSON object")])
    return body


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput([FieldError(name, f"{name} is required and must be a string")])
    return value.strip()


def _nonneg_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise InvalidInput([FieldError(name, f"{name} must be a non-negative integer")])
    return int(raw)


def _subuser(account: Account) -> dict[str, Any]:
    return {"disabled": account.disabled, "email": account.email, "id": account.user_id,
            "username": account.username}


def router(services: Services) -> APIRouter:
    api = APIRouter(tags=["management"])
    state = services.state

    @api.get("/v3/subusers", openapi_extra={"parameters": [
        {"name": n, "in": "query", "required": False, "schema": {"type": t}}
        for n, t in (("username", "string"), ("limit", "integer"), ("offset", "integer"))
    ]}, responses={400: error("limit or offset not a non-negative integer"),
                   401: error("Unauthenticated"), 403: error("Forbidden")})
    async def list_subusers(request: Request) -> Response:
        """The caller's children (subusers and customer accounts)."""
        caller = authorize(services, request, "subusers.list", Scope.SUBUSERS_READ)
        if caller.account.parent_id is not None:
            raise Forbidden(MSG_FORBIDDEN)
        limit = min(_nonneg_int(request, "limit", 500), services.settings.page_limit_max)
        children = state.list_children(
            caller.account.user_id, username=request.query_params.get("username"),
            limit=limit, offset=_nonneg_int(request, "offset", 0),
        )
        return json_response([_subuser(c) for c in children], 200, request.state.rate.headers())

    @api.post("/v3/subusers", status_code=201,
              responses={400: error("Invalid body"), 401: error("Unauthenticated"),
                         403: error("Forbidden"), 409: error("Username taken")})
    async def create_subuser(request: Request) -> Response:
        """Create a subuser of the caller. `password` is accepted and ignored."""
        caller = authorize(services, request, "subusers.create", Scope.SUBUSERS_CREATE)
        if caller.account.parent_id is not None:
            raise Forbidden(MSG_FORBIDDEN)
        body = await _json_object(request)
        username = _text(body, "username", required=True)
        email = _text(body, "email", required=True)
        assert username is not None and email is not None
        child = services.accounts.create_account(username, parent=caller.account, email=email)
        return json_response({"username": child.username, "user_id": child.user_id,
                              "email": child.email}, 201, request.state.rate.headers())

    @api.post("/v3/api_keys", status_code=201, openapi_extra={"parameters": [ON_BEHALF_OF]},
              responses={400: error("Invalid body"), 401: error("Unauthenticated"),
                         403: error("Forbidden")})
    async def create_api_key(request: Request) -> Response:
        """Create a key for the caller, or for a child with on-behalf-of."""
        caller = authorize(services, request, "api_keys.create", Scope.API_KEYS_CREATE)
        owner = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        body = await _json_object(request)
        name = _text(body, "name", required=True)
        raw_scopes = body.get("scopes")
        if raw_scopes is not None and not (
            isinstance(raw_scopes, list) and all(isinstance(s, str) for s in raw_scopes)
        ):
            raise InvalidInput([FieldError("scopes", "scopes must be an array of strings")])
        assert name is not None
        created = services.accounts.create_key(
            owner, name=name, scopes=parse_scopes(raw_scopes), granted_by=caller.key)
        return json_response({"api_key": created.api_key, "api_key_id": created.key.key_id,
                              "name": created.key.name, "scopes": created.scope_names()},
                             201, request.state.rate.headers())

    @api.get("/v3/api_keys", openapi_extra={"parameters": [ON_BEHALF_OF]},
             responses={401: error("Unauthenticated"), 403: error("Forbidden")})
    async def list_api_keys(request: Request) -> Response:
        """The caller's (or child's) active keys: id and name only."""
        caller = authorize(services, request, "api_keys.list", Scope.API_KEYS_READ)
        owner = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        keys = state.list_keys(owner.user_id)
        return json_response({"result": [{"api_key_id": k.key_id, "name": k.name} for k in keys]},
                             200, request.state.rate.headers())

    @api.delete("/v3/api_keys/{api_key_id}", status_code=204,
                openapi_extra={"parameters": [ON_BEHALF_OF]},
                responses={401: error("Unauthenticated"), 403: error("Forbidden"),
                           404: error("No such key")})
    async def delete_api_key(request: Request, api_key_id: str) -> Response:
        """Revoke one of the caller's (or child's) keys."""
        caller = authorize(services, request, "api_keys.delete", Scope.API_KEYS_DELETE)
        owner = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        services.accounts.revoke_key(api_key_id, owner=owner)
        services.auth.forget()
        return Response(status_code=204, headers=request.state.rate.headers())

    return api
