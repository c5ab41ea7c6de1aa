"""a progress note on its event

`POST /calls/{id}/progress` takes a `note` (what the responder or the
dispatcher says of the step); it is kept on the `call.updated` event of that
step instead of being dropped.

Revision ID: 3f6c1d2e9a71
Revises: 6a2410b45573
Create Date: 2026-12-02 08:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "3f6c1d2e9a71"
down_revision: str | None = "6a2410b45573"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "event",
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("event", "note")
