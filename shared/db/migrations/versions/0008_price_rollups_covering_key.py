"""price_rollups' primary key covers the whole row: a year's query reads the index alone

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 04:00:00

The upkeep writes every watch's roll-up for an hour together, so one watch's year of hours
(8,760 rows) lies on as many table pages: at 5,000 watches a one-year query read thousands of
pages. With every column in the key's index, the query reads one watch's hours side by side in
the index (an index-only scan; autovacuum keeps the visibility map that needs).

The new index is built ``CONCURRENTLY`` (writes go on), then takes the key's place in one short
transaction (``lock_timeout`` 5 s). Only the upkeep and the history queries touch this table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "currency, checks, first, min, max, last, volume"


def upgrade() -> None:
    """Upgrade schema."""
    with op.get_context().autocommit_block():
        # A build that failed before leaves an invalid index of this name behind.
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ux_price_rollups_covering")
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY ux_price_rollups_covering "
            f"ON price_rollups (task_id, hour) INCLUDE ({COLUMNS})"
        )
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(
        "ALTER TABLE price_rollups DROP CONSTRAINT pk_price_rollups, "
        "ADD CONSTRAINT pk_price_rollups PRIMARY KEY USING INDEX ux_price_rollups_covering"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(
        "ALTER TABLE price_rollups DROP CONSTRAINT pk_price_rollups, "
        "ADD CONSTRAINT pk_price_rollups PRIMARY KEY (task_id, hour)"
    )
