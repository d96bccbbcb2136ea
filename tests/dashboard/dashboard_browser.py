"""A real headless Chromium for the dashboard's browser tests and screenshots.

Playwright for Python drives the system's Chromium (Debian: ``apt-get install
chromium``); no browser is downloaded (``playwright install`` is never needed).
``SEQSCORE_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("SEQSCORE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (.venv/bin/pip install playwright)"
    if not Path(CHROMIUM).is_file():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


def launch(playwright: Any, user_data_dir: Path, **context_options: Any) -> Any:
    """A browser context of a fresh profile in ``user_data_dir`` (Playwright's
    ``launch_persistent_context``), on the system's Chromium."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        **context_options)
