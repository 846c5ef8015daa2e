"""the event outbox: events written with the check that raised them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 06:20:00

A new table only. Results still queued on ``results`` when this version starts are judged by no
one (the fetcher judges now): let the old publisher drain that queue first, as README's
"Upgrading to the event outbox" says.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("event_outbox")
