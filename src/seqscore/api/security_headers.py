"""ASGI middleware: every answer says ``X-Content-Type-Options: nosniff``.

The dashboard's pages set their full set of headers themselves
(``seqscore.dashboard.render.SECURITY_HEADERS``); this covers every other answer
(the JSON APIs, their errors, the 413 of ``BodySizeLimit``, the framework's own
404 and 405), so that no browser ever reads a JSON body, which may quote what a
client sent, as HTML or script.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NAME = b"x-content-type-options"
_NOSNIFF = (_NAME, b"nosniff")


class NoSniff:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _NAME for name, _ in headers):
                    headers.append(_NOSNIFF)
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_nosniff)
