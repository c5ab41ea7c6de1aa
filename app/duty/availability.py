"""Who is an available member: the one definition, used by every query that
asks it (dispatch's nearest teams, `dispatch.team_has_takers`, the offer
alerts), so that the team a call is offered to, the members alerted of the
offer and the test "can anyone still take it" never disagree.

A member (a `duty` row) is available when:

- on duty (`on_duty = true`);
- with a position younger than DUTY_POSITION_MAX_AGE_SECONDS (a member
  never located, or silent for longer, may be anywhere);
- not disabled (`person.disabled_at IS NULL`);
- not responding to a call (no call of theirs is accepted, en route or on
  site: `ACTIVE_RESPONSE`).

`available_member("d")` is that rule as a SQL condition on the duty row
aliased `d`; the query binds `:max_age` (`params(settings)`). It says
`on_duty = true` literally, never a bound value nor `IS TRUE`: only then
does PostgreSQL use the partial GiST index `ix_duty_location_on_duty`
(`WHERE on_duty`) that the nearest-teams KNN scan runs on. The busy
statuses are literals too, for the partial unique index
`uq_call_responder_active` (`WHERE status IN (...)`) that answers "is this
member busy" with one probe (`busy`: a scalar subquery, see there).

Disabling a person also takes them off duty (`app/identity/admin.py`), so
the index itself no longer holds them and the KNN scan never meets them.
The `disabled_at` check stays in the rule all the same, as a guard: a
`PUT /me/duty` authenticated a moment before the disabling committed can
still put the person back on duty, and nothing else would then keep them
from being offered calls. It costs one probe per member the scan reads, of
the partial index `ix_person_disabled` (`WHERE disabled_at IS NOT NULL`):
it holds only the disabled people, so it stays in memory however large
`person` grows (probing `person`'s primary key and heap instead read pages
that at a million teams were rarely in cache). It is a scalar subquery,
not `NOT EXISTS`: PostGIS estimates that `ST_DWithin` keeps a row or two,
and with an anti-join the planner then reads the whole `person` table
once rather than probing it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.core.config import Settings
from app.models.call import ACTIVE_RESPONSE
from app.models.enums import sql_values


def busy(person_id: str) -> str:
    """The part of the rule that says a person is busy: a call of theirs is
    accepted, en route or on site. `person_id` is a SQL expression.

    A scalar subquery, not `EXISTS`, for the reason the `disabled_at` check
    is one: with a surge's calls in progress, PostgreSQL turned `NOT EXISTS`
    into an anti join that read every call in progress for each member the
    nearest-teams scan met (185 index entries a probe at 30 calls/s), and
    lost the index's KNN order to a sort. `uq_call_responder_active` holds
    at most one call per responder, so the subquery is one probe of it."""
    return f"""((SELECT busy.id FROM call busy
                WHERE busy.responder_id = {person_id}
                  AND busy.status IN {sql_values(ACTIVE_RESPONSE)}) IS NOT NULL)"""  # noqa: S608


def available_member(duty: str = "d") -> str:
    """The rule as a SQL condition on the duty row aliased `duty`; binds
    `:max_age` (see `params`)."""
    if not duty.isidentifier():
        raise ValueError("a table alias is expected")
    return f"""(
        {duty}.on_duty = true
        AND {duty}.located_at > now() - CAST(:max_age AS interval)
        AND (SELECT disabled.id FROM person disabled
             WHERE disabled.id = {duty}.person_id
               AND disabled.disabled_at IS NOT NULL) IS NULL
        AND NOT {busy(f"{duty}.person_id")}
    )"""  # noqa: S608 - an alias checked above and constant literals


def params(settings: Settings) -> dict[str, Any]:
    """The values `available_member` binds."""
    return {"max_age": timedelta(seconds=settings.duty_position_max_age_seconds)}
