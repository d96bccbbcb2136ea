"""Running the app under uvicorn (uvloop + httptools), with the in-process worker.

``server_config`` is the one place the HTTP server is configured: uvicorn with
``GuardedHttpProtocol``, which adds what uvicorn's httptools protocol lacks
against hostile clients (docs/settings.md, ``SEQSCORE_HTTP_*``): a limit on the
size of the request line and headers (431), a deadline for the headers (a slow
sender is disconnected) and one for the body (408), and a JSON 503 beyond the
connection limit. Every such answer is in SendGrid's error shape and closes the
connection.

``run`` and ``run_worker`` are the two long-running processes (``seqscore serve``,
``seqscore worker``). Both stop gracefully on SIGINT or SIGTERM (what systemd,
Docker and Kubernetes send): the API finishes its requests, a worker its current
round, and the stores are closed. Neither turns the first signal into a
``KeyboardInterrupt``: raised at whatever line the process happens to be on, it
can land inside a garbage-collector callback, where Python prints it as an
"Exception ignored" traceback and drops it, so the process would not even stop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.handlers
import queue
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from seqscore.api.app import BackgroundTask, create_app
from seqscore.api.responses import error_body
from seqscore.service.services import Services
from seqscore.service.worker import Worker
from seqscore.settings import Settings


def in_process_worker(services: Services) -> Callable[[], Awaitable[None]]:
    """Start the worker thread; return the coroutine function that stops it."""
    worker = Worker(services)
    freeze_heap()  # the event store and job runner just built live as long as the process
    worker.start()

    async def stop() -> None:
        await asyncio.to_thread(worker.stop)

    return stop


def background_tasks(settings: Settings) -> list[BackgroundTask]:
    return [in_process_worker] if settings.worker else []


def configure_logging(settings: Settings) -> logging.handlers.QueueListener:
    """Log through a queue: the event loop only enqueues a record, and a thread of
    its own writes it to stderr, so a slow or full log sink (an unread pipe, a
    stalled journal) delays log lines, never requests. uvicorn's own loggers
    propagate here too (``server_config`` passes no ``log_config``).

    Returns the started listener; ``stop()`` it to flush before exiting.
    """
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stderr = logging.StreamHandler()
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = logging.handlers.QueueListener(records, stderr, respect_handler_level=True)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(settings.log_level.upper())
    listener.start()
    return listener


def freeze_heap() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach.

    The modules, the app and the stores live as long as the process; left in the
    collected generations, every full collection walks them all (~150,000
    objects: tens of milliseconds during which no request is served, which is
    the /v3 p99). Frozen, a full collection walks only what requests leave
    behind. Garbage is collected first, so nothing unreachable is kept.
    """
    gc.collect()
    gc.freeze()


MSG_HEADERS_TOO_LARGE = "request line and headers too large"
MSG_BODY_TIMEOUT = "request body not received in time"
MSG_OVERLOADED = "service unavailable"
MSG_INVALID_HTTP = "invalid HTTP request"


