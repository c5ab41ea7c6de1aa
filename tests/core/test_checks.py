"""The CHECKs that a column holds one of a list are written as array
literals (`app.models.enums.one_of`, migration 4e1b7c9d2a63), which
PostgreSQL compiles faster on every write; they refuse what they refused
as IN lists, and take every value of the list."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import CheckConstraint, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import metadata
from app.models.call import CallStatus, OfferStatus
from tests.notifications.test_notifications import LAT, LNG, offer_of, press
from tests.scene import clear_duty_near, make_resident, make_team, offset


def test_every_check_of_a_list_is_an_array_literal() -> None:
    """No CHECK of the models lists its values as `IN (...)`."""
    listed = [
        f"{table.name}.{constraint.name}"
        for table in metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint) and " IN (" in str(constraint.sqltext)
    ]
    assert listed == []


async def _refused(session: AsyncSession, statement: str, values: dict[str, object]) -> str:
    """The constraint that refused the statement (run in a savepoint)."""
    with pytest.raises(IntegrityError) as refused:
        async with session.begin_nested():
            await session.execute(text(statement), values)
    assert refused.value.orig is not None
    cause = refused.value.orig.__cause__  # asyncpg's error, under the DBAPI adapter's
    assert getattr(cause, "sqlstate", None) == "23514"  # check_violation
    return str(getattr(cause, "constraint_name", ""))


async def test_the_checks_refuse_what_is_not_listed_and_take_what_is(
    anon_client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await clear_duty_near(session, LAT, LNG, 5000)
    team = await make_team(session, settings, *offset(LAT, LNG, 40, 30), members=2)
    call = await press(anon_client, await make_resident(session, settings))
    offer = await offer_of(anon_client, team.members[0], call["id"])
    c, o = uuid.UUID(call["id"]), uuid.UUID(offer["id"])

    set_status = "UPDATE call SET status = :s WHERE id = :c"
    assert await _refused(session, set_status, {"s": "bogus", "c": c}) == "ck_call_status"
    # A call in progress names its responder (the `<> ALL` form).
    assert (
        await _refused(session, set_status, {"s": "en_route", "c": c})
        == "ck_call_active_has_responder"
    )
    set_offer = "UPDATE offer SET status = :s WHERE id = :o"
    assert await _refused(session, set_offer, {"s": "taken", "o": o}) == "ck_offer_status"
    set_type = "UPDATE event SET type = :t WHERE call_id = :c"
    assert await _refused(session, set_type, {"t": "call.deleted", "c": c}) == "ck_event_type"
    set_locale = "UPDATE person SET locale = :l WHERE id = :p"
    person = team.members[1].person_id
    assert await _refused(session, set_locale, {"l": "fr", "p": person}) == "ck_person_locale"

    # Every listed value is taken.
    async with session.begin_nested() as nested:
        for status in CallStatus:
            if status.value not in ("accepted", "en_route", "on_site"):
                await session.execute(text(set_status), {"s": status.value, "c": c})
        for offer_status in OfferStatus:
            await session.execute(text(set_offer), {"s": offer_status.value, "o": o})
        for locale in ("en", "zh-CN"):
            await session.execute(text(set_locale), {"l": locale, "p": person})
        await nested.rollback()
