"""The web dashboard served by ``seqscore serve`` at ``/`` (docs/dashboard.md).

``router(services)`` holds the HTML pages (``pages``), their JSON twins under
``/api/v1/dashboard`` (``twins``) and the static assets. Page data comes from
``seqscore.service.overview``, the same functions the twins call.
"""

from __future__ import annotations

from fastapi import APIRouter

from seqscore.dashboard import pages, twins
from seqscore.dashboard.render import Templates
from seqscore.dashboard.session import Sessions, load_or_create_secret
from seqscore.service.services import Services


def router(services: Services) -> APIRouter:
    """Every dashboard route; creates the session secret in the data dir on first use."""
    sessions = Sessions(load_or_create_secret(services.settings.data_dir))
    combined = APIRouter()
    combined.include_router(pages.router(services, Templates(), sessions))
    combined.include_router(twins.router(services))
    return combined
