"""hourly price roll-ups kept after the raw checks go, and the roll-up watermark

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 00:20:00

New tables only: nothing existing is locked beyond the catalogue. The watermark starts at the
hour of the oldest check, so the first maintenance passes roll up what is already there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "price_rollups",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.SmallInteger(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("first", sa.BigInteger(), nullable=True),
        sa.Column("min", sa.BigInteger(), nullable=True),
        sa.Column("max", sa.BigInteger(), nullable=True),
        sa.Column("last", sa.BigInteger(), nullable=True),
        sa.Column("volume", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_price_rollups_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "hour", name=op.f("pk_price_rollups")),
    )
    op.create_index("ix_price_rollups_hour", "price_rollups", ["hour"], unique=False)
    op.create_table(
        "history_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_history_state_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_state")),
    )
    op.execute(
        "INSERT INTO history_state (id, rolled_until) "
        "SELECT 1, coalesce(date_trunc('hour', min(checked_at)), date_trunc('hour', now())) "
        "FROM price_history"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("history_state")
    op.drop_index("ix_price_rollups_hour", table_name="price_rollups")
    op.drop_table("price_rollups")
