"""The 400 table of spec/seq-api.md, row by row, for both SEQ endpoints.

Each field reports only its first failing row; two failing fields give two
objects in table order (not query order); the from/to ordering rule applies
only when both dates are otherwise valid. The clock stands at TEST_NOW
(2026-11-20 12:00 UTC): 2026-08-22 is exactly 90 days back, 2026-08-21 is 91.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from openapi_check import ACCEPTED_BODY, ValidatingClient
from seq_api_support import ENGINES, TODAY, bearer, client_for, day, entry, module_services

from seqscore.types import Account, AccountKind
from seqscore_testing import World

SCORES = "/v3/engagementquality/scores"
SUBUSERS = "/v3/engagementquality/subusers/scores"

DAY_90 = "2026-08-22"  # exactly 90 days before 2026-11-20: accepted
DAY_91 = "2026-08-21"  # 91 days before: refused
TOMORROW = "2026-11-21"
HUGE = "9" * 5000  # longer than int() accepts from a string (4300 digits)


def test_boundary_dates_are_90_and_91_days_back() -> None:
    assert TODAY - day(DAY_90) == dt.timedelta(days=90)
    assert TODAY - day(DAY_91) == dt.timedelta(days=91)


def msg(text: str) -> str:
    return f"failed to parse request: {text}"


FROM_REQUIRED = ("from", msg('"from" must be provided'))
FROM_INVALID = ("from", msg('"from" invalid'))
FROM_90 = ("from", msg('"from" cannot be more than 90 days in the past'))
TO_REQUIRED = ("to", msg('"to" must be provided'))
TO_INVALID = ("to", msg('"to" invalid'))
TO_90 = ("to", msg('"to" cannot be more than 90 days in the past'))
TO_FUTURE = ("to", msg('"to" cannot be in the future'))
FROM_AFTER_TO = ("to", msg('"from" cannot come after "to"'))
DATE_REQUIRED = ("date", msg('"date" must be provided'))
DATE_INVALID = ("date", msg('"date" invalid'))
DATE_90 = ("date", msg('"date" cannot be more than 90 days in the past'))
DATE_FUTURE = ("date", msg('"date" cannot be in the future'))
LIMIT_INVALID = ("limit", msg('"limit" invalid'))
LIMIT_POSITIVE = ("limit", msg('"limit" must be a positive integer'))
AFTER_INVALID = ("after_key", msg('"after_key" invalid'))


def errors(*rows: tuple[str, str]) -> dict[str, list[dict[str, str]]]:
    return {"errors": [{"field": field, "message": message} for field, message in rows]}


@dataclass
class Api:
    client: ValidatingClient
    key: str
    parent: Account
    child: Account
    customer: Account


@pytest.fixture(scope="module", params=ENGINES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with module_services(request, tmp_path_factory) as services:
        world = World(services)
        parent = world.account("val-parent")
        child = world.account("val-child", parent=parent, user_id=1000)
        customer = world.account("val-customer", parent=parent, user_id=99,
                                 kind=AccountKind.CUSTOMER)
        for d in (day(DAY_90), day("2026-11-19")):
            world.result(parent, d, score=3, metrics=(3, 2, 4, 5, 1))
        world.result(child, day("2026-11-19"), score=5, metrics=(5, 5, 5, 5, 5))
        world.result(customer, day("2026-11-19"), score=None)
        with client_for(services) as client:
            yield Api(client, world.key(parent), parent, child, customer)


# ---------------------------------------------------------------- /scores: 400

SCORES_400 = [
    # from: its rows in order, one error at most
    ("to=2026-11-19", [FROM_REQUIRED]),
    ("from=&to=2026-11-19", [FROM_REQUIRED]),
    ("from=2026-02-30&to=2026-11-19", [FROM_INVALID]),
    ("from=abc&to=2026-11-19", [FROM_INVALID]),
    ("from=2026-11-1&to=2026-11-19", [FROM_INVALID]),
    ("from=20261119&to=2026-11-19", [FROM_INVALID]),
    ("from=2026-11-19T00:00:00&to=2026-11-19", [FROM_INVALID]),
    (f"from={DAY_91}&to=2026-11-19", [FROM_90]),
    # invalid and (were it a date) far in the past: only the first row, "invalid"
    ("from=1999-02-30&to=2026-11-19", [FROM_INVALID]),
    # to: its rows in order
    ("from=2026-11-18", [TO_REQUIRED]),
    ("from=2026-11-18&to=", [TO_REQUIRED]),
    ("from=2026-11-18&to=2026-02-30", [TO_INVALID]),
    ("from=2026-11-18&to=nope", [TO_INVALID]),
    (f"from={DAY_91}&to={DAY_91}", [FROM_90, TO_90]),
    (f"from=2026-11-18&to={TOMORROW}", [TO_FUTURE]),
    # invalid and (were it a date) in the future: only "invalid"
    ("from=2026-11-18&to=2099-02-30", [TO_INVALID]),
    # the ordering rule, only when both dates are otherwise valid
    ("from=2026-11-19&to=2026-11-18", [FROM_AFTER_TO]),
    (f"from=2026-11-19&to={DAY_91}", [TO_90]),  # to already failed: no ordering error
    (f"from={DAY_91}&to=2026-08-20", [FROM_90, TO_90]),  # from after to, both failed
    ("from=abc&to=2026-11-18", [FROM_INVALID]),
    # from in the future: reported by the ordering rule or by the to rule
    (f"from={TOMORROW}&to=2026-11-20", [FROM_AFTER_TO]),
    (f"from={TOMORROW}&to=2026-11-19", [FROM_AFTER_TO]),
    ("from=2026-12-25&to=2026-12-01", [TO_FUTURE]),
    (f"from={TOMORROW}", [TO_REQUIRED]),
    (f"from={TOMORROW}&to=bad", [TO_INVALID]),
    # two failing fields: one object each, table order, whatever the query order
    ("", [FROM_REQUIRED, TO_REQUIRED]),
    ("to=2026-02-30&from=", [FROM_REQUIRED, TO_INVALID]),
    (f"to={TOMORROW}&from=abc", [FROM_INVALID, TO_FUTURE]),
    (f"to=&from={DAY_91}", [FROM_90, TO_REQUIRED]),
]


@pytest.mark.parametrize(("query", "expected"), SCORES_400,
                         ids=[q or "<empty>" for q, _ in SCORES_400])
def test_scores_400_body(api: Api, query: str, expected: list[tuple[str, str]]) -> None:
    r = api.client.get(f"{SCORES}?{query}", headers=bearer(api.key))
    assert r.status_code == 400
    assert r.json() == errors(*expected)
    assert r.headers["X-RateLimit-Limit"] == "600"  # an authenticated answer


# ------------------------------------------------------- /scores: valid params


def test_scores_accepts_from_exactly_90_days_back(api: Api) -> None:
    r = api.client.get(f"{SCORES}?from={DAY_90}&to={DAY_90}", headers=bearer(api.key))
    assert r.status_code == 200
    assert r.json() == {"result": [entry(api.parent, day(DAY_90), 3, (3, 2, 4, 5, 1))]}


def test_scores_accepts_to_today(api: Api) -> None:
    r = api.client.get(f"{SCORES}?from=2026-11-19&to=2026-11-20", headers=bearer(api.key))
    assert r.status_code == 200
    assert r.json() == {"result": [entry(api.parent, day("2026-11-19"), 3, (3, 2, 4, 5, 1))]}


def test_scores_from_equal_to_today_is_valid_and_202(api: Api) -> None:
    r = api.client.get(f"{SCORES}?from=2026-11-20&to=2026-11-20", headers=bearer(api.key))
    assert r.status_code == 202
    assert r.json() == ACCEPTED_BODY


# ------------------------------------------------------ /subusers/scores: 400

SUBUSERS_400 = [
    ("", [DATE_REQUIRED]),
    ("date=", [DATE_REQUIRED]),
    ("date=2026-02-30", [DATE_INVALID]),
    ("date=yesterday", [DATE_INVALID]),
    ("date=2026/11/19", [DATE_INVALID]),
    ("date=2099-02-30", [DATE_INVALID]),  # invalid and future: only "invalid"
    (f"date={DAY_91}", [DATE_90]),
    (f"date={TOMORROW}", [DATE_FUTURE]),
    # limit
    ("date=2026-11-19&limit=0", [LIMIT_POSITIVE]),
    ("date=2026-11-19&limit=-1", [LIMIT_POSITIVE]),
    ("date=2026-11-19&limit=-0", [LIMIT_POSITIVE]),
    (f"date=2026-11-19&limit=-{HUGE}", [LIMIT_POSITIVE]),
    ("date=2026-11-19&limit=1001", [LIMIT_INVALID]),
    (f"date=2026-11-19&limit={HUGE}", [LIMIT_INVALID]),
    ("date=2026-11-19&limit=abc", [LIMIT_INVALID]),
    ("date=2026-11-19&limit=", [LIMIT_INVALID]),
    ("date=2026-11-19&limit=1.5", [LIMIT_INVALID]),
    ("date=2026-11-19&limit=%2B5", [LIMIT_INVALID]),  # "+5"
    # after_key
    ("date=2026-11-19&after_key=-1", [AFTER_INVALID]),
    ("date=2026-11-19&after_key=abc", [AFTER_INVALID]),
    ("date=2026-11-19&after_key=", [AFTER_INVALID]),
    ("date=2026-11-19&after_key=1.0", [AFTER_INVALID]),
    # several fields: one object each, in table order, whatever the query order
    ("after_key=-1&limit=0", [DATE_REQUIRED, LIMIT_POSITIVE, AFTER_INVALID]),
    (f"after_key=abc&limit=abc&date={TOMORROW}", [DATE_FUTURE, LIMIT_INVALID, AFTER_INVALID]),
    ("date=2026-11-19&after_key=x&limit=1001", [LIMIT_INVALID, AFTER_INVALID]),
    (f"limit=1000&date={DAY_91}&after_key=-5", [DATE_90, AFTER_INVALID]),
]


def _id(query: str) -> str:
    return (query or "<empty>").replace(HUGE, "9x5000")


@pytest.mark.parametrize(("query", "expected"), SUBUSERS_400,
                         ids=[_id(q) for q, _ in SUBUSERS_400])
def test_subusers_scores_400_body(api: Api, query: str,
                                  expected: list[tuple[str, str]]) -> None:
    r = api.client.get(f"{SUBUSERS}?{query}", headers=bearer(api.key))
    assert r.status_code == 400
    assert r.json() == errors(*expected)
    assert r.headers["X-RateLimit-Limit"] == "600"


# --------------------------------------------- /subusers/scores: valid params


def both_children(api: Api) -> list[dict[str, object]]:
    # numeric user_id order: 99 before 1000 (lexicographically "1000" < "99")
    return [entry(api.customer, day("2026-11-19")),
            entry(api.child, day("2026-11-19"), 5, (5, 5, 5, 5, 5))]


@pytest.mark.parametrize("query", [
    "date=2026-11-19",
    "date=2026-11-19&limit=1000",
    "date=2026-11-19&limit=2",
    "date=2026-11-19&after_key=0",
    "date=2026-11-19&after_key=98",
    "date=2026-11-19&limit=1000&after_key=0",
])
def test_subusers_scores_valid_params(api: Api, query: str) -> None:
    r = api.client.get(f"{SUBUSERS}?{query}", headers=bearer(api.key))
    assert r.status_code == 200
    assert r.json() == {"result": both_children(api)}


@pytest.mark.parametrize("after_key", ["999", "00999"])
def test_subusers_scores_after_key_starts_after_that_user_id(api: Api, after_key: str) -> None:
    r = api.client.get(f"{SUBUSERS}?date=2026-11-19&after_key={after_key}",
                       headers=bearer(api.key))
    assert r.status_code == 200
    assert r.json() == {"result": both_children(api)[1:]}


def test_subusers_scores_limit_1_has_next_after_key(api: Api) -> None:
    r = api.client.get(f"{SUBUSERS}?date=2026-11-19&limit=1", headers=bearer(api.key))
    assert r.status_code == 200
    assert r.json() == {"result": both_children(api)[:1],
                        "_metadata": {"next_params": {"after_key": "99"}}}


@pytest.mark.parametrize("after_key", ["1000", "9223372036854775807",
                                       "99999999999999999999", HUGE],
                         ids=["last", "bigint-max", "20-digits", "5000-digits"])
def test_subusers_scores_after_key_past_every_child_is_empty(api: Api, after_key: str) -> None:
    r = api.client.get(f"{SUBUSERS}?date=2026-11-19&after_key={after_key}",
                       headers=bearer(api.key))
    assert r.status_code == 200
    assert r.json() == {"result": []}


def test_subusers_scores_accepts_date_exactly_90_days_back(api: Api) -> None:
    r = api.client.get(f"{SUBUSERS}?date={DAY_90}", headers=bearer(api.key))
    assert r.status_code == 202  # valid; nothing computed for that day yet
    assert r.json() == ACCEPTED_BODY


def test_subusers_scores_accepts_date_today(api: Api) -> None:
    r = api.client.get(f"{SUBUSERS}?date={TODAY.isoformat()}", headers=bearer(api.key))
    assert r.status_code == 202  # valid; today is not closed
    assert r.json() == ACCEPTED_BODY
