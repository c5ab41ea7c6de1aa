"""a call's details end with their use

The responder keeps the exact point and the note only until
`RESPONDER_ACCESS_HOURS` after the call closed (`call.responder_released_at`,
stamped by the sweeper); after `RETENTION_DAYS` a closed call's point is
rounded to about 100 m and its notes are dropped (`call.anonymised_at`).
Two partial indexes make both jobs index lookups (docs/privacy.md).

Revision ID: 8b2e4f7a1c35
Revises: 3f6c1d2e9a71
Create Date: 2026-12-02 09:05:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8b2e4f7a1c35"
down_revision: str | None = "3f6c1d2e9a71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "call", sa.Column("responder_released_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("call", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_call_forgotten_once_closed"),
        "call",
        "closed_at IS NOT NULL OR (responder_released_at IS NULL AND anonymised_at IS NULL)",
    )
    op.create_index(
        "ix_call_closed_at_unreleased",
        "call",
        ["closed_at"],
        unique=False,
        postgresql_where=sa.text("responder_released_at IS NULL"),
    )
    op.create_index(
        "ix_call_closed_at_not_anonymised",
        "call",
        ["closed_at"],
        unique=False,
        postgresql_where=sa.text("anonymised_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_call_closed_at_not_anonymised",
        table_name="call",
        postgresql_where=sa.text("anonymised_at IS NULL"),
    )
    op.drop_index(
        "ix_call_closed_at_unreleased",
        table_name="call",
        postgresql_where=sa.text("responder_released_at IS NULL"),
    )
    op.drop_constraint(op.f("ck_call_forgotten_once_closed"), "call", type_="check")
    op.drop_column("call", "anonymised_at")
    op.drop_column("call", "responder_released_at")
