"""the open calls of an area, by grid (the live map)

GET /dispatch/map reads the open calls of an area (`status` among the open
states, `grid_id` within the area). Without an index that is a scan of
every call ever made, which grows with the history while the open calls
stay a handful: a partial index of the open calls by grid keeps the map's
call part flat. Its predicate is the same literal list the query writes
(`OPEN_CALL`), so the planner proves it applies. Nothing changes meaning.

Revision ID: 23169d2083ba
Revises: c7ee2895326d
Create Date: 2026-12-02 16:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "23169d2083ba"
down_revision: str | None = "c7ee2895326d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('searching', 'offered', 'escalated', 'accepted', 'en_route', 'on_site')"


def upgrade() -> None:
    op.create_index(
        "ix_call_open_grid_id",
        "call",
        ["grid_id"],
        unique=False,
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_call_open_grid_id", table_name="call", postgresql_where=sa.text(OPEN))
