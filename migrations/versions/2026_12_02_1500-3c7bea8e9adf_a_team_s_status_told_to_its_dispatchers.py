"""a team's status, told to its dispatchers

The team rule (TEAM_MIN_MEMBERS, TEAM_MIN_FULL_TIME: docs/organisation.md)
is computed when asked, never stored, so the schema only learns to tell a
team's dispatchers that it fell below the rule: a notification of kind
`team_incomplete`, which names the team it is about (`team_id`, gone with
the team) and nothing personal.

Revision ID: 3c7bea8e9adf
Revises: d06909efeaec
Create Date: 2026-12-02 15:00:13.391762+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c7bea8e9adf"
down_revision: str | None = "d06909efeaec"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = "('offer', 'offer_closed', 'call_status', 'escalation')"
KINDS_AFTER = "('offer', 'offer_closed', 'call_status', 'escalation', 'team_incomplete')"


def upgrade() -> None:
    op.add_column("notification", sa.Column("team_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_notification_team_id_team"),
        "notification",
        "team",
        ["team_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "ix_notification_team_id",
        "notification",
        ["team_id"],
        unique=False,
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_kind"), "notification", f"kind IN {KINDS_AFTER}"
    )


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE kind = 'team_incomplete'")
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_kind"), "notification", f"kind IN {KINDS_BEFORE}"
    )
    op.drop_index(
        "ix_notification_team_id",
        table_name="notification",
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("fk_notification_team_id_team"), "notification", type_="foreignkey")
    op.drop_column("notification", "team_id")
