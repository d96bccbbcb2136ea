"""rate-limit counters shared by API processes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # UNLOGGED on PostgreSQL: counters of the current minute need no crash safety,
    # and skipping the write-ahead log makes the per-request UPSERT cheaper.
    prefixes = ['UNLOGGED'] if op.get_bind().dialect.name == 'postgresql' else []
    op.create_table('rate_counts',
    sa.Column('key_id', sa.String(length=22), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key_id', 'endpoint', 'window_start', name=op.f('pk_rate_counts')),
    prefixes=prefixes,
    )


def downgrade() -> None:
    op.drop_table('rate_counts')
