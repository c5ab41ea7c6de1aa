"""a member's teams from the index alone

`ix_team_member_person_id` carries `team_id` (INCLUDE): dispatch's nearest
teams query looks up the teams of the members its KNN scan found, and at a
million teams each such lookup read a `team_member` heap page that was
rarely in cache; with the team in the index it is an index-only scan
(docs/benchmarks.md, "Nearest team at scale").

Revision ID: 5d7c9e1b2a40
Revises: 94af9dfae36b
Create Date: 2026-12-02 11:40:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5d7c9e1b2a40"
down_revision: str | None = "94af9dfae36b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_team_member_person_id", table_name="team_member")
    op.create_index(
        "ix_team_member_person_id",
        "team_member",
        ["person_id"],
        unique=False,
        postgresql_include=["team_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_team_member_person_id", table_name="team_member")
    op.create_index("ix_team_member_person_id", "team_member", ["person_id"], unique=False)
