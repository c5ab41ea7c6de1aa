"""The phones a person gets push notifications on, and the language of
their alerts (set when a phone registers with a locale)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.auth import PersonPrincipal


async def register_device(
    session: AsyncSession,
    person: PersonPrincipal,
    token: str,
    platform: str,
    locale: str | None = None,
) -> None:
    # A token belongs to one phone: registering it again, by anyone, moves it.
    await session.execute(
        text(
            """
            INSERT INTO device (token, person_id, platform) VALUES (:token, :person_id, :platform)
            ON CONFLICT (token) DO UPDATE
               SET person_id = excluded.person_id, platform = excluded.platform,
                   updated_at = now()
            """
        ),
        {"token": token, "person_id": person.person_id, "platform": platform},
    )
    if locale is not None:
        await session.execute(
            text("UPDATE person SET locale = :locale WHERE id = :id"),
            {"locale": locale, "id": person.person_id},
        )


async def remove_device(session: AsyncSession, person: PersonPrincipal, token: str) -> None:
    await session.execute(
        text("DELETE FROM device WHERE token = :token AND person_id = :person_id"),
        {"token": token, "person_id": person.person_id},
    )
