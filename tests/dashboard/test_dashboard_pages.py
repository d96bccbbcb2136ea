"""The overview and account pages, rendered in process from seeded results."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from dashboard_seed import NOT_COMPUTED, PROFILES, seed_world
from dashboard_support import count, login, overview_rows
from starlette.testclient import TestClient

from seqscore.api.app import create_app
from seqscore.types import METRIC_NAMES, DayResult, Eligibility, JobState

LAST_CLOSED = dt.date(2026, 11, 19)  # at the tests' 2026-11-20 12:00 UTC
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'")


@pytest.fixture
def seeded(services):
    return seed_world(services, LAST_CLOSED)


@pytest.fixture
def client(services, seeded):
    client = TestClient(create_app(services))
    assert login(client, seeded.key).status_code == 303
    return client


def test_overview_lists_every_child_once(client, seeded):
    rows = overview_rows(client.get("/").text)
    assert len(rows) == len(seeded.children)
    assert sorted(r.user_id for r in rows) == sorted(c.user_id for c in seeded.children)


def test_overview_defaults_to_the_last_closed_day(client):
    page = client.get("/").text
    assert 'value="2026-11-19"' in page
    assert "Engagement quality on" in page


def test_overview_sorts_worst_first_by_default(client):
    rows = overview_rows(client.get("/").text)
    scored = [r for r in rows if r.status == "scored"]
    keys = [(r.chips[0], min(r.chips[1:])) for r in scored]
    assert keys == sorted(keys)
    assert keys[0][0] < keys[-1][0]
    # accounts without a score follow: not computed, then not eligible
    rest = [r.status for r in rows[len(scored):]]
    assert rest == sorted(rest, key=["not_computed", "ineligible"].index)
    assert rows.index(scored[-1]) == len(scored) - 1


def test_overview_shows_the_reason_of_ineligible_accounts(client, seeded):
    rows = {r.username: r for r in overview_rows(client.get("/").text)}
    assert rows["pilot-tiny"].status == "ineligible"
    assert rows["pilot-tiny"].reason == "low_volume"
    assert rows["legacy-no-tracking"].reason == "open_tracking_off"
    assert rows["pilot-tiny"].chips == []
    page = client.get("/?status=ineligible").text
    assert "Low volume" in page and "Open tracking off" in page


def test_uncomputed_accounts_are_shown_and_queued(client, services):
    rows = {r.username: r for r in overview_rows(client.get("/").text)}
    assert [name for name, r in rows.items() if r.status == "not_computed"] == list(NOT_COMPUTED)
    jobs = services.state.list_jobs(JobState.PENDING)
    assert [(j.day) for j in jobs] == [LAST_CLOSED]
    assert "their computation is queued" in client.get("/").text
    assert len(services.state.list_jobs(JobState.PENDING)) == 1  # asked twice, queued once


def test_a_day_not_closed_is_shown_but_not_queued(client, services):
    page = client.get("/?date=2026-11-20").text
    assert "is not closed yet" in page
    assert {r.status for r in overview_rows(page)} == {"not_computed"}
    assert services.state.list_jobs() == []


@pytest.mark.parametrize(("query", "message"), [
    ("date=2026-13-01", '"date" invalid'),
    ("date=2026-11-21", '"date" cannot be in the future'),
    ("sort=nonsense", '"sort" must be one of'),
    ("max_score=9", '"max_score" must be 1, 2, 3, 4 or 5'),
])
def test_bad_parameters_answer_400_with_the_reason(client, query, message):
    answer = client.get(f"/?{query}")
    assert answer.status_code == 400
    assert message in answer.text.replace("&#34;", '"')


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_sort_by_each_metric_both_ways(client, metric):
    column = 1 + METRIC_NAMES.index(metric)
    for order in ("asc", "desc"):
        rows = [r for r in overview_rows(client.get(f"/?sort={metric}&order={order}").text)
                if r.chips]
        values = [r.chips[column] for r in rows]
        assert values == sorted(values, reverse=order == "desc")


def test_sort_by_username_and_volume(client):
    names = [r.username for r in overview_rows(client.get("/?sort=username").text)]
    assert names == sorted(names, key=str.casefold)
    names_desc = [r.username for r in overview_rows(
        client.get("/?sort=username&order=desc").text)]
    assert names_desc == names[::-1]
    volumes = re.findall(r'<td class="num">([\d,]+)</td>',
                         client.get("/?sort=volume&order=desc").text)
    numbers = [int(v.replace(",", "")) for v in volumes]
    assert numbers == sorted(numbers, reverse=True)


def test_column_headers_link_to_their_sort(client):
    page = client.get("/").text
    assert re.search(r'aria-sort="ascending">\s*<a href="/\?date=2026-11-19&amp;order=desc"',
                     page)  # the sorted column reverses; defaults (sort=score) are left out
    assert 'href="/?date=2026-11-19&amp;sort=spam_rate"' in page
    assert 'href="/?date=2026-11-19&amp;sort=volume&amp;order=desc"' in page


def test_filters(client):
    assert {r.username for r in overview_rows(client.get("/?q=SHOP").text)} == {
        "shop-cart-reminders", "shop-eu", "shop-us"}
    low = overview_rows(client.get("/?max_score=2").text)
    assert low and all(r.chips[0] <= 2 for r in low)
    assert {r.status for r in overview_rows(client.get("/?status=scored").text)} == {"scored"}
    page = client.get("/?q=nobody-by-that-name").text
    assert overview_rows(page) == []
    assert "No account matches" in page


def test_filter_by_user_id(client, seeded):
    child = seeded.children[3]
    assert [r.user_id for r in overview_rows(client.get(f"/?q={child.user_id}").text)] == [
        child.user_id]


def test_child_key_sees_only_itself(services, world):
    parent = world.account("acme")
    child = world.account("acme-news", parent=parent)
    world.account("acme-other", parent=parent)
    world.result(child, LAST_CLOSED)
    client = TestClient(create_app(services))
    login(client, world.key(child))
    assert [r.username for r in overview_rows(client.get("/").text)] == ["acme-news"]
    assert client.get("/accounts/acme-other").status_code == 404
    assert client.get("/accounts/acme").status_code == 404


def test_parent_without_children_sees_itself(services, world):
    solo = world.account("solo")
    world.result(solo, LAST_CLOSED, score=3, metrics=(3, 3, 3, 3, 3))
    client = TestClient(create_app(services))
    login(client, world.key(solo))
    rows = overview_rows(client.get("/").text)
    assert [(r.username, r.chips[0]) for r in rows] == [("solo", 3)]


def test_another_parents_account_is_not_found(client, world):
    other = world.account("other-parent")
    world.account("other-child", parent=other)
    for name in ("other-child", "other-parent", "no-such-account"):
        answer = client.get(f"/accounts/{name}")
        assert answer.status_code == 404
        assert "No such account" in answer.text


def test_account_page_has_one_point_per_day_for_90_days(client):
    page = client.get("/accounts/acme-newsletter").text
    score_chart = page.split('id="chart-score"', 1)[1].split("</svg>", 1)[0]
    assert count(score_chart, r'<circle class="point') == 90
    for metric in METRIC_NAMES:
        chart = page.split(f'id="chart-{metric}"', 1)[1].split("</svg>", 1)[0]
        assert count(chart, r'<circle class="point') == 90
    assert "<title id=\"chart-score-title\">Score</title>" in page
    assert "90 of 90 days have a value" in page
    table = page.split('<table class="history">', 1)[1].split("</table>", 1)[0]
    assert count(table, r"<tr><th scope=\"row\">") == 90


def test_account_page_shows_gaps_for_missing_days(client, services, seeded):
    page = client.get("/accounts/new-signup").text  # no result for the last day
    score_chart = page.split('id="chart-score"', 1)[1].split("</svg>", 1)[0]
    assert count(score_chart, r'<circle class="point') == 89
    assert "newest computed day" in page
    assert "has just been queued" in page


def test_account_page_explains_the_latest_score(client, services, seeded):
    child = next(c for c in seeded.children if c.username == "partner-feed")
    (result,) = services.state.get_results(child.user_id, LAST_CLOSED, LAST_CLOSED).values()
    page = client.get("/accounts/partner-feed").text
    explanation = result.explanation
    assert "How the score of 2026-11-19 was decided" in page
    assert f"<dd>{explanation['weighted_mean_decimal']}</dd>" in page
    for metric in METRIC_NAMES:
        text = explanation["metrics"][metric]
        assert f"<strong>{text['rate_pct']} %</strong>" in page
    spam_edges = explanation["metrics"]["spam_rate"]["band_edges_pct"]
    assert f"&lt; {spam_edges[0]} %" in page  # score 5's range of the spam rate
    assert page.count('class="s') and " hit" in page
    if explanation["cap_applied"]:
        assert "<strong>applied</strong>" in page


def test_account_page_shows_volume_and_event_mix(client, services, seeded):
    child = next(c for c in seeded.children if c.username == "acme-receipts")
    (result,) = services.state.get_results(child.user_id, LAST_CLOSED, LAST_CLOSED).values()
    page = client.get("/accounts/acme-receipts").text
    mix = page.split('<table class="mix-table">', 1)[1].split("</table>", 1)[0]
    counts = result.counts
    bounces = counts["invalid_bounces_long"] + counts["block_bounces_long"]
    for label, value in [("Processed", counts["processed_long"]),
                         ("Delivered", counts["delivered_long"]),
                         ("Unique opens", counts["opened_long"]), ("Bounces", bounces),
                         ("Spam reports", counts["spam_reports_long"])]:
        assert f'<th scope="row">{label}</th><td class="num">{value:,}</td>' in mix
    assert count(page, r'<circle class="point v"') == 90  # the volume chart


def test_account_page_of_an_ineligible_account(client):
    page = client.get("/accounts/legacy-no-tracking").text
    assert 'data-reason="open_tracking_off"' in page
    assert "Open tracking off" in page


def test_account_page_without_stored_explanation(services, world):
    """Results written without counts or explanation (older versions) still render."""
    parent = world.account("acme")
    world.result(parent, LAST_CLOSED)
    client = TestClient(create_app(services))
    login(client, world.key(parent))
    page = client.get("/accounts/acme")
    assert page.status_code == 200
    assert count(page.text, r'<circle class="point s') == 6  # the score and five metrics
    assert "Volume and event mix" not in page.text  # no counts stored


@pytest.mark.parametrize("path", ["/", "/accounts/acme-newsletter", "/login",
                                  "/accounts/nobody", "/?date=bad"])
def test_security_headers_on_every_page(client, path):
    answer = client.get(path)
    assert answer.headers["content-security-policy"].startswith(CSP)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert "<html lang=\"en\">" in answer.text


def test_pages_use_no_inline_script_or_style_and_no_external_url(client):
    for path in ("/", "/accounts/acme-newsletter", "/login"):
        page = client.get(path).text
        assert "<script" not in page
        assert "<style" not in page and " style=" not in page
        assert not re.search(r'(src|href)="(https?:)?//', page)


def test_static_assets_are_served_with_headers(client):
    page = client.get("/").text
    css = re.search(r'href="(/static/dashboard\.css\?v=\w+)"', page).group(1)
    answer = client.get(css)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "@media" in answer.text and "url(" not in answer.text
    assert client.get("/static/../pyproject.toml").status_code == 404
    assert client.get("/static/nothing.css").status_code == 404


def test_tables_are_semantic(client):
    page = client.get("/").text
    assert count(page, r'<th scope="col"') == 8
    assert count(page, r'<th scope="row"') == len(PROFILES) + len(NOT_COMPUTED)
    assert "<caption" in page
    for field in ("date", "q", "status", "max_score"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page


def test_a_thousand_accounts_render(services, world):
    parent = world.account("big")
    children = [services.accounts.create_account(f"child-{i:04d}", parent=parent)
                for i in range(1000)]
    results = [DayResult(account_id=c.user_id, day=LAST_CLOSED, score=1 + i % 5,
                         metrics=dict.fromkeys(METRIC_NAMES, 1 + i % 5),
                         eligibility=Eligibility.ELIGIBLE, model_version="test",
                         computed_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
                         counts={"processed_long": 1000 + i})
               for i, c in enumerate(children)]
    services.state.upsert_results(results)
    client = TestClient(create_app(services))
    login(client, world.key(parent))
    answer = client.get("/")
    assert answer.status_code == 200
    rows = overview_rows(answer.text)
    assert len(rows) == 1000
    assert [r.chips[0] for r in rows[:200]] == [1] * 200
    assert '<strong id="row-count">1000</strong>' in answer.text
