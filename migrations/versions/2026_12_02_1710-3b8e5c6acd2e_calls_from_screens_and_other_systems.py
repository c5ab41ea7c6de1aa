"""calls from screens and other systems

A call may now come from a public screen's button or from another system
(Open311) rather than from a logged-in resident (docs/dispatch-platform.md,
"Calls from screens and other systems"): `call.resident_id` becomes
nullable, and the call records its origin, `screen_id` or `api_key_id`.
The checks keep someone behind every call and at most one origin; every
existing call has its resident, so both hold for the rows already there.
`screen` holds the registered screens and their key digests; `sms_outbox`
the texts to a walk-up caller's phone, written with the event that calls
for them and sent after commit.

Revision ID: 3b8e5c6acd2e
Revises: 23169d2083ba
Create Date: 2026-12-02 15:31:54.351327+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from geoalchemy2 import Geography

revision: str = "3b8e5c6acd2e"
down_revision: str | None = "23169d2083ba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_geospatial_table(
        "screen",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("area_id", sa.Uuid(), nullable=False),
        sa.Column(
            "location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["area_id"], ["area.id"], name=op.f("fk_screen_area_id_area")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["person.id"], name=op.f("fk_screen_created_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screen")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_screen_key_hash")),
    )
    op.create_index(op.f("ix_screen_area_id"), "screen", ["area_id"], unique=False)
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('accepted', 'resolved')", name=op.f("ck_sms_outbox_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_sms_outbox_status")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_sms_outbox_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_sms_outbox_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("call_id", "kind", name=op.f("uq_sms_outbox_call_id_kind")),
    )
    op.create_index(
        "ix_sms_outbox_pending_next_attempt_at",
        "sms_outbox",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column("call", sa.Column("screen_id", sa.Uuid(), nullable=True))
    op.add_column("call", sa.Column("api_key_id", sa.Uuid(), nullable=True))
    op.alter_column("call", "resident_id", existing_type=sa.UUID(), nullable=True)
    op.create_index(
        "ix_call_api_key_id_created_at",
        "call",
        ["api_key_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("api_key_id IS NOT NULL"),
    )
    op.create_index(
        "ix_call_screen_id_created_at",
        "call",
        ["screen_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("screen_id IS NOT NULL"),
    )
    op.create_foreign_key(
        op.f("fk_call_api_key_id_api_key"), "call", "api_key", ["api_key_id"], ["id"]
    )
    op.create_foreign_key(op.f("fk_call_screen_id_screen"), "call", "screen", ["screen_id"], ["id"])
    op.create_check_constraint(
        op.f("ck_call_has_caller"),
        "call",
        "resident_id IS NOT NULL OR screen_id IS NOT NULL OR api_key_id IS NOT NULL",
    )
    op.create_check_constraint(
        op.f("ck_call_one_origin"), "call", "screen_id IS NULL OR api_key_id IS NULL"
    )


def downgrade() -> None:
    # The older schema has no call without a resident: those calls go (with
    # their offers, events and texts, by their cascades).
    op.execute("DELETE FROM call WHERE resident_id IS NULL")
    op.drop_constraint(op.f("ck_call_one_origin"), "call", type_="check")
    op.drop_constraint(op.f("ck_call_has_caller"), "call", type_="check")
    op.drop_constraint(op.f("fk_call_screen_id_screen"), "call", type_="foreignkey")
    op.drop_constraint(op.f("fk_call_api_key_id_api_key"), "call", type_="foreignkey")
    op.drop_index(
        "ix_call_screen_id_created_at",
        table_name="call",
        postgresql_where=sa.text("screen_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_call_api_key_id_created_at",
        table_name="call",
        postgresql_where=sa.text("api_key_id IS NOT NULL"),
    )
    op.alter_column("call", "resident_id", existing_type=sa.UUID(), nullable=False)
    op.drop_column("call", "api_key_id")
    op.drop_column("call", "screen_id")
    op.drop_index(
        "ix_sms_outbox_pending_next_attempt_at",
        table_name="sms_outbox",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("sms_outbox")
    op.drop_index(op.f("ix_screen_area_id"), table_name="screen")
    op.drop_geospatial_table("screen")
