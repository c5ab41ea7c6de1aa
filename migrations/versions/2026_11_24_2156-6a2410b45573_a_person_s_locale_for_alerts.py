"""a person's locale for alerts

Revision ID: 6a2410b45573
Revises: 64b73ec7a481
Create Date: 2026-11-24 21:56:32.340475+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "6a2410b45573"
down_revision: str | None = "64b73ec7a481"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "person",
        sa.Column(
            "locale",
            sqlmodel.sql.sqltypes.AutoString(length=16),
            server_default=sa.text("'zh-CN'"),
            nullable=False,
        ),
    )
    op.create_check_constraint(op.f("ck_person_locale"), "person", "locale IN ('zh-CN', 'en')")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_person_locale"), "person", type_="check")
    op.drop_column("person", "locale")
