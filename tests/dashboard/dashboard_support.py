"""Helpers of the dashboard tests: logging in through the form and reading pages back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx
from starlette.testclient import TestClient

SESSION_COOKIE = "seqscore_session"
_TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def form_token(html: str) -> str:
    """The hidden csrf_token of the first form of a page."""
    match = _TOKEN_RE.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def login(client: TestClient, api_key: str, *, next_url: str = "/") -> httpx.Response:
    """Log in through the login form; the answer is not followed (303 on success)."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    return client.post("/login", data={"csrf_token": form_token(page.text), "api_key": api_key,
                                       "next": next_url}, follow_redirects=False)


def set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


@dataclass
class Row:
    user_id: int
    status: str
    username: str = ""
    chips: list[int] = field(default_factory=list)
    reason: str | None = None


class _RowParser(HTMLParser):
    """The rows of the overview table (``tr[data-user-id]``): name, chips, reason."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self._row: Row | None = None
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-user-id"):
            self._row = Row(int(a["data-user-id"] or 0), a.get("data-status") or "")
            self.rows.append(self._row)
        elif self._row is not None and tag == "span" and "chip" in (a.get("class") or ""):
            self._capture = "chip"
        elif self._row is not None and tag == "span" and a.get("data-reason"):
            self._row.reason = a["data-reason"]
        elif self._row is not None and tag == "a" and not self._row.username:
            self._capture = "name"

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        self._capture = None if tag in {"span", "a"} else self._capture

    def handle_data(self, data: str) -> None:
        if self._row is None or self._capture is None:
            return
        if self._capture == "chip":
            self._row.chips.append(int(data))
        elif self._capture == "name":
            self._row.username = data.strip()


def overview_rows(html: str) -> list[Row]:
    parser = _RowParser()
    parser.feed(html)
    return parser.rows


def count(html: str, pattern: str) -> int:
    return len(re.findall(pattern, html))
