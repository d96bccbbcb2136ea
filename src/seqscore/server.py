"""Running the app under uvicorn (uvloop + httptools), with the in-process worker."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable

import uvicorn

from seqscore.api.app import BackgroundTask, create_app
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


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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


def run(settings: Settings) -> None:
    configure_logging(settings)
    services = Services.open(settings)
    _ = services.ingest  # the server owns the event store (one writer process) from the start
    app = create_app(services, background=background_tasks(settings))
    freeze_heap()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    loop="uvloop", http="httptools", access_log=False, server_header=False,
                    date_header=True)
    finally:
        services.close()
