"""calls offers and the event log

Revision ID: fcd88b259a49
Revises: a3779febb6be
Create Date: 2026-11-24 21:18:50.253632+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql

revision: str = "fcd88b259a49"
down_revision: str | None = "a3779febb6be"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_idempotency_key_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index(
        "ix_idempotency_key_expires_at", "idempotency_key", ["expires_at"], unique=False
    )
    op.create_geospatial_table(
        "call",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
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
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("grid_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("street_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("responder_id", sa.Uuid(), nullable=True),
        sa.Column("escalation_level", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("rounds", sa.SmallInteger(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category IN ('urgent', 'visit', 'affairs', 'mediation', 'hardship', 'safety')",
            name=op.f("ck_call_category"),
        ),
        sa.CheckConstraint(
            "escalation_level IN ('grid', 'community', 'street')",
            name=op.f("ck_call_escalation_level"),
        ),
        sa.CheckConstraint(
            "responder_id IS NOT NULL OR status NOT IN ('accepted', 'en_route', 'on_site')",
            name=op.f("ck_call_active_has_responder"),
        ),
        sa.CheckConstraint(
            "status IN ('searching', 'offered', 'accepted', 'en_route', 'on_site', 'resolved', 'cancelled', 'escalated')",
            name=op.f("ck_call_status"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["area.id"], name=op.f("fk_call_community_id_area")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["area.id"], name=op.f("fk_call_grid_id_area")),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["person.id"], name=op.f("fk_call_resident_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["responder_id"], ["person.id"], name=op.f("fk_call_responder_id_person")
        ),
        sa.ForeignKeyConstraint(["street_id"], ["area.id"], name=op.f("fk_call_street_id_area")),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_call_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
    )
    op.create_index(
        "ix_call_community_id_created_at", "call", ["community_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_call_escalated_at",
        "call",
        ["escalated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'escalated' AND escalation_level = 'community'"),
    )
    op.create_index(
        "ix_call_resident_id_created_at", "call", ["resident_id", "created_at"], unique=False
    )
    op.create_index(
        "uq_call_responder_active",
        "call",
        ["responder_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('accepted', 'en_route', 'on_site')"),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"], name=op.f("fk_activity_call_id_call")),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_activity_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_activity_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity")),
        sa.UniqueConstraint("call_id", name=op.f("uq_activity_call_id")),
    )
    op.create_index("ix_activity_person_id_at", "activity", ["person_id", "at"], unique=False)
    op.create_table(
        "event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "type IN ('call.updated', 'offer.created', 'offer.closed', 'responder.location')",
            name=op.f("ck_event_type"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_event_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    op.create_index("ix_event_call_id_id", "event", ["call_id", "id"], unique=False)
    op.create_table(
        "offer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("round", sa.SmallInteger(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("accepted_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'declined', 'expired', 'withdrawn')",
            name=op.f("ck_offer_status"),
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["person.id"], name=op.f("fk_offer_accepted_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by"], ["person.id"], name=op.f("fk_offer_assigned_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_offer_call_id_call"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_offer_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer")),
    )
    op.create_index(op.f("ix_offer_call_id"), "offer", ["call_id"], unique=False)
    op.create_index(
        "ix_offer_open_expires_at",
        "offer",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_offer_team_id_status", "offer", ["team_id", "status"], unique=False)
    op.create_table(
        "rating",
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("responder_id", sa.Uuid(), nullable=True),
        sa.Column("stars", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name=op.f("ck_rating_stars")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_rating_call_id_call"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["person.id"], name=op.f("fk_rating_resident_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["responder_id"], ["person.id"], name=op.f("fk_rating_responder_id_person")
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_rating")),
    )
    op.create_index(op.f("ix_rating_responder_id"), "rating", ["responder_id"], unique=False)
    op.create_table(
        "offer_decline",
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offer.id"],
            name=op.f("fk_offer_decline_offer_id_offer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_offer_decline_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("offer_id", "person_id", name=op.f("pk_offer_decline")),
    )


def downgrade() -> None:
    op.drop_table("offer_decline")
    op.drop_index(op.f("ix_rating_responder_id"), table_name="rating")
    op.drop_table("rating")
    op.drop_index("ix_offer_team_id_status", table_name="offer")
    op.drop_index(
        "ix_offer_open_expires_at", table_name="offer", postgresql_where=sa.text("status = 'open'")
    )
    op.drop_index(op.f("ix_offer_call_id"), table_name="offer")
    op.drop_table("offer")
    op.drop_index("ix_event_call_id_id", table_name="event")
    op.drop_table("event")
    op.drop_index("ix_activity_person_id_at", table_name="activity")
    op.drop_table("activity")
    op.drop_index(
        "uq_call_responder_active",
        table_name="call",
        postgresql_where=sa.text("status IN ('accepted', 'en_route', 'on_site')"),
    )
    op.drop_index("ix_call_resident_id_created_at", table_name="call")
    op.drop_index(
        "ix_call_escalated_at",
        table_name="call",
        postgresql_where=sa.text("status = 'escalated' AND escalation_level = 'community'"),
    )
    op.drop_index("ix_call_community_id_created_at", table_name="call")
    op.drop_geospatial_table("call")
    op.drop_index("ix_idempotency_key_expires_at", table_name="idempotency_key")
    op.drop_table("idempotency_key")
