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
