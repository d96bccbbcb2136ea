"""Every setting of seqscore, declared once as data.

Each ``Setting`` has a name, a type, a default and help text. The same table
feeds ``Settings.from_env`` (environment variables ``SEQSCORE_<NAME>``), the CLI
options that override them, ``docs/settings.md`` (checked by a test), and
``seqscore settings``. Settings are read once at the top (the CLI) and passed
down; nothing below reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "SEQSCORE_"


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _optional_str(text: str) -> str | None:
    return text or None


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def _rate_limit_store(text: str) -> str:
    if text not in ("auto", "memory", "state"):
        raise ValueError(f"not one of auto, memory, state: {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


MiB = 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    # -- where things live
    Setting("data_dir", Path, Path("seqscore-data"),
            "Folder for the embedded stores, the recipient-hash secret and the session secret."),
    Setting("state_url", _optional_str, None,
            "State store URL (accounts, keys, results, jobs, quarantine). Default: SQLite file "
            "`<data_dir>/state.sqlite3`. PostgreSQL: `postgresql+psycopg://user@host/db`."),
    Setting("state_connect_timeout_seconds", int, 5,
            "PostgreSQL state store: how long opening a connection may take before the "
            "request fails with 503 (libpq `connect_timeout`; one in the URL wins). Bounds "
            "a server that accepts connections but never answers."),
    Setting("events_url", _optional_str, None,
            "Event store URL. Default: DuckDB file `<data_dir>/events.duckdb`. Scale-out: a "
            "Parquet lake, `parquet:///shared/folder` or an object store such as "
            "`s3://bucket/prefix` (docs/scale-out.md)."),
    # -- the server
    Setting("host", str, "127.0.0.1", "Address `seqscore serve` listens on."),
    Setting("port", int, 8000, "Port `seqscore serve` listens on."),
    Setting("log_level", str, "info", "Log level: debug, info, warning, error."),
    Setting("http_max_header_bytes", int, 32 * 1024,
            "Largest request line plus headers accepted, in bytes; a larger request gets 431 "
            "and its connection is closed."),
    Setting("http_header_timeout_seconds", float, 10.0,
            "A request's line and headers must arrive within this many seconds of its first "
            "byte (a new connection's first request: of connecting); a slower sender is "
            "disconnected."),
    Setting("http_body_timeout_seconds", float, 60.0,
            "A request's body must arrive in full within this many seconds of its headers; a "
            "slower sender gets 408 and is disconnected."),
    Setting("http_keep_alive_seconds", int, 5,
            "An idle keep-alive connection is closed after this many seconds."),
    Setting("http_max_connections", int, 1000,
            "Connections (and requests in progress) served at once by one `seqscore serve`; "
            "beyond them a request gets 503 and its connection is closed. 0: no limit."),
    # -- time
    Setting("now", _optional_str, None,
            "Clock override for tests and demos: an ISO-8601 instant (or a date, meaning "
            "12:00 UTC) at which the clock stands still. Unset: the system clock."),
    Setting("settle_minutes", int, 60,
            "Minutes after the end of a UTC day before the day is closed and can be scored."),
    # -- API limits
    Setting("rate_limit_per_minute", int, 600,
            "Requests per minute allowed per API key and endpoint (SendGrid's X-RateLimit-*)."),
    Setting("rate_limit_store", _rate_limit_store, "auto",
            "Where requests are counted: `memory` (per process), `state` (in the state store, "
            "one UPSERT per request: the limit holds across every API process), or `auto`: "
            "`state` when the state store is PostgreSQL, else `memory`."),
    Setting("page_limit_max", int, 1000,
            "Largest `limit` accepted by /v3/engagementquality/subusers/scores (SendGrid: 1000)."),
    Setting("history_days", int, 90,
            "How many days back /v3 answers (SendGrid: 90). Our own API reads further."),
    Setting("auth_cache_seconds", float, 5.0,
            "How long a verified API key is trusted without re-reading the state store. A "
            "revocation made through this process takes effect at once; one made through "
            "another process within this many seconds."),
    Setting("answer_cache_mb", int, 64,
            "MiB of serialised /v3 answers kept per API process, of the newest results "
            "only (a write of results or accounts empties it). 0: no cache."),
    Setting("max_body_bytes", int, 8 * MiB,
            "Largest request body accepted (413 above it). SendGrid batches are under 1 MiB."),
    # -- ingest
    Setting("raw_cap_bytes", int, 4096,
            "Largest `raw` column of a stored event: UTF-8 bytes of its other fields (custom "
            "args...) as JSON; fields that do not fit are left out. 0 keeps none."),
    Setting("webhook_max_age_seconds", int, 600,
            "Replay window of signed webhooks: the `X-Twilio-Email-Event-Webhook-Timestamp` "
            "must be within this many seconds of now. 0: any age."),
    Setting("batch_keys_retention_days", int, 7,
            "Days a stored batch is remembered by its digest, so that a retried batch is "
            "recognised at write time and not stored again (SendGrid retries for 24 hours)."),
    Setting("ingest_processes", _optional_int, None,
            "Worker processes that parse webhook bodies of 64 KiB or more (and import "
            "chunks), so that every core parses; 0: in the process itself. Unset: one per "
            "core on a machine with more than one."),
    Setting("events_compact_minutes", int, 60,
            "How often the scheduler removes copies of events posted again in a different "
            "batch (among the days that received events since its last pass). 0: never."),
    # -- jobs
    Setting("worker", _parse_bool, True,
            "Run the job worker and scheduler inside `seqscore serve`."),
    Setting("worker_batch_size", int, 10_000,
            "Jobs a worker claims and computes at once, in one aggregation pass. A pass "
            "reads 90 days of facts whatever the number of accounts, so the nightly jobs "
            "of 10,000 accounts in one batch cost about what one job does; lower it to "
            "share a night's jobs among several workers."),
    Setting("compute_facts_per_pass", int, 2_500_000,
            "A computation of more than 3 days at once (a backfill: `seqscore compute`, or "
            "a worker batch) counts its accounts in passes holding about this many "
            "recipient-day facts each (DuckDB event store), the next pass counted while "
            "the current one is scored. Larger passes spill to disk under the events' "
            "memory limit: at 50M events, 60 days and 10,000 accounts one pass took 50 s "
            "to count, passes of 2.5M 28 s in all. 0: one pass."),
    Setting("worker_poll_seconds", float, 1.0, "How often an idle worker looks for jobs."),
    Setting("job_max_attempts", int, 8,
            "Attempts before a failing job is parked as `failed` (reported, never deleted)."),
    Setting("job_lease_seconds", int, 600,
            "A running job not finished after this long is taken over (its worker died)."),
    # -- scoring and compute
    Setting("model", _optional_path, None,
            "A TOML file overriding the default scoring model (docs/scoring.md). Unset: v1."),
    Setting("events_memory_limit", str, "1GB", "DuckDB memory limit for the event store."),
    Setting("events_threads", int, 0, "DuckDB threads for the event store (0: one per core)."),
    Setting("events_wal_mb", int, 128,
            "The event store's write-ahead log is checkpointed into its file beyond this many "
            "MB. Larger: appends cost less CPU, a restart after a crash replays more."),
    Setting("events_compact_grace_minutes", int, 360,
            "Parquet lake: files replaced by compaction are deleted this long after, so that "
            "readers that listed them first finish. Keep it above the longest computation."),
    Setting("events_compact_target_mb", int, 256,
            "Parquet lake: compaction writes files of about this size, and merges files "
            "smaller than half of it."),
    Setting("spark_master", str, "local[*]",
            "Spark master of `seqscore compute --engine spark` (e.g. `spark://host:7077`, "
            "`yarn`, `k8s://...`); `local[N]` runs Spark inside the command on N cores."),
    # -- retention
    Setting("results_retention_days", int, 400,
            "Days of results kept (our own API reads them; /v3 answers 90)."),
    Setting("events_retention_days", int, 120,
            "Days of events kept: the scoring model's longest window (90) plus a margin "
            "for late events. Must be more than that window, else nothing starts."),
    Setting("quarantine_retention_days", int, 30, "Days rejected events are kept for review."),
)

_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("seqscore-data")
    state_url: str | None = None
    state_connect_timeout_seconds: int = 5
    events_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    http_max_header_bytes: int = 32 * 1024
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 60.0
    http_keep_alive_seconds: int = 5
    http_max_connections: int = 1000
    now: str | None = None
    settle_minutes: int = 60
    rate_limit_per_minute: int = 600
    rate_limit_store: str = "auto"
    page_limit_max: int = 1000
    answer_cache_mb: int = 64
    history_days: int = 90
    auth_cache_seconds: float = 5.0
    max_body_bytes: int = 8 * MiB
    raw_cap_bytes: int = 4096
    webhook_max_age_seconds: int = 600
    batch_keys_retention_days: int = 7
    ingest_processes: int | None = None
    events_compact_minutes: int = 60
    worker: bool = True
    worker_batch_size: int = 10_000
    compute_facts_per_pass: int = 2_500_000
    worker_poll_seconds: float = 1.0
    job_max_attempts: int = 8
    job_lease_seconds: int = 600
    model: Path | None = None
    events_memory_limit: str = "1GB"
    events_threads: int = 0
    events_wal_mb: int = 128
    events_compact_grace_minutes: int = 360
    events_compact_target_mb: int = 256
    spark_master: str = "local[*]"
    results_retention_days: int = 400
    events_retention_days: int = 120
    quarantine_retention_days: int = 30

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults, then ``SEQSCORE_*`` variables, then explicit (non-None) overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            if raw is not None:
                try:
                    values[setting.name] = setting.parse(raw)
                except ValueError as exc:
                    raise ValueError(f"{setting.env}: {exc}") from exc
        for name, value in overrides.items():
            if name not in _BY_NAME:
                raise TypeError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def resolved_state_url(self) -> str:
        return self.state_url or f"sqlite:///{(self.data_dir / 'state.sqlite3').resolve()}"

    @property
    def resolved_events_url(self) -> str:
        return self.events_url or f"duckdb:///{(self.data_dir / 'events.duckdb').resolve()}"


def settings_markdown() -> str:
    """The settings table of docs/settings.md (kept in sync by a test)."""
    lines = [
        "| environment variable | default | meaning |",
        "|---|---|---|",
    ]
    for s in SETTINGS:
        default = "(unset)" if s.default is None else f"`{s.default}`"
        lines.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"
