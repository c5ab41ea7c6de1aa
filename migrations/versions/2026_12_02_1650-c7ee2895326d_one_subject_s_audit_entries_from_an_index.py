"""one subject's audit entries from an index

Every read of a household writes an audit row, so the log grows with use;
GET /admin/audit?subject=household:<id> reads one subject's entries newest
first, which without this index was a scan of the whole log.

Revision ID: c7ee2895326d
Revises: 88f8085c4e95
Create Date: 2026-12-02 15:33:28.926026+00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = "c7ee2895326d"
down_revision: str | None = "88f8085c4e95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_log_target", "audit_log", ["target_type", "target_id", "at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_target", table_name="audit_log")
