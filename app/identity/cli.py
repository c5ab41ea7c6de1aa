"""Commands an operator runs: create-admin, create-api-key, revoke-api-key."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from app.core.config import AppEnv, Settings
from app.core.db import make_engine, make_sessionmaker, session_scope
from app.core.phones import normalize_phone
from app.identity import api_keys


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


async def create_api_key(settings: Settings, name: str, scopes: list[str]) -> tuple[uuid.UUID, str]:
    engine = make_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            created = await api_keys.create(session, name, scopes)
        return created.id, created.key
    finally:
        await engine.dispose()


async def revoke_api_key(settings: Settings, key_id: uuid.UUID) -> None:
    engine = make_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            await api_keys.revoke(session, key_id)
    finally:
        await engine.dispose()
