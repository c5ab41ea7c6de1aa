"""The audit log: who did what, when, from where. Append-only in the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.auth import AuditLog


@dataclass(frozen=True)
class RequestOrigin:
    """Where a request came from, for the audit log."""

    ip: str | None = None
    request_id: str | None = None


async def record(
    session: AsyncSession,
    action: str,
    origin: RequestOrigin,
    *,
    actor_person_id: uuid.UUID | None = None,
    actor_api_key_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            action=action,
            actor_person_id=actor_person_id,
            actor_api_key_id=actor_api_key_id,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            ip=origin.ip,
            request_id=origin.request_id,
            detail=detail or {},
        )
    )
    await session.flush()
