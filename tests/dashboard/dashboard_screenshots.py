"""Refresh the dashboard screenshots of docs/dashboard.md (run by scripts/screenshots).

Seeds a throw-away data dir with dashboard_seed's world at a frozen clock, serves
it on loopback with the real app, and photographs the pages in headless Chromium.

    .venv/bin/python tests/dashboard/dashboard_screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from dashboard_browser import launch, missing  # noqa: E402
from dashboard_seed import seed_world  # noqa: E402

from live_server import serving  # noqa: E402
from seqscore.api.app import create_app  # noqa: E402
from seqscore.clock import FrozenClock  # noqa: E402
from seqscore.service.services import Services  # noqa: E402
from seqscore.settings import Settings  # noqa: E402

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
LAST_CLOSED = dt.date(2026, 11, 19)
ACCOUNT = "acme-promotions"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parents[1] / "docs" / "img")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    reason = missing()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seqscore-screenshots-") as tmp:
        services = Services.open(Settings(data_dir=Path(tmp) / "data", worker=False),
                                 clock=FrozenClock(NOW))
        try:
            seeded = seed_world(services, LAST_CLOSED)
            with serving(create_app(services)) as base_url, sync_playwright() as playwright:
                browser = launch(playwright, Path(tmp) / "profile", base_url=base_url,
                                 viewport={"width": args.width, "height": 900},
                                 device_scale_factor=1)
                page = browser.new_page()
                page.goto("/login")
                page.get_by_label("API key").fill(seeded.key)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url("**/")
                shoot(page, args.out / "overview.png")
                page.goto(f"/accounts/{ACCOUNT}")
                shoot(page, args.out / "account.png")
                browser.close()
        finally:
            services.close()
    return 0


def shoot(page: object, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
