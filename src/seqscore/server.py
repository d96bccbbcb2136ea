"""Running the app under uvicorn (uvloop + httptools), with the in-process worker."""

from __future__ import annotations

import asyncio
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
    worker.start()

    async def stop() -> None:
        await asyncio.to_thread(worker.stop)

    return stop


def background_tasks(settings: Settings) -> list[BackgroundTask]:
    return [in_process_worker] if settings.worker else []


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(settings: Settings) -> None:
    configure_logging(settings)
    services = Services.open(settings)
    app = create_app(services, background=background_tasks(settings))
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    loop="uvloop", http="httptools", access_log=False, server_header=False,
                    date_header=True)
    finally:
        services.close()
