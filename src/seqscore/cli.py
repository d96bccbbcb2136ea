"""The ``seqscore`` command line. Reads settings once and passes them down."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from seqscore import __version__
from seqscore.errors import SeqscoreError
from seqscore.service.accounts import parse_scopes
from seqscore.service.services import Services
from seqscore.settings import SETTINGS, Settings, settings_markdown
from seqscore.storage.events import EventStore
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
    from seqscore.server import run_worker

    run_worker(settings)


@main.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="One UTC day (default: the last closed day).")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day of a range (with --to).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day of a range (with --from).")
@click.option("--account", "username", default=None, help="Only this account.")
@click.option("--all-accounts", is_flag=True, help="Every account (the default without --account).")
@click.option("--days-per-pass", type=click.IntRange(min=1), default=60, show_default=True,
              help="Days computed in one aggregation run; a run of more than 3 days is "
                   "counted in passes of accounts (SEQSCORE_COMPUTE_FACTS_PER_PASS), the "
                   "next pass counted while the current one is scored. A pass keeps "
                   "accounts x days rows of counts in memory, about 400 bytes each.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
              show_default=True,
              help="spark: run the aggregation with Apache Spark over a Parquet event lake.")
@click.option("--master", default=None,
              help="With --engine spark: the Spark master (default $SEQSCORE_SPARK_MASTER, "
                   "else local[*]), e.g. local[2], spark://host:7077, yarn.")
@click.option("--conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
              help="With --engine spark: a Spark setting, e.g. spark.driver.memory=4g "
                   "(repeatable).")
@data_dir_option
def compute(day: Any, first: Any, last: Any, username: str | None, all_accounts: bool,
            days_per_pass: int, engine: str, master: str | None, spark_conf: tuple[str, ...],
            data_dir: Path | None) -> None:
    """Compute results now (synchronously), e.g. a backfill after an import.

    With --engine spark the same aggregation runs on Spark (local mode or a
    cluster) over the Parquet event lake; results are scored and written to the
    state store exactly as the workers do.
    """
    import datetime as dt
    from contextlib import ExitStack

    from tqdm import tqdm

    from seqscore.service.results import iter_results
    from seqscore.service.seq import last_closed_day

    if username and all_accounts:
        raise click.UsageError("--account and --all-accounts exclude each other")
    if day and (first or last):
        raise click.UsageError("--date excludes --from/--to")
    if bool(first) != bool(last):
        raise click.UsageError("--from and --to go together")
    if engine != "spark" and (master or spark_conf):
        raise click.UsageError("--master and --conf go with --engine spark")
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
        with ExitStack() as stack:
            events = services.events
            if engine == "spark":
                events = stack.enter_context(_spark_events(
                    events, master or settings.spark_master, _conf_pairs(spark_conf)))
            bar = stack.enter_context(
                tqdm(total=len(days) * len(targets), unit="result", disable=None))
            for results in iter_results(events, services.model, targets, days,
                                        computed_at=services.clock.now(),
                                        days_per_pass=days_per_pass,
                                        facts_per_pass=settings.compute_facts_per_pass):
                services.state.upsert_results(results)
                written += len(results)
                bar.update(len(results))
        _print_json({"results": written, "accounts": len(targets), "from": start, "to": end,
                     "engine": engine})
    finally:
        services.close()


def _conf_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--conf wants KEY=VALUE, not {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


@contextmanager
def _spark_events(events: EventStore, master: str, conf: dict[str, str]) -> Iterator[EventStore]:
    """The lake ``events``, read by a Spark session on ``master`` (stopped at the end
    unless it was running before)."""
    from seqscore.storage.parquet_events import ParquetEventStore

    if not isinstance(events, ParquetEventStore):
        raise click.UsageError(
            "--engine spark reads a Parquet event lake: set SEQSCORE_EVENTS_URL to "
            "parquet:///path (or s3://...); `seqscore migrate` moves a DuckDB store there")
    try:
        from pyspark.sql import SparkSession

        from seqscore.compute.spark import SparkLakeReader, spark_session
    except ImportError as exc:
        raise click.ClickException(
            f"--engine spark needs PySpark ({exc}): pip install 'seqscore[spark]' "
            "(and Java 17 or 21)") from exc
    running = SparkSession.getActiveSession()
    session = spark_session(master, conf)
    try:
        yield events.with_reader(SparkLakeReader(session))
    finally:
        if running is None:
            session.stop()


DEMO_DATA_DIR = Path("seqscore-demo")


@main.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8000).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder (default: $SEQSCORE_DATA_DIR, else ./seqscore-demo).")
@click.option("--seed", type=int, default=0, show_default=True, help="Generator seed.")
@click.option("--accounts", "n_accounts", type=int, default=40, show_default=True,
              help="Accounts in all (a parent, subusers and customer accounts).")
@click.option("--days", type=int, default=120, show_default=True, help="Days of events.")
@click.option("--volume-scale", type=float, default=1.0, show_default=True,
              help="Multiply every account's daily volume.")
@click.option("--no-serve", is_flag=True, help="Load the demo and exit.")
def demo(host: str | None, port: int | None, data_dir: Path | None, seed: int,
         n_accounts: int, days: int, volume_scale: float, no_serve: bool) -> None:
    """Generate realistic demo senders, ingest and score them, then serve.

    Reuses the demo already loaded in the data folder; delete the folder to start over.
    """
    import os
    import time

    from seqscore.service.demo_data import demo_key, find_demo_parent, load_demo

    if data_dir is None and "SEQSCORE_DATA_DIR" not in os.environ:
        data_dir = DEMO_DATA_DIR
    settings = _settings(data_dir, host=host, port=port)
    services = _open(settings)
    try:
        from seqscore.demo import default_plans

        parent_name = default_plans(seed, accounts=n_accounts)[0].username
        parent = find_demo_parent(services, parent_name)
        if parent is None:
            click.echo(f"Generating {n_accounts} accounts x {days} days of events "
                       f"into {settings.data_dir} ...", err=True)
            last = [0.0]

            def progress(stage: str, done: int, total: int) -> None:
                if time.monotonic() - last[0] > 2 or (total and done >= total):
                    last[0] = time.monotonic()
                    of = f"/{total:,}" if total else ""
                    click.echo(f"  {stage}: {done:,}{of}", err=True)

            loaded = load_demo(services, seed=seed, accounts=n_accounts, days=days,
                               volume_scale=volume_scale, progress=progress)
            parent = loaded.parent
            click.echo(f"Loaded {loaded.events:,} events and {loaded.results:,} results "
                       f"for {loaded.accounts} accounts in {loaded.seconds:.0f} s.", err=True)
            for phase, seconds in loaded.phases.items():
                click.echo(f"  phase {phase}: {seconds:.1f} s", err=True)
            click.echo(f"  generator CPU (inside events): {loaded.generate_cpu_s:.1f} s",
                       err=True)
        else:
            click.echo(f"Reusing the demo in {settings.data_dir}.", err=True)
        key = demo_key(services, parent)
    finally:
        services.close()
    _print_demo_banner(settings, parent.username, key.api_key)
    if not no_serve:
        from seqscore.server import run

        run(settings)


def _print_demo_banner(settings: Settings, parent: str, api_key: str) -> None:
    import datetime as dt

    from seqscore.clock import clock_from_setting
    from seqscore.service.seq import last_closed_day

    base = f"http://{settings.host}:{settings.port}"
    day = last_closed_day(clock_from_setting(settings.now).now(), settings.settle_minutes)
    first = day - dt.timedelta(days=6)
    click.echo(f"""
