"""A dispatcher hands a call to a team of its choice (within its area and
active under the team rule, else 409 `team_incomplete`); if that team lets
it lapse, the call comes back to the dispatchers (`policy.move_on`)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas import tree
from app.calls import state
from app.calls import visibility as call_view
from app.calls.visibility import Viewer, VisibleCall
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, Unprocessable
from app.models.call import CallPublic, CallStatus
from app.offers import lifecycle
from app.teams import rules as team_rule


async def assign(
    session: AsyncSession, settings: Settings, visible: VisibleCall, team_id: uuid.UUID
) -> CallPublic:
    # Only the staff of the call's area may; to anyone else it does not exist.
    if not visible.plays(Viewer.staff):
        raise NotFound("No such call.")
    person, call_id = visible.person, visible.id
    team = (
        await session.execute(
            text(
                f"""
                SELECT t.id, t.name, ST_Distance(t.base, c.location, false) AS base_distance,
                       {tree.chain_sql("t.grid_id")} AS chain,
                       (SELECT min(ST_Distance(d.location, c.location, false))
                          FROM team_member m JOIN duty d ON d.person_id = m.person_id
                         WHERE m.team_id = t.id AND d.on_duty = true) AS member_distance
                FROM team t
                JOIN call c ON c.id = :call
                WHERE t.id = :team
                """  # noqa: S608 - a fragment of app.areas.tree, values are bound
            ),
            {"team": team_id, "call": call_id},
        )
    ).first()
    in_scope = team is not None and (
        person.is_admin
        or (
            person.dispatcher_area is not None
            and tree.Chain(tuple(team.chain)).within(person.dispatcher_area.id)
        )
    )
    if team is None or not in_scope:
        raise Unprocessable("No team with this id in your area.", code="unknown_team")
    if not await team_rule.is_active(session, settings, team_id):
        raise Conflict(
            "This team is incomplete under the team rule and is offered no calls; "
            "complete its roster or choose another team.",
            code="team_incomplete",
        )
    call = await state.lock_call(session, call_id)
    if call is None:
        raise NotFound("No such call.")
    state.check_transition(call.status, CallStatus.offered)
    await lifecycle.withdraw_open_offers(session, call_id)
    distance = team.member_distance if team.member_distance is not None else team.base_distance
    await lifecycle.create_offer(
        session,
        settings,
        call,
        lifecycle.Team(team_id, team.name),
        float(distance),
        call.rounds + 1,
        assigned_by=person.person_id,
    )
    full = await state.transition(
        session, call, CallStatus.offered, team_id=team_id, rounds=call.rounds + 1
    )
    return call_view.redacted(full, Viewer.staff)
