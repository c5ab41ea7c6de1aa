"""`python -m app create-admin`: create a person, or promote one, as admin."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from app.core.config import AppEnv, Settings
from app.db import make_engine, make_sessionmaker, session_scope
from app.services.phones import normalize_phone


async def create_admin(settings: Settings, phone: str, display_name: str) -> uuid.UUID:
    e164 = normalize_phone(phone, allow_demo=settings.app_env is not AppEnv.production)
    engine = make_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            result = await session.execute(
                text(
                    """
                    INSERT INTO person (id, phone, display_name, is_admin)
                    VALUES (:id, :phone, :name, true)
                    ON CONFLICT (phone) DO UPDATE SET is_admin = true
                    RETURNING id
                    """
                ),
                {"id": uuid.uuid4(), "phone": e164, "name": display_name},
            )
            person_id: uuid.UUID = result.scalar_one()
        return person_id
    finally:
        await engine.dispose()
