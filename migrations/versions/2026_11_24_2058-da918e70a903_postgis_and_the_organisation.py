"""postgis and the organisation

Revision ID: da918e70a903
Revises:
Create Date: 2026-11-24 20:58:33.671325+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from geoalchemy2 import Geography
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "da918e70a903"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostGIS first: every spatial column below needs it. Needs a role allowed
    # to create extensions (the database owner on PostgreSQL 13+ for trusted
    # ones; PostGIS itself needs a superuser unless it is already there).
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "area",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column(
            "boundary",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(level = 'street') = (parent_id IS NULL)", name=op.f("ck_area_root_is_street")
        ),
        sa.CheckConstraint(
            "level IN ('street', 'community', 'grid_branch', 'grid')", name=op.f("ck_area_level")
        ),
        sa.CheckConstraint("ST_IsValid(boundary)", name=op.f("ck_area_boundary_valid")),
        sa.ForeignKeyConstraint(["parent_id"], ["area.id"], name=op.f("fk_area_parent_id_area")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area")),
        sa.UniqueConstraint("code", name=op.f("uq_area_code")),
    )
    op.create_geospatial_index(
        "ix_area_boundary",
        "area",
        ["boundary"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_area_level"), "area", ["level"], unique=False)
    op.create_index(op.f("ix_area_parent_id"), "area", ["parent_id"], unique=False)
    op.create_table(
        "person",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("is_party_member", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("phone ~ '^\\+[1-9][0-9]{6,14}$'", name=op.f("ck_person_phone_e164")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("phone", name=op.f("uq_person_phone")),
    )
    op.create_table(
        "seed_state",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "seeded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_seed_state")),
    )
    op.create_geospatial_table(
        "duty",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("on_duty", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
            ),
            nullable=True,
        ),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("located_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "NOT on_duty OR (location IS NOT NULL AND since IS NOT NULL)",
            name=op.f("ck_duty_on_duty_located"),
        ),
        sa.CheckConstraint(
            "accuracy_m IS NULL OR accuracy_m >= 0", name=op.f("ck_duty_accuracy_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_duty_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_duty")),
    )
    op.create_geospatial_index(
        "ix_duty_location_on_duty",
        "duty",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("on_duty"),
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "household",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("grid_id", sa.Uuid(), nullable=False),
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
        sa.Column(
            "vulnerabilities",
            sa.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "vulnerabilities <@ ARRAY['elderly', 'sick', 'disabled', 'low_income', 'mental_health']::varchar[]",
            name=op.f("ck_household_vulnerabilities"),
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["area.id"], name=op.f("fk_household_grid_id_area")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household")),
    )
    op.create_index(op.f("ix_household_grid_id"), "household", ["grid_id"], unique=False)
    op.create_geospatial_table(
        "team",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("grid_id", sa.Uuid(), nullable=False),
        sa.Column(
            "base",
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
        sa.Column("service_content", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["area.id"], name=op.f("fk_team_grid_id_area")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
    )
    op.create_geospatial_index(
        "ix_team_base", "team", ["base"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_team_grid_id"), "team", ["grid_id"], unique=False)
    op.create_table(
        "household_pairing",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_household_pairing_household_id_household"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_household_pairing_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "household_id", name=op.f("pk_household_pairing")),
    )
    op.create_index(
        op.f("ix_household_pairing_household_id"),
        "household_pairing",
        ["household_id"],
        unique=False,
    )
    op.create_table(
        "team_member",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "roles", sa.ARRAY(sa.String(length=32)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("affiliation", sa.String(length=32), nullable=True),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "affiliation IS NULL OR affiliation IN ('grid_party_member', 'in_service_party_member', 'activist', 'league_member', 'volunteer', 'resident', 'property_company', 'owners_committee', 'social_organisation')",
            name=op.f("ck_team_member_affiliation"),
        ),
        sa.CheckConstraint("kind IN ('full_time', 'part_time')", name=op.f("ck_team_member_kind")),
        sa.CheckConstraint(
            "roles <@ ARRAY['liaison', 'server', 'mediator', 'governance_assistant', 'publicity_supervisor']::varchar[]",
            name=op.f("ck_team_member_roles"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_team_member_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_team_member_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "person_id", name=op.f("pk_team_member")),
    )
    op.create_index(op.f("ix_team_member_person_id"), "team_member", ["person_id"], unique=False)


def downgrade() -> None:
    # The postgis extension is left in place: other schemas of the same
    # database may use it, and dropping it needs a superuser.
    op.drop_index(op.f("ix_team_member_person_id"), table_name="team_member")
    op.drop_table("team_member")
    op.drop_index(op.f("ix_household_pairing_household_id"), table_name="household_pairing")
    op.drop_table("household_pairing")
    op.drop_index(op.f("ix_team_grid_id"), table_name="team")
    op.drop_geospatial_index(
        "ix_team_base", table_name="team", postgresql_using="gist", column_name="base"
    )
    op.drop_geospatial_table("team")
    op.drop_index(op.f("ix_household_grid_id"), table_name="household")
    op.drop_geospatial_table("household")
    op.drop_geospatial_index(
        "ix_duty_location_on_duty",
        table_name="duty",
        postgresql_using="gist",
        postgresql_where=sa.text("on_duty"),
        column_name="location",
    )
    op.drop_geospatial_table("duty")
    op.drop_table("seed_state")
    op.drop_table("person")
    op.drop_index(op.f("ix_area_parent_id"), table_name="area")
    op.drop_index(op.f("ix_area_level"), table_name="area")
    op.drop_geospatial_index(
        "ix_area_boundary", table_name="area", postgresql_using="gist", column_name="boundary"
    )
    op.drop_geospatial_table("area")
