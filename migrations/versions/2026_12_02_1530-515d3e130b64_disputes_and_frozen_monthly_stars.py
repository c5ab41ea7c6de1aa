"""disputes and frozen monthly stars

A resident may dispute a resolved call once (POST /calls/{id}/dispute): the
call remembers when (`disputed_at`, kept for the statistics) and why
(`dispute_reason`, personal text that anonymising drops). A reason without a
dispute cannot be written.

A closed month's stars of an area are computed once and kept
(`star_ranking`, one row per area and month): later edits to that month's
facts, or new weights, do not change a ranking already announced.

A disputed call resolved again by another member is an activity of that
member too: an activity is unique per call and member, no longer per call.

The call snapshots of the event log, and the calls kept for Idempotency-Key
replays, gain `disputed: false`: a Call always says it.

Revision ID: 515d3e130b64
Revises: 6891d54c14b0
Create Date: 2026-12-02 15:30:36.672798+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "515d3e130b64"
down_revision: str | None = "6891d54c14b0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("uq_activity_call_id"), "activity", type_="unique")
    op.create_unique_constraint(
        op.f("uq_activity_call_id_person_id"), "activity", ["call_id", "person_id"]
    )
    op.create_table(
        "star_ranking",
        sa.Column("area_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name=op.f("ck_star_ranking_month")
        ),
        sa.ForeignKeyConstraint(
            ["area_id"], ["area.id"], name=op.f("fk_star_ranking_area_id_area"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("area_id", "month", name=op.f("pk_star_ranking")),
    )
    op.add_column("call", sa.Column("disputed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "call",
        sa.Column("dispute_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    )
    # Every call snapshot says whether the call was disputed (Call.disputed
    # is always sent): the ones written before were not.
    op.execute(
        """
        UPDATE event SET data = data || '{"disputed": false}'::jsonb
        WHERE type = 'call.updated' AND NOT data ? 'disputed'
        """
    )
    op.execute(
        """
        UPDATE idempotency_key
        SET response_body = response_body || '{"disputed": false}'::jsonb
        WHERE NOT response_body ? 'disputed'
        """
    )
    op.create_check_constraint(
        op.f("ck_call_dispute_reason_disputed"),
        "call", "dispute_reason IS NULL OR disputed_at IS NOT NULL"
    )


def downgrade() -> None:
    # A call resolved again after a dispute keeps its first responder's activity.
    op.execute(
        """
        DELETE FROM activity a USING activity b
        WHERE a.call_id = b.call_id AND a.created_at > b.created_at
        """
    )
    op.drop_constraint(op.f("uq_activity_call_id_person_id"), "activity", type_="unique")
    op.create_unique_constraint(op.f("uq_activity_call_id"), "activity", ["call_id"])
    op.drop_constraint(op.f("ck_call_dispute_reason_disputed"), "call", type_="check")
    op.drop_column("call", "dispute_reason")
    op.drop_column("call", "disputed_at")
    op.drop_table("star_ranking")
