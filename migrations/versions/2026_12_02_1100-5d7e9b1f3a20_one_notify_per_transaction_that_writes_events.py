"""one NOTIFY per transaction that writes events

The live hub wakes on a NOTIFY on `hulian_events` and then reads the event
log from where it stopped: the notification's payload was never read. A
statement-level trigger on `event` now sends it, with an empty payload, so
PostgreSQL folds all of a transaction's notifications into one (identical
payloads on one channel are delivered once) and a press no longer spends a
round trip per event on `SELECT pg_notify(...)`. NOTIFY is still delivered
only when the transaction commits.

Revision ID: 5d7e9b1f3a20
Revises: 8b2e4f7a1c35
Create Date: 2026-12-02 11:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5d7e9b1f3a20"
down_revision: str | None = "8b2e4f7a1c35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hulian_events', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER event_notify AFTER INSERT ON event
        FOR EACH STATEMENT EXECUTE FUNCTION event_notify()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER event_notify ON event")
    op.execute("DROP FUNCTION event_notify()")
