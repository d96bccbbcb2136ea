"""``seqscore compute``: one day, a range, one account or all; its errors; and results
identical to the worker's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from compute_service_support import CLOSED, ONE_DAY, Events, post, run_jobs, unix

from seqscore.cli import main
from seqscore.clock import FrozenClock
from seqscore.service.services import Services
from seqscore.settings import Settings
from seqscore.types import DayResult
from seqscore_testing import TEST_NOW, World

Invoke = Callable[..., Result]


@pytest.fixture
def seeded(settings: Settings) -> Iterator[Settings]:
    """Three accounts with a few events on the last three closed days; the services are
    closed again (the CLI opens the DuckDB file itself)."""
    services = Services.open(settings, clock=FrozenClock(TEST_NOW))
    try:
        world = World(services)
        acme = world.account("acme")
        for account in (acme, world.account("news", parent=acme), world.account("club")):
            ev = Events(account.username)
            post(services, account, [
                ev(kind, unix(CLOSED - ONE_DAY * (i % 3)) + i, f"r{i % 7}@gmail.com")
                for i, kind in enumerate(["processed", "delivered", "open"] * 20)])
    finally:
        services.close()
    yield settings


@pytest.fixture
def cli(seeded: Settings, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Runs ``seqscore`` in-process with the test's settings and clock."""
    monkeypatch.setenv("SEQSCORE_STATE_URL", seeded.state_url or "")
    monkeypatch.setenv("SEQSCORE_NOW", TEST_NOW.isoformat())
    monkeypatch.setenv("SEQSCORE_EVENTS_THREADS", "1")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["compute", *args, "--data-dir", str(seeded.data_dir)])

    return invoke


def summary(result: Result) -> dict[str, Any]:
    """The printed counts and days (other keys, such as the engine, are not checked)."""
    printed = json.loads(result.stdout)
    return {k: printed[k] for k in ("results", "accounts", "from", "to")}


def stored(settings: Settings) -> dict[tuple[str, Any], DayResult]:
    services = Services.open(settings, clock=FrozenClock(TEST_NOW))
    try:
        names = {a.user_id: a.username for a in services.state.list_accounts()}
        return {(names[r.account_id], r.day): r for account_id in names
                for r in services.state.get_results(account_id, CLOSED - 10 * ONE_DAY,
                                                    CLOSED).values()}
    finally:
        services.close()


def test_compute_defaults_to_the_last_closed_day_for_every_account(
        cli: Invoke, seeded: Settings) -> None:
    result = cli()
    assert result.exit_code == 0, result.output
    assert summary(result) == {"results": 3, "accounts": 3, "from": str(CLOSED),
                               "to": str(CLOSED)}
    assert set(stored(seeded)) == {(n, CLOSED) for n in ("acme", "news", "club")}


def test_compute_one_date_one_account(cli: Invoke, seeded: Settings) -> None:
    result = cli("--date", str(CLOSED - ONE_DAY), "--account", "news")
    assert result.exit_code == 0, result.output
    assert summary(result)["results"] == 1
    assert set(stored(seeded)) == {("news", CLOSED - ONE_DAY)}


def test_compute_a_range_for_all_accounts_in_several_passes(cli: Invoke,
                                                            seeded: Settings) -> None:
    first = CLOSED - 4 * ONE_DAY
    result = cli("--from", str(first), "--to", str(CLOSED), "--all-accounts",
                 "--days-per-pass", "2")
    assert result.exit_code == 0, result.output
    assert summary(result) == {"results": 15, "accounts": 3, "from": str(first),
                               "to": str(CLOSED)}
    assert len(stored(seeded)) == 15


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--date", str(TEST_NOW.date())), 2, f"{TEST_NOW.date()} is not closed yet "
                                          f"(last closed day: {CLOSED})"),
    (("--from", str(CLOSED - ONE_DAY), "--to", str(TEST_NOW.date())), 2, "is not closed yet"),
    (("--from", str(CLOSED)), 2, "--from and --to go together"),
    (("--to", str(CLOSED)), 2, "--from and --to go together"),
    (("--from", str(CLOSED), "--to", str(CLOSED - ONE_DAY)), 2, "--from is after --to"),
    (("--date", str(CLOSED), "--from", str(CLOSED), "--to", str(CLOSED)), 2,
     "--date excludes --from/--to"),
    (("--account", "acme", "--all-accounts"), 2, "exclude each other"),
    (("--account", "nobody"), 1, "no account named 'nobody'"),
    (("--date", "2026-02-30"), 2, "Invalid value for '--date'"),
    (("--days-per-pass", "0"), 2, "Invalid value for '--days-per-pass'"),
])
def test_compute_refuses_bad_arguments_in_one_line(cli: Invoke, seeded: Settings,
                                                   args: tuple[str, ...], code: int,
                                                   message: str) -> None:
    result = cli(*args)
    assert (result.exit_code, message in result.output) == (code, True), result.output
    assert "Traceback" not in result.output
    assert stored(seeded) == {}


def test_the_cli_computes_what_the_worker_computes(cli: Invoke, seeded: Settings) -> None:
    first = CLOSED - 3 * ONE_DAY
    assert cli("--from", str(first), "--to", str(CLOSED)).exit_code == 0
    by_cli = stored(seeded)
    assert len(by_cli) == 12
    services = Services.open(seeded, clock=FrozenClock(TEST_NOW))
    try:
        services.state.enqueue_jobs([(r.account_id, r.day) for r in by_cli.values()],
                                    now=TEST_NOW)
        assert run_jobs(services) == 12
    finally:
        services.close()
    by_worker = stored(seeded)
    assert by_worker == by_cli  # every field: score, metrics, counts, rates, explanation
    assert {r.score for r in by_worker.values()} == {None}  # few events: not eligible
    assert any(r.counts["processed_long"] for r in by_worker.values())

