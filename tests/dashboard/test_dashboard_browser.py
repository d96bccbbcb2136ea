"""The dashboard in a real headless Chromium against a real server.

Needs Playwright for Python and a Chromium binary (dashboard_browser.py); they
skip with the reason when either is missing, and fail under CI=true.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_browser import launch, missing
from dashboard_seed import seed_world

from live_server import serving
from seqscore.api.app import create_app
from seqscore_testing import require_or_skip

LAST_CLOSED = dt.date(2026, 11, 19)
ROWS = "table#overview tbody tr[data-user-id]"


#: the browser is the subject here, not the state store: SQLite only
pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)]


@pytest.fixture
def playwright() -> Iterator[Any]:
    reason = missing()
    require_or_skip(reason is None, reason or "")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture
def site(services) -> Iterator[tuple[str, Any]]:
    seeded = seed_world(services, LAST_CLOSED)
    with serving(create_app(services)) as base_url:
        yield base_url, seeded


@pytest.fixture
def context(playwright, tmp_path, site) -> Iterator[Any]:
    base_url, _seeded = site
    browser = launch(playwright, tmp_path / "profile", base_url=base_url)
    browser.set_default_timeout(20_000)
    problems: list[str] = []
    browser.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    browser.on("request", lambda r: None if r.url.startswith(base_url)
               else problems.append(f"external request {r.url}"))
    browser.problems = problems
    yield browser
    browser.close()


def log_in(page: Any, api_key: str) -> None:
    page.goto("/")
    assert page.url.endswith("/login")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def row_names(page: Any) -> list[str]:
    return page.locator(f"{ROWS} th a").all_inner_texts()


def test_log_in_sort_open_an_account_and_log_out(context, site):
    _base_url, seeded = site
    page = context.new_page()
    log_in(page, seeded.key)

    assert page.locator(ROWS).count() == len(seeded.children)
    first_scores = page.locator(f"{ROWS} td.score .chip").all_inner_texts()
    assert first_scores == sorted(first_scores)  # worst first

    page.locator("th.col-username a").click()
    page.wait_for_url("**sort=username**")
    names = row_names(page)
    assert names == sorted(names, key=str.casefold)
    assert page.locator("th.col-username").get_attribute("aria-sort") == "ascending"
    page.locator("th.col-username a").click()
    page.wait_for_url("**order=desc**")
    assert row_names(page) == names[::-1]

    page.get_by_role("link", name="acme-promotions", exact=True).click()
    page.wait_for_url("**/accounts/acme-promotions**")
    assert page.locator("#chart-score circle.point").count() == 90
    for metric in ("engagement_recency", "open_rate", "bounce_classification",
                   "bounce_rate", "spam_rate"):
        assert page.locator(f"#chart-{metric} circle.point").count() == 90
    assert page.locator("#chart-score").get_attribute("role") == "img"
    assert "How the score of 2026-11-19 was decided" in page.content()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/")
    assert page.url.endswith("/login")
    assert context.problems == []  # no CSP violation, no script error, nothing external


def test_filter_form_and_day_picker_without_javascript(context, site):
    _base_url, seeded = site
    page = context.new_page()
    log_in(page, seeded.key)
    page.get_by_label("Status").select_option("ineligible")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**status=ineligible**")
    assert sorted(row_names(page)) == ["legacy-no-tracking", "pilot-tiny"]
    page.get_by_label("Day (UTC)").fill("2026-11-01")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**date=2026-11-01**")
    assert page.locator("h1 time").get_attribute("datetime") == "2026-11-01"
    assert context.problems == []


def test_phone_layout_keeps_the_page_within_the_screen(playwright, tmp_path, site):
    base_url, seeded = site
    phone = launch(playwright, tmp_path / "phone", base_url=base_url,
                   viewport={"width": 390, "height": 844}, device_scale_factor=2,
                   is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        log_in(page, seeded.key)
        assert page.locator(ROWS).count() == len(seeded.children)
        for path in ("/", "/accounts/acme-newsletter"):
            page.goto(path)
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
    finally:
        phone.close()


def test_keyboard_reaches_the_skip_link_and_the_sort_links(context, site):
    _base_url, seeded = site
    page = context.new_page()
    log_in(page, seeded.key)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    page.locator("th.col-score a").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**order=desc**")
    scores = page.locator(f"{ROWS} td.score .chip").all_inner_texts()
    assert scores == sorted(scores, reverse=True)
