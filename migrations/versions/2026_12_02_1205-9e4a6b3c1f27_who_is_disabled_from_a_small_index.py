"""who is disabled, from a small index

The availability rule (`app.duty.availability`) asks for each member the
dispatch KNN scan reads whether that person is disabled; it read the
person's primary-key entry and heap row, pages that at a million teams are
rarely in cache. A partial index of the disabled people answers the same
question from a few pages that stay in memory (docs/benchmarks.md,
"Nearest team at scale").

Revision ID: 9e4a6b3c1f27
Revises: 5d7c9e1b2a40
Create Date: 2026-12-02 12:05:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9e4a6b3c1f27"
down_revision: str | None = "5d7c9e1b2a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_person_disabled",
        "person",
        ["id"],
        unique=False,
        postgresql_where=sa.text("disabled_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_person_disabled",
        table_name="person",
        postgresql_where=sa.text("disabled_at IS NOT NULL"),
    )
