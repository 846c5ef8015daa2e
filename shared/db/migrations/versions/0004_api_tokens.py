"""api tokens; an owner's watches by id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 17:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("char_length(owner) > 0", name=op.f("ck_api_tokens_owner_not_empty")),
        sa.CheckConstraint("char_length(secret_hash) = 64", name=op.f("ck_api_tokens_hash_sha256")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index("ix_api_tokens_owner", "api_tokens", ["owner"], unique=False)
    op.create_index("ix_tasks_owner_id", "tasks", ["owner", "id"], unique=False)
    op.drop_index("ix_tasks_owner", table_name="tasks")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index("ix_tasks_owner", "tasks", ["owner"], unique=False)
    op.drop_index("ix_tasks_owner_id", table_name="tasks")
    op.drop_index("ix_api_tokens_owner", table_name="api_tokens")
    op.drop_table("api_tokens")
