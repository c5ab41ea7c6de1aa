"""an area's parent is the level above

The area tree is four levels deep, street ← community ← grid branch ← grid
(`app.models.enums.PARENT_LEVEL`), and every query walks it by one join per
level (app/areas/tree.py). The database only knew that the root is a street
(`ck_area_root_is_street`): a grid under a community, or a community under a
grid branch, would have been taken, and every walk would silently miss it.

A constraint trigger now refuses it, whoever writes: on an insert, or an
update of `level` or `parent_id`, the area's parent must be of the level
above its own, and (when its level changes) its children must be of the
level below. The parent row is locked FOR SHARE while checked, so a child
added and a change of its parent's level, in two transactions at once,
cannot both commit. The error is a check violation (23514) naming
`area_parent_level`, with the two levels in the message. The rows already
there are checked once: the upgrade stops if one lies in the wrong level
(the seeder's all obey it).

Revision ID: 7a4f2c9e1d86
Revises: 3b8e5c6acd2e
Create Date: 2026-12-02 19:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7a4f2c9e1d86"
down_revision: str | None = "3b8e5c6acd2e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The level of each level's parent: a copy of `app.models.enums.PARENT_LEVEL`
# as it is at this revision (a migration must not import app code that may
# change later; a new level is a new migration).
PARENT_LEVEL: dict[str, str | None] = {
    "street": None,
    "community": "street",
    "grid_branch": "community",
    "grid": "grid_branch",
}


def _parent_level_case(level: str) -> str:
    """SQL: the parent level of the level expression `level` (null for the
    root, and for a level the `ck_area_level` check refuses anyway)."""
    whens = " ".join(
        f"WHEN '{child}' THEN '{parent}'" for child, parent in PARENT_LEVEL.items() if parent
    )
    return f"CASE {level} {whens} END"


def upgrade() -> None:
    # The trigger checks the rows written from now on; the rows already
    # there are checked once here, and the upgrade stops if one is wrong.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM area c JOIN area p ON p.id = c.parent_id
                       WHERE p.level IS DISTINCT FROM {_parent_level_case("c.level")}) THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'some areas lie in an area not of the level above: '
                        || 'move them before this upgrade',
                    ERRCODE = 'check_violation';
            END IF;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION area_parent_level() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            expected text := {_parent_level_case("NEW.level")};
            actual text;
            child record;
        BEGIN
            IF NEW.parent_id IS NOT NULL THEN
                -- FOR SHARE: a concurrent change of the parent's level waits
                -- for this insert or move to end, or this for it (a foreign
                -- key's KEY SHARE lock would not conflict with that update).
                SELECT level INTO actual FROM area WHERE id = NEW.parent_id FOR SHARE;
                IF actual IS DISTINCT FROM expected THEN
                    RAISE EXCEPTION USING
                        MESSAGE = 'area ' || NEW.id || ': a ' || NEW.level || ' must lie in '
                            || coalesce('a ' || expected, 'nothing') || ', not in a ' || actual,
                        ERRCODE = 'check_violation', TABLE = 'area',
                              CONSTRAINT = 'area_parent_level';
                END IF;
            END IF;
            IF TG_OP = 'UPDATE' AND NEW.level IS DISTINCT FROM OLD.level THEN
                SELECT id, level, {_parent_level_case("level")} AS expected INTO child
                FROM area
                WHERE parent_id = NEW.id
                  AND {_parent_level_case("level")} IS DISTINCT FROM NEW.level
                LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION USING
                        MESSAGE = 'area ' || child.id || ': a ' || child.level
                            || ' must lie in a ' || child.expected || ', not in a ' || NEW.level,
                        ERRCODE = 'check_violation', TABLE = 'area',
                              CONSTRAINT = 'area_parent_level';
                END IF;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER area_parent_level
        AFTER INSERT OR UPDATE OF level, parent_id ON area
        FOR EACH ROW EXECUTE FUNCTION area_parent_level()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER area_parent_level ON area")
    op.execute("DROP FUNCTION area_parent_level()")
