"""Keys for third-party systems (`X-API-Key`): shown once, kept as a digest,
limited to scopes, revocable."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, Unauthorized, Unprocessable
from app.identity import tokens
from app.identity.auth import ApiKeyPrincipal

# What a key may be granted. Each route names the scope it accepts.
SCOPES: dict[str, str] = {
    "areas:read": "read the areas (GET /areas, /areas/locate)",
    "teams:read": "read the teams near a point (GET /teams/nearby)",
    "open311": "file and follow its own Open311 GeoReport v2 requests (/open311/v2/)",
}
KEY_PREFIX = "hk_"


@dataclass(frozen=True)
class NewApiKey:
    id: uuid.UUID
    key: str


async def create(session: AsyncSession, name: str, scopes: list[str]) -> NewApiKey:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise Unprocessable(f"Unknown scopes: {', '.join(unknown)}.", code="unknown_scope")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO api_key (id, name, prefix, key_hash, scopes)
            VALUES (:id, :name, :prefix, :hash, :scopes)
            """
        ),
        {
            "id": key_id,
            "name": name,
            "prefix": key[:10],
            "hash": tokens.digest(key),
            "scopes": sorted(set(scopes)),
        },
    )
    return NewApiKey(id=key_id, key=key)


async def revoke(session: AsyncSession, key_id: uuid.UUID) -> None:
    result = await session.execute(
        text(
            "UPDATE api_key SET revoked_at = now() "
            "WHERE id = :id AND revoked_at IS NULL RETURNING id"
        ),
        {"id": key_id},
    )
    if result.first() is None:
        raise NotFound("No live API key has this id.")


async def authenticate(session: AsyncSession, key: str) -> ApiKeyPrincipal:
    row = (
        await session.execute(
            text(
                "SELECT id, name, scopes FROM api_key WHERE key_hash = :hash AND revoked_at IS NULL"
            ),
            {"hash": tokens.digest(key)},
        )
    ).first()
    if row is None:
        raise Unauthorized("The API key is not valid.", code="invalid_api_key")
    return ApiKeyPrincipal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))
