"""households: their residents, and offers made to one paired member

`household_resident` links a household to the people who live there; the
person is the primary key, so a resident belongs to at most one household
(the one whose paired members a call of theirs is offered to first).
`offer.person_id` is set on a paired offer (docs/dispatch.md, "The paired
round"): the offer keeps its team, and only that member is alerted and may
take it. Nothing existing changes meaning: every older offer has no person.

Revision ID: 88f8085c4e95
Revises: 515d3e130b64
Create Date: 2026-12-02 15:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "88f8085c4e95"
down_revision: str | None = "515d3e130b64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "household_resident",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_household_resident_household_id_household"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_household_resident_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_household_resident")),
    )
    op.create_index(
        op.f("ix_household_resident_household_id"),
        "household_resident",
        ["household_id"],
        unique=False,
    )
    op.add_column("offer", sa.Column("person_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_offer_person_id_person"), "offer", "person", ["person_id"], ["id"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_offer_person_id_person"), "offer", type_="foreignkey")
    op.drop_column("offer", "person_id")
    op.drop_index(op.f("ix_household_resident_household_id"), table_name="household_resident")
    op.drop_table("household_resident")
