"""activities as the organisation keeps them

An activity now says where it came from (`source`: logged by the member, or
a resolved call), how long it took, what the member noted, which paired
household it served and whether the call behind it was disputed; its kind is
one of the "five ones" or `event` (docs/organisation.md). Activities that
resolved calls wrote before this (kind `call`) take the call's category,
`hardship` for `urgent` or none, the call's team and the time it was resolved.

Revision ID: d06909efeaec
Revises: 9e4a6b3c1f27
Create Date: 2026-12-02 14:48:09.204011+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d06909efeaec"
down_revision: str | None = "9e4a6b3c1f27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "activity",
        sa.Column(
            "source", sa.String(length=8), server_default=sa.text("'logged'"), nullable=False
        ),
    )
    op.add_column(
        "activity",
        sa.Column("duration_min", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "activity", sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
    )
    op.add_column("activity", sa.Column("household_id", sa.Uuid(), nullable=True))
    op.add_column(
        "activity",
        sa.Column("disputed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "activity",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute(
        """
        UPDATE activity a
           SET source = 'call',
               kind = CASE WHEN c.category IN ('visit', 'affairs', 'mediation', 'hardship',
                                               'safety')
                           THEN c.category ELSE 'hardship' END,
               team_id = coalesce(a.team_id, c.team_id),
               at = coalesce(c.closed_at, a.at)
          FROM call c
         WHERE c.id = a.call_id
        """
    )
    op.alter_column("activity", "team_id", existing_type=sa.UUID(), nullable=False)
    op.alter_column(
        "activity",
        "kind",
        existing_type=sa.VARCHAR(length=32),
        type_=sa.String(length=16),
        existing_nullable=False,
    )
    op.alter_column(
        "activity",
        "at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        server_default=None,
        existing_nullable=False,
    )
    op.create_index(op.f("ix_activity_household_id"), "activity", ["household_id"], unique=False)
    op.create_index("ix_activity_team_id_at", "activity", ["team_id", "at"], unique=False)
    op.create_foreign_key(
        op.f("fk_activity_household_id_household"),
        "activity",
        "household",
        ["household_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        op.f("ck_activity_kind"),
        "activity",
        "kind IN ('visit', 'affairs', 'mediation', 'hardship', 'safety', 'event')",
    )
    op.create_check_constraint(
        op.f("ck_activity_source"), "activity", "source IN ('logged', 'call')"
    )
    op.create_check_constraint(
        op.f("ck_activity_source_call"),
        "activity",
        "(source = 'call') = (call_id IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_activity_duration_min"), "activity", "duration_min BETWEEN 0 AND 1440"
    )


def downgrade() -> None:
    for name in ("duration_min", "source_call", "source", "kind"):
        op.drop_constraint(op.f(f"ck_activity_{name}"), "activity", type_="check")
    op.drop_constraint(op.f("fk_activity_household_id_household"), "activity", type_="foreignkey")
    op.drop_index("ix_activity_team_id_at", table_name="activity")
    op.drop_index(op.f("ix_activity_household_id"), table_name="activity")
    op.alter_column(
        "activity",
        "at",
        existing_type=postgresql.TIMESTAMP(timezone=True),
        server_default=sa.text("now()"),
        existing_nullable=False,
    )
    op.alter_column(
        "activity",
        "kind",
        existing_type=sa.String(length=16),
        type_=sa.VARCHAR(length=32),
        existing_nullable=False,
    )
    op.alter_column("activity", "team_id", existing_type=sa.UUID(), nullable=True)
    op.drop_column("activity", "created_at")
    op.drop_column("activity", "disputed")
    op.drop_column("activity", "household_id")
    op.drop_column("activity", "note")
    op.drop_column("activity", "duration_min")
    op.drop_column("activity", "source")
