"""condition state and seen listings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:15:59.094140

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "seen_listings",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=False),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_seen_listings_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "listing_id", name=op.f("pk_seen_listings")),
    )
    op.create_index("ix_seen_listings_seen_at", "seen_listings", ["seen_at"], unique=False)
    op.add_column(
        "tasks",
        sa.Column("condition_state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("tasks", "condition_state")
    op.drop_index("ix_seen_listings_seen_at", table_name="seen_listings")
    op.drop_table("seen_listings")
