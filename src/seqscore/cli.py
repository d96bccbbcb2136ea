"""The ``seqscore`` command line. Reads settings once and passes them down."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from seqscore import __version__
from seqscore.errors import SeqscoreError
from seqscore.service.accounts import parse_scopes
from seqscore.service.services import Services
from seqscore.settings import SETTINGS, Settings, settings_markdown
from seqscore.types import AccountKind

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(func: F) -> F:
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Data folder (default: $SEQSCORE_DATA_DIR, else ./seqscore-data).",
    )(func)


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    try:
        return Settings.from_env(data_dir=data_dir, **overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _open(settings: Settings) -> Services:
    try:
        return Services.open(settings)
    except SeqscoreError as exc:
        raise click.ClickException(str(exc)) from exc


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


class _Group(click.Group):
    """Turns our own errors into one clear line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeqscoreError as exc:
            raise click.ClickException(str(exc) or type(exc).__name__) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="seqscore")
def main() -> None:
    """seqscore: SendGrid Engagement Quality scores, self-hosted."""


@main.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8000).")
@click.option("--no-worker", is_flag=True, help="Serve only; leave jobs to `seqscore worker`.")
@data_dir_option
def serve(host: str | None, port: int | None, no_worker: bool, data_dir: Path | None) -> None:
    """Run the API (and, unless --no-worker, the job worker and scheduler)."""
    settings = _settings(data_dir, host=host, port=port, worker=False if no_worker else None)
    from seqscore.server import run

    run(settings)


@main.command()
@data_dir_option
def worker(data_dir: Path | None) -> None:
    """Run only the job worker and scheduler (scale-out: next to `serve --no-worker`)."""
    settings = _settings(data_dir)
    from seqscore.server import configure_logging
    from seqscore.service.worker import Worker

    configure_logging(settings)
    services = _open(settings)
    try:
        Worker(services).run()
    except KeyboardInterrupt:
        pass
    finally:
        services.close()


@main.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="One UTC day (default: the last closed day).")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day of a range (with --to).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day of a range (with --from).")
@click.option("--account", "username", default=None, help="Only this account.")
@click.option("--all-accounts", is_flag=True, help="Every account (the default without --account).")
@click.option("--days-per-pass", type=int, default=14, show_default=True,
              help="Days computed in one aggregation pass.")
@data_dir_option
def compute(day: Any, first: Any, last: Any, username: str | None, all_accounts: bool,
            days_per_pass: int, data_dir: Path | None) -> None:
    """Compute results now (synchronously), e.g. a backfill after an import."""
    import datetime as dt

    from tqdm import tqdm

    from seqscore.service.jobs import compute_results
    from seqscore.service.seq import last_closed_day

    if username and all_accounts:
        raise click.UsageError("--account and --all-accounts exclude each other")
    if day and (first or last):
        raise click.UsageError("--date excludes --from/--to")
    if bool(first) != bool(last):
        raise click.UsageError("--from and --to go together")
    settings = _settings(data_dir)
    services = _open(settings)
    try:
        closed = last_closed_day(services.clock.now(), settings.settle_minutes)
        if first and last:
            start, end = first.date(), last.date()
        else:
            start = end = day.date() if day else closed
        if end > closed:
            raise click.UsageError(f"{end} is not closed yet (last closed day: {closed})")
        if start > end:
            raise click.UsageError("--from is after --to")
        targets = ([services.state.require_account(username)] if username
                   else services.state.list_accounts())
        days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        written = 0
        with tqdm(total=len(days) * len(targets), unit="result", disable=None) as bar:
            for i in range(0, len(days), max(days_per_pass, 1)):
                chunk = days[i : i + days_per_pass]
                results = compute_results(services.events, services.model, targets, chunk,
                                          computed_at=services.clock.now())
                services.state.upsert_results(results)
                written += len(results)
                bar.update(len(chunk) * len(targets))
        _print_json({"results": written, "accounts": len(targets), "from": start, "to": end})
    finally:
        services.close()


@main.group(cls=_Group)
def accounts() -> None:
    """Create and list accounts (parents, subusers, customer accounts)."""


@accounts.command("create")
@click.argument("username")
@click.option("--parent", default=None, help="Username of the parent account.")
@click.option("--kind", type=click.Choice([k.value for k in AccountKind]),
              default=AccountKind.SUBUSER.value, show_default=True,
              help="How a child is addressed with on-behalf-of.")
@click.option("--email", default="", help="Contact address of the account.")
@click.option("--no-open-tracking", is_flag=True,
              help="Open tracking is off (the account gets no score).")
@data_dir_option
def accounts_create(username: str, parent: str | None, kind: str, email: str,
                    no_open_tracking: bool, data_dir: Path | None) -> None:
    """Create an account; prints its user_id and username as JSON."""
    services = _open(_settings(data_dir))
    try:
        parent_account = services.state.require_account(parent) if parent else None
        account = services.accounts.create_account(
            username, parent=parent_account, kind=AccountKind(kind), email=email,
            open_tracking=not no_open_tracking)
        _print_json({"user_id": account.user_id, "username": account.username,
                     "parent": parent, "kind": account.kind.value})
    finally:
        services.close()


@accounts.command("list")
@data_dir_option
def accounts_list(data_dir: Path | None) -> None:
    """List every account as JSON."""
    services = _open(_settings(data_dir))
    try:
        by_id = {a.user_id: a for a in services.state.list_accounts()}
        _print_json([
            {"user_id": a.user_id, "username": a.username, "email": a.email,
             "parent": by_id[a.parent_id].username if a.parent_id in by_id else None,
             "kind": a.kind.value, "open_tracking": a.open_tracking, "disabled": a.disabled}
            for a in by_id.values()
        ])
    finally:
        services.close()


@main.group(cls=_Group)
def keys() -> None:
    """Create and revoke API keys."""


@keys.command("create")
@click.argument("username")
@click.option("--name", default="seqscore", show_default=True, help="A label for the key.")
@click.option("--scopes", default=None,
              help="Comma-separated scopes (default: full access), e.g. "
                   "engagement_quality.read,events.write.")
@data_dir_option
def keys_create(username: str, name: str, scopes: str | None, data_dir: Path | None) -> None:
    """Create a key for USERNAME; prints it once, as JSON."""
    services = _open(_settings(data_dir))
    try:
        account = services.state.require_account(username)
        created = services.accounts.create_key(account, name=name, scopes=parse_scopes(scopes))
        _print_json({"api_key": created.api_key, "api_key_id": created.key.key_id,
                     "username": account.username, "name": name,
                     "scopes": created.scope_names()})
    finally:
        services.close()


@keys.command("revoke")
@click.argument("key_id")
@data_dir_option
def keys_revoke(key_id: str, data_dir: Path | None) -> None:
    """Revoke the key whose api_key_id is KEY_ID."""
    services = _open(_settings(data_dir))
    try:
        key = services.accounts.revoke_key(key_id)
        _print_json({"api_key_id": key.key_id, "revoked": True})
    finally:
        services.close()


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the table of docs/settings.md.")
def settings_command(markdown: bool) -> None:
    """Every setting: environment variable, default and meaning."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    for setting in SETTINGS:
        click.echo(f"{setting.env}  (default: {setting.default})\n    {setting.help}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
