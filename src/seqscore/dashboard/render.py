"""HTML responses of the dashboard: templates, static assets and security headers.

Every asset is served by seqscore itself from the package (``/static/…``): the
pages work without a network and the CSP allows nothing but ``'self'``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from seqscore import __version__
from seqscore.types import METRIC_NAMES

#: Sent with every dashboard page (and its assets).
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: What a table cell shows for a missing number (an en dash).
NO_VALUE = "\u2013"
#: Pages show one account's data: never stored by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}

METRIC_LABELS: Mapping[str, str] = {
    "engagement_recency": "Engagement recency",
    "open_rate": "Open rate",
    "bounce_classification": "Bounce classification",
    "bounce_rate": "Bounce rate",
    "spam_rate": "Spam rate",
}
METRIC_HELP: Mapping[str, str] = {
    "engagement_recency": "recipients of the last 30 days who opened or clicked in the "
                          "last 90 days",
    "open_rate": "unique human opens per delivered message at the top mailbox providers",
    "bounce_classification": "bounces classified as Reputation or Content (blocks)",
    "bounce_rate": "bounces to invalid addresses per processed message",
    "spam_rate": "spam reports per delivered message",
}
ELIGIBILITY_TEXT: Mapping[str, str] = {
    "eligible": "Eligible",
    "low_volume": "Low volume",
    "open_tracking_off": "Open tracking off",
}
ELIGIBILITY_HELP: Mapping[str, str] = {
    "low_volume": "fewer processed messages in 30 days than the model's minimum (1,000 by "
                  "default)",
    "open_tracking_off": "open tracking is turned off, so opens cannot be measured",
}
STATUS_TEXT: Mapping[str, str] = {
    "scored": "Scored", "ineligible": "Not eligible", "not_computed": "Not computed",
}
KIND_TEXT: Mapping[str, str] = {"parent": "Parent account", "subuser": "Subuser",
                                "customer": "Customer account"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str


def load_assets() -> dict[str, Asset]:
    """Every file of ``seqscore/dashboard/static``, by name."""
    assets: dict[str, Asset] = {}
    for entry in resources.files("seqscore.dashboard").joinpath("static").iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            body = entry.read_bytes()
            media_type = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith(("javascript", "+xml")):
                media_type += "; charset=utf-8"
            assets[entry.name] = Asset(body, media_type, hashlib.sha256(body).hexdigest()[:12])
    return assets


def thousands(value: int | None) -> str:
    return NO_VALUE if value is None else f"{value:,}"


def percent_of(part: int, whole: int) -> str:
    """``part`` as a percent of ``whole`` for display (one decimal; never a decision)."""
    if not whole:
        return NO_VALUE
    return f"{100 * part / whole:.1f} %"


class Templates:
    """The Jinja environment (autoescaping, strict undefined) and the static assets."""

    def __init__(self) -> None:
        self.assets = load_assets()
        self.env = Environment(
            loader=PackageLoader("seqscore.dashboard", "templates"),
            autoescape=select_autoescape(["html"], default=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self.env.globals.update(
            asset=self.asset_url, version=__version__, metric_names=METRIC_NAMES,
            metric_labels=METRIC_LABELS, metric_help=METRIC_HELP,
            eligibility_text=ELIGIBILITY_TEXT, eligibility_help=ELIGIBILITY_HELP,
            status_text=STATUS_TEXT, kind_text=KIND_TEXT, percent_of=percent_of,
        )
        self.env.filters["thousands"] = thousands

    def asset_url(self, name: str) -> str:
        return f"/static/{name}?v={self.assets[name].version}"

    def page(self, template: str, status_code: int = 200, *,
             response_headers: Mapping[str, str] | None = None, **context: Any) -> Response:
        """``template`` rendered with ``context``, with the security headers."""
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code,
                            headers={**SECURITY_HEADERS, **NO_STORE, **(response_headers or {})})

    def asset(self, name: str) -> Response | None:
        found = self.assets.get(name)
        if found is None:
            return None
        return Response(found.body, media_type=found.media_type,
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400",
                                 "ETag": f'"{found.version}"'})
