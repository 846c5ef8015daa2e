"""tasks and price history

Revision ID: 0001
Revises:
Create Date: 2026-11-22 09:55:41.039691

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("appid", sa.Integer(), nullable=False),
        sa.Column("market_hash_name", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "conditions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("check_interval", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'active'"), nullable=False
        ),
        sa.Column(
            "next_check",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("consecutive_errors", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("recovery_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_token", sa.UUID(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('lowest_price', 'new_listings', 'order_book')",
            name=op.f("ck_tasks_kind_known"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'stalled', 'failed')",
            name=op.f("ck_tasks_status_known"),
        ),
        sa.CheckConstraint(
            "(lease_token IS NULL) = (lease_expires_at IS NULL)",
            name=op.f("ck_tasks_lease_complete"),
        ),
        sa.CheckConstraint("appid > 0", name=op.f("ck_tasks_appid_positive")),
        sa.CheckConstraint(
            "char_length(market_hash_name) > 0", name=op.f("ck_tasks_name_not_empty")
        ),
        sa.CheckConstraint("char_length(owner) > 0", name=op.f("ck_tasks_owner_not_empty")),
        sa.CheckConstraint("check_interval > 0", name=op.f("ck_tasks_interval_positive")),
        sa.CheckConstraint("consecutive_errors >= 0", name=op.f("ck_tasks_errors_not_negative")),
        sa.CheckConstraint("currency > 0", name=op.f("ck_tasks_currency_positive")),
        sa.CheckConstraint("recovery_attempts >= 0", name=op.f("ck_tasks_recovery_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("owner", "appid", "market_hash_name", "kind", name="uq_tasks_watch"),
    )
    op.create_index(
        "ix_tasks_due",
        "tasks",
        ["next_check"],
        unique=False,
        postgresql_where=sa.text("is_active AND status = 'active' AND lease_token IS NULL"),
    )
    op.create_index(
        "ix_tasks_lease_expiry",
        "tasks",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("lease_token IS NOT NULL"),
    )
    op.create_index("ix_tasks_owner", "tasks", ["owner"], unique=False)
    op.create_index(
        "ix_tasks_stalled",
        "tasks",
        ["next_check"],
        unique=False,
        postgresql_where=sa.text("is_active AND status = 'stalled'"),
    )
    op.create_table(
        "price_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("lease_token", sa.UUID(), nullable=False),
        sa.Column(
            "checked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("currency", sa.SmallInteger(), nullable=False),
        sa.Column("lowest_price", sa.BigInteger(), nullable=True),
        sa.Column("median_price", sa.BigInteger(), nullable=True),
        sa.Column("volume", sa.Integer(), nullable=True),
        sa.Column("highest_buy", sa.BigInteger(), nullable=True),
        sa.Column("lowest_sell", sa.BigInteger(), nullable=True),
        sa.Column("buy_count", sa.Integer(), nullable=True),
        sa.Column("sell_count", sa.Integer(), nullable=True),
        sa.Column("listings", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_price_history_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history")),
        sa.UniqueConstraint("task_id", "lease_token", name="uq_price_history_check"),
    )
    op.create_index(
        "ix_price_history_task_time", "price_history", ["task_id", "checked_at"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_price_history_task_time", table_name="price_history")
    op.drop_table("price_history")
    op.drop_index(
        "ix_tasks_stalled",
        table_name="tasks",
        postgresql_where=sa.text("is_active AND status = 'stalled'"),
    )
    op.drop_index("ix_tasks_owner", table_name="tasks")
    op.drop_index(
        "ix_tasks_lease_expiry",
        table_name="tasks",
        postgresql_where=sa.text("lease_token IS NOT NULL"),
    )
    op.drop_index(
        "ix_tasks_due",
        table_name="tasks",
        postgresql_where=sa.text("is_active AND status = 'active' AND lease_token IS NULL"),
    )
    op.drop_table("tasks")
