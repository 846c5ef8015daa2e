"""order-book depth kept with each snapshot

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 23:55:00

Adding a nullable column without a default only changes the catalogue: no table rewrite, and the
ACCESS EXCLUSIVE lock lasts milliseconds (``lock_timeout`` keeps a busy table from queueing
the checks behind it for longer).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column(
        "price_history", sa.Column("book", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("price_history", "book")
