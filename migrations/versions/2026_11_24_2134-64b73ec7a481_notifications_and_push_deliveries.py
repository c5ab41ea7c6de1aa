"""notifications and push deliveries

Every alert sent to a person (`notification`) and the push worker's queue of
deliveries to devices (`push_delivery`).

Revision ID: 64b73ec7a481
Revises: fcd88b259a49
Create Date: 2026-11-24 21:34:27.570581+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "64b73ec7a481"
down_revision: str | None = "fcd88b259a49"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('offer', 'offer_closed', 'call_status', 'escalation')",
            name=op.f("ck_notification_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_notification_call_id_call"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_notification_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    op.create_index(
        "ix_notification_offer_id",
        "notification",
        ["offer_id"],
        unique=False,
        postgresql_where=sa.text("offer_id IS NOT NULL"),
    )
    op.create_index(
        "ix_notification_person_id_created_at",
        "notification",
        ["person_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "push_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("device_token", sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("backend", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("collapse_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'withdrawn')",
            name=op.f("ck_push_delivery_status"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_push_delivery_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_push_delivery_notification_id_notification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_delivery")),
    )
    op.create_index(
        op.f("ix_push_delivery_notification_id"), "push_delivery", ["notification_id"], unique=False
    )
    op.create_index(
        "ix_push_delivery_pending_next_attempt_at",
        "push_delivery",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_push_delivery_pending_next_attempt_at",
        table_name="push_delivery",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("ix_push_delivery_notification_id"), table_name="push_delivery")
    op.drop_table("push_delivery")
    op.drop_index("ix_notification_person_id_created_at", table_name="notification")
    op.drop_index(
        "ix_notification_offer_id",
        table_name="notification",
        postgresql_where=sa.text("offer_id IS NOT NULL"),
    )
    op.drop_table("notification")