def _error_answer(status_line: bytes, message: str, *extra: bytes) -> bytes:
    """A complete HTTP/1.1 answer in SendGrid's error shape that closes the connection."""
    body = orjson.dumps(error_body(message))
    head = [status_line, b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(), b"x-content-type-options: nosniff",
            b"connection: close", *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


ANSWER_431 = _error_answer(b"HTTP/1.1 431 Request Header Fields Too Large",
                           MSG_HEADERS_TOO_LARGE)
ANSWER_400 = _error_answer(b"HTTP/1.1 400 Bad Request", MSG_INVALID_HTTP)
ANSWER_408 = _error_answer(b"HTTP/1.1 408 Request Timeout", MSG_BODY_TIMEOUT)


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI answer beyond ``http_max_connections``: 503, and the connection closed."""
    body = orjson.dumps(error_body(MSG_OVERLOADED))
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), (b"retry-after", b"5"),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class _HeaderOverflow(Exception):
    """Raised inside the parser's callbacks: the headers passed the size limit."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header size, header and body deadlines, and a
    JSON 503 beyond the connection limit (the limits come from ``server_config``).

    A request's header bytes are counted twice over: the chunks received while its
    headers are incomplete (httptools buffers a header until its end, so a single
    endless header would otherwise grow unseen), and the URL and header fields the
    parser hands over (headers that arrive whole in one large chunk).
    """

    max_header_bytes = 32 * 1024
    header_timeout_s = 10.0
    body_timeout_s = 60.0
    max_connections: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app = self.app
        self.limit_concurrency = None  # checked here, to answer in SendGrid's shape
        self._in_headers = True
        self._header_bytes = 0
        self._overflow = False
        self._fields_bytes = 0
        self._headers_done = 0  # requests whose headers were complete, so far
        self._deadline: asyncio.TimerHandle | None = None

    # -- deadlines
    def _arm(self, seconds: float, expire: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose headers did not arrive in time")
            self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # the application sees a disconnect and can no longer answer
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.write(ANSWER_408)
        self.transport.close()

    # -- connection and parser callbacks
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers and self._deadline is None:
            self._arm(self.header_timeout_s, self._headers_late)  # a request begins
        counting, done = self._in_headers, self._headers_done
        super().data_received(data)
        # only header bytes: not a chunk that began in a body (and may have ended it), nor
        # one that completed headers (it holds body bytes, maybe a whole request's)
        if counting and self._headers_done == done and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._overflow = True
                self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools cannot parse, in SendGrid's shape; 431
        when the headers passed the size limit."""
        if self._overflow:
            self.logger.info("refused a request whose headers exceed %d bytes",
                             self.max_header_bytes)
        self.transport.write(ANSWER_431 if self._overflow else ANSWER_400)
        self.transport.close()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._fields_bytes += size
        if self._fields_bytes > self.max_header_bytes:
            self._overflow = True
            raise _HeaderOverflow

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._fields_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._headers_done += 1
        self._header_bytes = 0
        self._arm(self.body_timeout_s, self._body_late)
        limit = self.max_connections
        overloaded = limit is not None and (
            len(self.connections) > limit or len(self.tasks) >= limit)
        self.app = _overloaded if overloaded else self._app
        if overloaded:
            self.logger.warning("over the connection limit (%d): answered 503", limit)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_headers = True
        super().on_message_complete()


def guarded_protocol(settings: Settings) -> type[GuardedHttpProtocol]:
    """``GuardedHttpProtocol`` with the limits of ``settings``."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {
        "max_header_bytes": settings.http_max_header_bytes,
        "header_timeout_s": settings.http_header_timeout_seconds,
        "body_timeout_s": settings.http_body_timeout_seconds,
        "max_connections": settings.http_max_connections or None,
    })


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration of ``seqscore serve`` (tests serve through it too)."""
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        loop="uvloop", http=guarded_protocol(settings), access_log=False,
        server_header=False, date_header=True, ws="none", log_config=None,
        timeout_keep_alive=settings.http_keep_alive_seconds)


STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger("seqscore.server")


def _interrupt(signum: int) -> None:
    """What a stop signal does by default, as an exception that lets ``run`` and
    ``run_worker`` close the stores on the way out: SIGINT a ``KeyboardInterrupt``
    (exit 0), SIGTERM exit status 143."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _on_stop_signals(handler: Callable[[int, FrameType | None], None]) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def _quiet_after_shutdown(server: uvicorn.Server) -> None:
    """Handle SIGINT and SIGTERM beneath uvicorn's own handlers.

    uvicorn handles both while it serves (a graceful shutdown) and, once shut down,
    raises the signal again to whatever handler was there before it: Python's
    default turns that into a ``KeyboardInterrupt`` at an arbitrary line. This
    handler ignores the signal uvicorn already acted on, and interrupts as by
    default when uvicorn was not serving (still starting up)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if not server.should_exit:
            _interrupt(signum)

    _on_stop_signals(handler)


def _stop_on_signals(stop: Callable[[], None]) -> None:
    """Make the first SIGINT or SIGTERM call ``stop`` (in a thread: an Event cannot
    safely be set, nor a line logged, from inside a handler); a second one
    interrupts at once, as by default."""

    def stopping(signum: int) -> None:
        log.info("%s received: stopping after the current round (again to interrupt)",
                 signal.Signals(signum).name)
        stop()

    def handler(signum: int, frame: FrameType | None) -> None:
        _on_stop_signals(lambda signum, frame: _interrupt(signum))
        threading.Thread(target=stopping, args=(signum,), name="seqscore-stop").start()

    _on_stop_signals(handler)


def run(settings: Settings) -> None:
    """``seqscore serve``: the API, and the worker unless ``settings.worker`` is off."""
    log_writer = configure_logging(settings)
    services = Services.open(settings)
    _ = services.ingest  # the server owns the event store (one writer process) from the start
    app = create_app(services, background=background_tasks(settings))
    freeze_heap()
    server = uvicorn.Server(server_config(app, settings))
    _quiet_after_shutdown(server)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C while starting up (SIGTERM exits 143)
        pass
    finally:
        services.close()
        log_writer.stop()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits with


def run_worker(settings: Settings) -> None:
    """``seqscore worker``: the job worker and scheduler, in the foreground."""
    log_writer = configure_logging(settings)
    try:
        services = Services.open(settings)
        try:
            worker = Worker(services)
            _stop_on_signals(worker.stop)
            log.info("worker %s started", worker.id)
            worker.run()
            log.info("worker %s stopped", worker.id)
        except KeyboardInterrupt:  # a second signal: stop now
            pass
        finally:
            services.close()
    finally:
        log_writer.stop()
