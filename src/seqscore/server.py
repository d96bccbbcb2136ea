"""Running the app under uvicorn (uvloop + httptools when available)."""

from __future__ import annotations

import logging

import uvicorn

from seqscore.api.app import BackgroundTask, create_app
from seqscore.service.services import Services
from seqscore.settings import Settings


def background_tasks(settings: Settings) -> list[BackgroundTask]:
    """The in-process worker and scheduler, when enabled."""
    return []


def run(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    services = Services.open(settings)
    app = create_app(services, background=background_tasks(settings))
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    access_log=False, server_header=False, date_header=True)
    finally:
        services.close()
