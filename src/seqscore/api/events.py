"""Events in: SendGrid's Event Webhook receiver, and the account's verification key.

``POST /api/v1/events/sendgrid`` takes a webhook body (a JSON array of events)
for the caller's account, or the child named by ``on-behalf-of``. Credentials:
``Authorization: Bearer <key>``, or HTTP Basic with the key as the password (what
SendGrid sends when they are written into the webhook URL); the key needs the
scope ``events.write``. It answers 200 only once the batch is durably stored
(docs/ingest.md has the answer's shape). The receiver is not rate-limited: a
sender that is refused only retries.

``GET``/``PUT``/``DELETE /api/v1/webhook-key`` read, set and clear the account's
SendGrid verification key (a full-access key, since a key that may only post
events must not be able to switch signature checks off).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from seqscore.api.openapi_docs import ON_BEHALF_OF, error
from seqscore.api.responses import error_response, json_response
from seqscore.errors import FieldError, InvalidInput
from seqscore.ingest.body import BodyError
from seqscore.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, InvalidPublicKey
from seqscore.ingest.signature import load_public_key as check_public_key
from seqscore.service.auth import Caller, resolve_target
from seqscore.service.ingest import SignatureRejected
from seqscore.service.services import Services
from seqscore.types import FULL_ACCESS, Account, Scope

RECEIVER_PATH = "/api/v1/events/sendgrid"
_MAX_KEY_BODY_BYTES = 64 * 1024
_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "rejected", "duplicates", "errors"],
    "properties": {
        "accepted": {"type": "integer", "description": "events stored"},
        "rejected": {"type": "integer", "description": "invalid events, kept in the quarantine"},
        "duplicates": {"type": "integer",
                       "description": "events recognised as already stored, not stored again"},
        "errors": {"type": "array", "items": {
            "type": "object", "properties": {"index": {"type": "integer"},
                                             "message": {"type": "string"}}}},
    },
}


def router(services: Services) -> APIRouter:
    api = APIRouter(tags=["events"])
    state = services.state

    def caller_of(request: Request, scope: str, *, basic: bool = False) -> Caller:
        """The caller; HTTP Basic only where SendGrid needs it (the receiver)."""
        caller = services.auth.authenticate(request.headers.get("authorization"),
                                            allow_basic=basic)
        caller.require(scope)
        return caller

    @api.post(RECEIVER_PATH, openapi_extra={
        "parameters": [ON_BEHALF_OF, {
            "name": "errors", "in": "query", "required": False,
            "schema": {"type": "string", "enum": ["all"]},
            "description": "`all`: list every error, not only the first ten"}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "array", "items": {"type": "object"}}}}},
    }, responses={200: {"description": "Stored", "content": {
        "application/json": {"schema": _ANSWER_SCHEMA}}},
        400: error("Body not a JSON array"), 401: error("Unauthenticated"),
        403: error("Forbidden, or signature invalid"), 413: error("Body too large")})
    async def receive_sendgrid(request: Request) -> Response:
        """SendGrid Event Webhook receiver: the batch is stored for the caller's account."""
        caller = caller_of(request, Scope.EVENTS_WRITE, basic=True)
        target = resolve_target(state, caller, request.headers.get("on-behalf-of"))
        body = await request.body()
        try:
            report = await run_in_threadpool(
                services.ingest.receive, target, body,
                signature_b64=request.headers.get(SIGNATURE_HEADER),
                timestamp=request.headers.get(TIMESTAMP_HEADER))
        except BodyError as exc:
            return error_response(400, str(exc))
        except SignatureRejected as exc:
            return error_response(403, str(exc))
        everything = request.query_params.get("errors") == "all"
        return json_response(report.answer(None if everything else 10))

    @api.get("/api/v1/webhook-key", openapi_extra={"parameters": [ON_BEHALF_OF]},
             responses={401: error("Unauthenticated"), 403: error("Forbidden")})
    async def get_webhook_key(request: Request) -> Response:
        """The account's SendGrid verification key, or null when POSTs are not verified."""
        account = _key_owner(services, request, caller_of(request, FULL_ACCESS))
        return json_response({"public_key": account.webhook_public_key})

    @api.put("/api/v1/webhook-key", openapi_extra={"parameters": [ON_BEHALF_OF]},
             responses={400: error("Not a P-256 public key"), 401: error("Unauthenticated"),
                        403: error("Forbidden")})
    async def put_webhook_key(request: Request) -> Response:
        """Set the verification key (`{"public_key": "<base64 DER SendGrid shows>"}`):
        from now on every POST for the account must be signed."""
        account = _key_owner(services, request, caller_of(request, FULL_ACCESS))
        text = await _public_key_field(request)
        if text is None:
            raise InvalidInput([FieldError("public_key",
                                           "expected a JSON object with public_key, a string")])
        try:
            check_public_key(text)
        except InvalidPublicKey as exc:
            raise InvalidInput([FieldError("public_key", str(exc))]) from None
        updated = state.update_account(account.user_id, webhook_public_key=text.strip())
        services.auth.forget()
        return json_response({"public_key": updated.webhook_public_key})

    @api.delete("/api/v1/webhook-key", status_code=204,
                openapi_extra={"parameters": [ON_BEHALF_OF]},
                responses={401: error("Unauthenticated"), 403: error("Forbidden")})
    async def delete_webhook_key(request: Request) -> Response:
        """Clear the verification key: POSTs are no longer verified."""
        account = _key_owner(services, request, caller_of(request, FULL_ACCESS))
        state.update_account(account.user_id, clear_webhook_key=True)
        services.auth.forget()
        return Response(status_code=204)

    return api


def _key_owner(services: Services, request: Request, caller: Caller) -> Account:
    target = resolve_target(services.state, caller, request.headers.get("on-behalf-of"))
    fresh = services.state.get_account(target.user_id)
    return fresh if fresh is not None else target


async def _public_key_field(request: Request) -> str | None:
    """``public_key`` of a small JSON object body, or None when it is not a string."""
    raw = await request.body()
    try:
        body = orjson.loads(raw) if len(raw) <= _MAX_KEY_BODY_BYTES else None
    except orjson.JSONDecodeError:
        body = None
    value = body.get("public_key") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