seqscore demo: parent account {parent!r}, API key (shown once):

    export SEQSCORE_API_KEY={api_key}

Dashboard:   {base}/   (log in with the key)
curl:        curl -H "Authorization: Bearer $SEQSCORE_API_KEY" \\
               "{base}/v3/engagementquality/subusers/scores?date={day}"
Python:      pip install sendgrid, then
               import os, sendgrid
               sg = sendgrid.SendGridAPIClient(os.environ["SEQSCORE_API_KEY"], host="{base}")
               print(sg.client.engagementquality.scores.get(
                   query_params={{"from": "{first}", "to": "{day}"}}).body)
""")


@main.command()
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Parquet lake: first day to compact (with --to; default: every day).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Parquet lake: last day to compact.")
@data_dir_option
def compact(first: Any, last: Any, data_dir: Path | None) -> None:
    """Store each event once: remove the copies retried batches left.

    On a Parquet lake it rewrites each day (or the days from --from to --to) into
    a few large files, beside running readers (docs/scale-out.md); run it daily
    for the days SendGrid no longer retries. Prints the copies removed as JSON.
    """
    import datetime as dt

    from seqscore.storage.parquet_events import ParquetEventStore

    if bool(first) != bool(last):
        raise click.UsageError("--from and --to go together")
    services = _open(_settings(data_dir))
    try:
        events = services.events
        if isinstance(events, ParquetEventStore):
            days = None
            if first and last:
                start, end = first.date(), last.date()
                days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
            before = len(events.data_files())
            removed = events.compact(days=days)
            _print_json({"copies_removed": removed, "files_before": before,
                         "files_after": len(events.data_files())})
        else:
            if first or last:
                raise click.UsageError("--from/--to apply to a Parquet lake only")
            _print_json({"copies_removed": events.compact()})
    finally:
        services.close()


@main.command()
@click.option("--to-state", "to_state", required=True, metavar="URL",
              help="The new state store, e.g. postgresql+psycopg://user@host/seqscore.")
@click.option("--to-events", "to_events", required=True, metavar="URL",
              help="The new event store, e.g. parquet:///srv/seqscore/lake or s3://bucket/lake.")
@data_dir_option
def migrate(to_state: str, to_events: str, data_dir: Path | None) -> None:
    """Copy this installation's stores into new ones (e.g. SQLite + DuckDB to
    PostgreSQL + a Parquet lake), ids included; both targets must be empty.

    Stop `seqscore serve` first (it owns the DuckDB file). Then point every
    process at the new URLs and copy the data dir's secret files to each host.
    """
    from tqdm import tqdm

    from seqscore.storage.events import open_event_store
    from seqscore.storage.parquet_events import copy_events
    from seqscore.storage.state import StateStore, copy_state

    settings = _settings(data_dir)
    if to_state == settings.resolved_state_url or to_events == settings.resolved_events_url:
        raise click.UsageError("the targets must differ from the current stores")
    services = _open(settings)
    try:
        target_state = StateStore.open(to_state)
        try:
            tables = copy_state(services.state, target_state)
        finally:
            target_state.close()
        source_events = services.events
        target_events = open_event_store(to_events,
                                         memory_limit=settings.events_memory_limit,
                                         threads=settings.events_threads or None)
        try:
            with tqdm(total=source_events.count(), unit="event", unit_scale=True,
                      disable=None) as bar:
                events = copy_events(source_events, target_events,
                                     progress=lambda n: bar.update(n - bar.n))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            target_events.close()
        secrets = sorted(p.name for p in settings.data_dir.iterdir()
                         if p.is_file() and p.name in _SECRET_FILES)
        _print_json({"state": tables, "events": events,
                     "secrets": [str(settings.data_dir.resolve() / n) for n in secrets],
                     "next": "copy the secret files into the data dir of every process, "
                             "then start them with SEQSCORE_STATE_URL and "
                             "SEQSCORE_EVENTS_URL set to the new stores"})
    finally:
        services.close()


#: Files of the data dir every process of an installation needs (same bytes everywhere).
_SECRET_FILES = ("recipient-key", "quarantine-key", "dashboard-secret")


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


@accounts.command("set-webhook-key")
@click.argument("username")
@click.argument("public_key", required=False)
@click.option("--clear", is_flag=True, help="Stop verifying signatures for the account.")
@data_dir_option
def accounts_set_webhook_key(username: str, public_key: str | None, clear: bool,
                             data_dir: Path | None) -> None:
    """Verify SendGrid's signature on every POST for USERNAME.

    PUBLIC_KEY is the verification key SendGrid shows for the signed Event Webhook
    (base64). From then on an unsigned or wrongly signed POST is refused (403).
    """
    from seqscore.ingest.signature import load_public_key

    if clear == bool(public_key):
        raise click.UsageError("give PUBLIC_KEY, or --clear")
    if public_key:
        load_public_key(public_key)
    services = _open(_settings(data_dir))
    try:
        account = services.state.require_account(username)
        updated = services.state.update_account(
            account.user_id, webhook_public_key=public_key.strip() if public_key else None,
            clear_webhook_key=clear)
        _print_json({"username": updated.username,
                     "webhook_public_key": updated.webhook_public_key})
    finally:
        services.close()


@main.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "username", default=None,
              help="The account the events belong to (importing into the data dir).")
@click.option("--url", default=None,
              help="Post through the running server at URL instead (it owns the event "
                   "store), e.g. http://127.0.0.1:8000; needs --key.")
@click.option("--key", "api_key", default=None, help="With --url: an API key with events.write.")
@click.option("--on-behalf-of", default=None, help="With --url: a child of the key's account.")
@click.option("--processes", type=int, default=None,
              help="Parser processes of a local import (default: $SEQSCORE_INGEST_PROCESSES, "
                   "else one per core; 0: none).")
@click.option("--memory-limit", default="256MB", show_default=True,
              help="The event store's memory limit during a local import (it only appends; "
                   "the server's is SEQSCORE_EVENTS_MEMORY_LIMIT).")
@data_dir_option
def import_command(files: tuple[Path, ...], username: str | None, url: str | None,
                   api_key: str | None, on_behalf_of: str | None, processes: int | None,
                   memory_limit: str, data_dir: Path | None) -> None:
    """Import event files: JSON array, JSON Lines or CSV, each maybe gzip-compressed.

    Safe to re-run (nothing is stored twice). Rejected records go to
    FILE.rejected.jsonl. Prints the counts as JSON.
    """
    import time

    from tqdm import tqdm

    from seqscore.service.importer import RemoteSink, Sink, import_file, local_sink

    if url is None and (api_key or on_behalf_of):
        raise click.UsageError("--key and --on-behalf-of go with --url")
    if url is not None and (not api_key or username):
        raise click.UsageError("--url needs --key (and takes --on-behalf-of, not --account)")
    if url is None and not username:
        raise click.UsageError("give --account USERNAME (or --url and --key)")
    services: Services | None = None
    sink: Sink
    if url is not None:
        sink = RemoteSink(url, api_key or "", on_behalf_of=on_behalf_of)
    else:
        services = _open(_settings(data_dir, ingest_processes=processes,
                                   events_memory_limit=memory_limit))
        try:
            sink = local_sink(services, username or "")
        except BaseException:
            services.close()
            raise
    started = time.monotonic()
    reports = []
    try:
        for path in files:
            with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=path.name, disable=None) as bar:
                def progress(done: int, events: int, bar: Any = bar) -> None:
                    rate = events / max(bar.format_dict["elapsed"], 1e-9)
                    bar.set_postfix_str(f"{events:,} events, {rate:,.0f} events/s",
                                        refresh=False)
                    bar.update(done - bar.n)

                reports.append(import_file(path, sink, progress=progress))
    finally:
        sink.close()
        if services is not None:
            services.close()
    seconds = time.monotonic() - started
    records = sum(r.records for r in reports)
    _print_json({
        "files": [r.as_json() for r in reports],
        "accepted": sum(r.accepted for r in reports),
        "rejected": sum(r.rejected for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "seconds": round(seconds, 3), "events_per_second": round(records / max(seconds, 1e-9)),
    })
    if any(r.error for r in reports):
        raise click.ClickException("; ".join(r.error for r in reports if r.error))


@main.group(cls=_Group)
def quarantine() -> None:
    """Rejected webhook events, kept (encrypted) for review."""


@quarantine.command("list")
@click.option("--account", "username", default=None, help="Only this account's.")
@click.option("--limit", type=int, default=50, show_default=True)
@data_dir_option
def quarantine_list(username: str | None, limit: int, data_dir: Path | None) -> None:
    """The newest rejected events, without their contents, as JSON."""
    services = _open(_settings(data_dir))
    try:
        names = {a.user_id: a.username for a in services.state.list_accounts()}
        account_id = services.state.require_account(username).user_id if username else None
        _print_json([{"id": q.quarantine_id, "account": names.get(q.account_id),
                      "received_at": q.received_at, "index": q.index, "reason": q.reason}
                     for q in services.state.list_quarantined(account_id=account_id,
                                                              limit=limit)])
    finally:
        services.close()


@quarantine.command("show")
@click.argument("ids", nargs=-1, type=int, required=True)
@data_dir_option
def quarantine_show(ids: tuple[int, ...], data_dir: Path | None) -> None:
    """Rejected events IDS decrypted, each whole as received, as JSON."""
    from seqscore.service.ingest import open_quarantined, quarantine_sealer

    settings = _settings(data_dir)
    services = _open(settings)
    try:
        sealer = quarantine_sealer(settings)
        shown = []
        for quarantine_id in ids:
            kept, raw = open_quarantined(services.state, sealer, quarantine_id)
            try:
                event: Any = json.loads(raw)
            except ValueError:
                event = raw.decode("utf-8", "replace")
            account = services.state.get_account(kept.account_id)
            shown.append({"id": kept.quarantine_id,
                          "account": account.username if account else kept.account_id,
                          "received_at": kept.received_at, "index": kept.index,
                          "reason": kept.reason, "event": event})
        _print_json(shown)
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
