"""quota reminders once a month

From day QUOTA_REMINDER_DAY of a month every full-time member still short of
the monthly activity quota is reminded once (docs/organisation.md,
"Activities and the monthly rule"). `quota_reminder` holds one row per month
and person, written in the transaction of the reminder's notification: its
primary key is what makes "once" hold with several processes. Notifications
gain the kind `quota_reminder`.

Revision ID: 6891d54c14b0
Revises: 3c7bea8e9adf
Create Date: 2026-12-02 14:57:26.150248+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "6891d54c14b0"
down_revision: str | None = "3c7bea8e9adf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = "('offer', 'offer_closed', 'call_status', 'escalation', 'team_incomplete')"
KINDS_AFTER = (
    "('offer', 'offer_closed', 'call_status', 'escalation', 'team_incomplete', 'quota_reminder')"
)


def upgrade() -> None:
    op.create_table(
        "quota_reminder",
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'", name=op.f("ck_quota_reminder_month")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_quota_reminder_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("month", "person_id", name=op.f("pk_quota_reminder")),
    )
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_kind"), "notification", f"kind IN {KINDS_AFTER}"
    )


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE kind = 'quota_reminder'")
    op.drop_constraint(op.f("ck_notification_kind"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_kind"), "notification", f"kind IN {KINDS_BEFORE}"
    )
    op.drop_table("quota_reminder")
