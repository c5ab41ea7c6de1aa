"""who a principal is changes aloud

Each server process keeps the principals it loaded (app/identity/principals.py)
and must forget one as soon as anything it was read from changes: a session
revoked, a person disabled or renamed, admin granted or taken, a dispatcher's
area, a team membership, a team's or an area's name, an API key revoked.

One trigger function is the one place that says so, whoever writes: every
statement that changes those columns sends, in its own transaction (so only
on commit), a NOTIFY on `hulian_principals` with the ids of the people (or
keys) affected, `p:<uuid>,<uuid>…` or `k:<uuid>,…`, or `*` (forget every one)
when more than 100 are. Ids only: no personal data on the channel.

Statement triggers with transition tables, not row triggers: a bulk write (the
seeder's COPY of a district) sends one `*`, not a notification per row. Each
trigger names the columns it watches, the changed rows' key column first, and
how to find the people of those keys.

Revision ID: 94af9dfae36b
Revises: 5d7e9b1f3a20
Create Date: 2026-12-02 11:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "94af9dfae36b"
down_revision: str | None = "5d7e9b1f3a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, watched columns with the key first, who: a query of $1 (the changed
# keys) for the people affected, or '' when the key is the person's or key's
# id, kind: p (people) or k (API keys), the operations that matter)
WATCHED: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("auth_session", "person_id, revoked_at", "", "p", ("UPDATE", "DELETE")),
    (
        "person",
        "id, display_name, phone, is_admin, disabled_at",
        "",
        "p",
        ("UPDATE", "DELETE"),
    ),
    ("dispatcher", "person_id, area_id", "", "p", ("INSERT", "UPDATE", "DELETE")),
    ("team_member", "person_id, team_id, kind", "", "p", ("INSERT", "UPDATE", "DELETE")),
    (
        "team",
        "id, name",
        "SELECT person_id FROM team_member WHERE team_id = ANY($1)",
        "p",
        ("UPDATE",),
    ),
    (
        "area",
        "id, name, level",
        "SELECT person_id FROM dispatcher WHERE area_id = ANY($1)",
        "p",
        ("UPDATE",),
    ),
    ("api_key", "id, key_hash, name, scopes, revoked_at", "", "k", ("UPDATE", "DELETE")),
]


def _transition(operation: str) -> str:
    return {
        "INSERT": "REFERENCING NEW TABLE AS new_rows",
        "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "DELETE": "REFERENCING OLD TABLE AS old_rows",
    }[operation]


def upgrade() -> None:
    op.execute(
        r"""
        CREATE FUNCTION principals_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            watched text := TG_ARGV[0];
            who text := TG_ARGV[1];
            kind text := TG_ARGV[2];
            key text := split_part(watched, ',', 1);
            changed text;
            keys uuid[];
            ids uuid[];
        BEGIN
            -- The rows whose watched columns differ before and after the
            -- statement, from either side (a changed key counts for both).
            IF TG_OP = 'INSERT' THEN
                changed := format('SELECT %s FROM new_rows', watched);
            ELSIF TG_OP = 'DELETE' THEN
                changed := format('SELECT %s FROM old_rows', watched);
            ELSE
                changed := format(
                    '(SELECT %1$s FROM new_rows EXCEPT SELECT %1$s FROM old_rows) '
                    'UNION ALL (SELECT %1$s FROM old_rows EXCEPT SELECT %1$s FROM new_rows)',
                    watched);
            END IF;
            EXECUTE format('SELECT ARRAY(SELECT DISTINCT %s FROM (%s) c LIMIT 101)', key, changed)
                INTO keys;
            IF who = '' OR cardinality(keys) > 100 THEN
                ids := keys;
            ELSE
                EXECUTE format('SELECT ARRAY(SELECT DISTINCT x FROM (%s) w(x) LIMIT 101)', who)
                    INTO ids USING keys;
            END IF;
            IF cardinality(ids) > 100 THEN
                PERFORM pg_notify('hulian_principals', '*');
            ELSIF cardinality(ids) > 0 THEN
                PERFORM pg_notify('hulian_principals', kind || ':' || array_to_string(ids, ','));
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    for table, watched, who, kind, operations in WATCHED:
        for operation in operations:
            args = ", ".join("'" + arg.replace("'", "''") + "'" for arg in (watched, who, kind))
            op.execute(
                f"CREATE TRIGGER {table}_principals_{operation.lower()} AFTER {operation} "
                f"ON {table} {_transition(operation)} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION principals_changed({args})"
            )


def downgrade() -> None:
    for table, _, _, _, operations in WATCHED:
        for operation in operations:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_principals_{operation.lower()} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS principals_changed()")
