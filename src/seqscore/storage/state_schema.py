"""Tables of the state store, as SQLAlchemy Core metadata.

The migrations in ``migrations/versions`` create exactly these; a test checks
that the migrated database and this metadata agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False, server_default=""),
    sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("accounts.user_id"), index=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="subuser"),
    sa.Column("open_tracking", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("webhook_public_key", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(22), primary_key=True),
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.user_id"), nullable=False,
              index=True),
    sa.Column("name", sa.String(255), nullable=False),
    # SHA-256 of the whole key: the secret has 256 bits of entropy, so a slow KDF adds nothing.
    sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # space-separated
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.user_id"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("score", sa.SmallInteger),
    sa.Column("engagement_recency", sa.SmallInteger),
    sa.Column("open_rate", sa.SmallInteger),
    sa.Column("bounce_classification", sa.SmallInteger),
    sa.Column("bounce_rate", sa.SmallInteger),
    sa.Column("spam_rate", sa.SmallInteger),
    sa.Column("eligibility", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stale", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("counts_json", sa.Text, nullable=False, server_default="{}"),
    # each rate as [numerator, denominator]: exact, never a float
    sa.Column("rates_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("explanation_json", sa.Text, nullable=False, server_default="{}"),
    sa.Index("ix_results_day", "day"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.user_id"), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # at most one pending job per account and day; a running one may have a pending
    # successor (late events), which is not claimed until the running one ends
    sa.Index(
        "uq_jobs_pending_account_day", "account_id", "day", unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    ),
    sa.Index("ix_jobs_state_not_before", "state", "not_before"),
)

#: Monotonic counters, e.g. ``results_generation`` (bumped by every results write,
#: so API processes can cache serialized answers and know when they went stale).
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

#: Rejected webhook events, kept whole (spec/events.md) but sealed: ``payload`` is the
#: event's original JSON encrypted with the installation's quarantine key
#: (``seqscore.ingest.sealing``); ``payload_digest`` is a keyed digest of the plaintext,
#: so a retried batch stores each reject once.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("quarantine_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.user_id"), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("item_index", sa.Integer, nullable=False),  # position in the posted array
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("payload_digest", sa.LargeBinary(16), nullable=False),
    sa.UniqueConstraint("account_id", "payload_digest"),
    sa.Index("ix_quarantine_received_at", "received_at"),
)

#: Requests counted per (API key, endpoint, one-minute window) when the rate limit is
#: shared by several API processes (``seqscore.service.ratelimit.SharedRateLimiter``).
#: ``window_start``: Unix seconds, a multiple of 60. On PostgreSQL the table is
#: UNLOGGED: counters need no crash safety, and skipping the WAL makes the per-request
#: UPSERT cheaper (migration 0003).
rate_counts = sa.Table(
    "rate_counts",
    metadata,
    sa.Column("key_id", sa.String(22), primary_key=True),
    sa.Column("endpoint", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)
