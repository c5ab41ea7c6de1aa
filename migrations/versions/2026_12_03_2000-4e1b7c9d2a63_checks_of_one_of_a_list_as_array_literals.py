"""checks of one of a list as array literals

PostgreSQL keeps a CHECK constraint as the text of its expression and, on
every statement that writes a row of the table, reads that text back into
an expression and compiles it (PostgreSQL 15's `ExecConstraints`). A check
written `status IN ('a', 'b', ...)` is stored as an array of constants,
each cast from varchar to text: `call`'s eight checks were 8.7 KB of such
text, read about ten times in a call's loop. `perf` on the backends put
the checks at 6 % of PostgreSQL's CPU through a call's loop; on a scratch
table a single-row UPDATE with four of `call`'s checks took 33-35 µs with
IN lists and 21-23 µs with array literals (docs/benchmarks.md, "Where
PostgreSQL's CPU goes").

The seventeen checks that a column holds one of a list (or none of it) are
written `column::text = ANY ('{a,b}'::text[])` (`<> ALL` for none): the same
rule, one constant. Each is swapped NOT VALID (new rows are checked at
once; the ALTERs take their tables' locks for a moment), the swap commits,
and then each is validated outside the transaction: VALIDATE reads the
table under a lock that lets reads and writes go on. The rows already obey
the same rule, so it cannot fail; should the upgrade stop between the two,
running it again swaps the checks again and validates them.

Revision ID: 4e1b7c9d2a63
Revises: 7a4f2c9e1d86
Create Date: 2026-12-03 20:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4e1b7c9d2a63"
down_revision: str | None = "7a4f2c9e1d86"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint, column, values, form): the values as they are at this
# revision (a migration must not import app code that may change later).
# form "one": the column holds one of them; "none": none of them unless a
# responder is named; "null": one of them or NULL.
CHECKS: list[tuple[str, str, str, tuple[str, ...], str]] = [
    ("area", "ck_area_level", "level", ("street", "community", "grid_branch", "grid"), "one"),
    ("person", "ck_person_locale", "locale", ("zh-CN", "en"), "one"),
    ("device", "ck_device_platform", "platform", ("android", "ios", "web"), "one"),
    (
        "call",
        "ck_call_escalation_level",
        "escalation_level",
        ("grid", "community", "street"),
        "one",
    ),
    (
        "call",
        "ck_call_active_has_responder",
        "status",
        ("accepted", "en_route", "on_site"),
        "none",
    ),
    (
        "call",
        "ck_call_category",
        "category",
        ("urgent", "visit", "affairs", "mediation", "hardship", "safety"),
        "one",
    ),
    (
        "call",
        "ck_call_status",
        "status",
        (
            "searching",
            "offered",
            "accepted",
            "en_route",
            "on_site",
            "resolved",
            "cancelled",
            "escalated",
        ),
        "one",
    ),
    (
        "team_member",
        "ck_team_member_affiliation",
        "affiliation",
        (
            "grid_party_member",
            "in_service_party_member",
            "activist",
            "league_member",
            "volunteer",
            "resident",
            "property_company",
            "owners_committee",
            "social_organisation",
        ),
        "null",
    ),
    ("team_member", "ck_team_member_kind", "kind", ("full_time", "part_time"), "one"),
    (
        "activity",
        "ck_activity_kind",
        "kind",
        ("visit", "affairs", "mediation", "hardship", "safety", "event"),
        "one",
    ),
    ("activity", "ck_activity_source", "source", ("logged", "call"), "one"),
    (
        "event",
        "ck_event_type",
        "type",
        ("call.updated", "offer.created", "offer.closed", "responder.location"),
        "one",
    ),
    (
        "notification",
        "ck_notification_kind",
        "kind",
        (
            "offer",
            "offer_closed",
            "call_status",
            "escalation",
            "team_incomplete",
            "quota_reminder",
        ),
        "one",
    ),
    (
        "offer",
        "ck_offer_status",
        "status",
        ("open", "accepted", "declined", "expired", "withdrawn"),
        "one",
    ),
    ("sms_outbox", "ck_sms_outbox_kind", "kind", ("accepted", "resolved"), "one"),
    ("sms_outbox", "ck_sms_outbox_status", "status", ("pending", "sent", "failed"), "one"),
    (
        "push_delivery",
        "ck_push_delivery_status",
        "status",
        ("pending", "sent", "failed", "withdrawn"),
        "one",
    ),
]


def _as_array(column: str, values: tuple[str, ...], form: str) -> str:
    listed = "'{" + ",".join(values) + "}'::text[]"
    if form == "none":
        return f"responder_id IS NOT NULL OR {column}::text <> ALL ({listed})"
    held = f"{column}::text = ANY ({listed})"
    return f"{column} IS NULL OR {held}" if form == "null" else held


def _as_in_list(column: str, values: tuple[str, ...], form: str) -> str:
    listed = "(" + ", ".join(f"'{v}'" for v in values) + ")"
    if form == "none":
        return f"responder_id IS NOT NULL OR {column} NOT IN {listed}"
    held = f"{column} IN {listed}"
    return f"{column} IS NULL OR {held}" if form == "null" else held


def _rewrite(written: str) -> None:
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, name, column, values, form in CHECKS:
        body = (_as_array if written == "array" else _as_in_list)(column, values, form)
        tables.setdefault(table, []).append((name, body))
    for table, checks in tables.items():
        changes = ", ".join(
            f"DROP CONSTRAINT {name}, ADD CONSTRAINT {name} CHECK ({body}) NOT VALID"
            for name, body in checks
        )
        op.execute(f"ALTER TABLE {table} {changes}")
    # Validated after the swap has committed: VALIDATE reads the table under
    # a lock that lets the service read and write it meanwhile, where the
    # ALTER's would have held every writer of `event` for the whole scan.
    with op.get_context().autocommit_block():
        for table, checks in tables.items():
            for name, _ in checks:
                op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def upgrade() -> None:
    _rewrite("array")


def downgrade() -> None:
    _rewrite("in_list")
