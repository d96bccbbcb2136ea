"""JSON responses in SendGrid's shapes, serialised with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, headers=headers,
                    media_type=JSON)


def raw_json(body: bytes, status_code: int = 200,
             headers: Mapping[str, str] | None = None) -> Response:
    """A response from JSON bytes already serialised (e.g. a cached answer)."""
    return Response(body, status_code=status_code, headers=headers, media_type=JSON)


def error_body(message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message}]}


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return json_response(error_body(message), status_code, headers)
