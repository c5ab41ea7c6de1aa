"""`Idempotency-Key` on opening a call: the same key and body again give the
same answer, not a second call; the same key with another body is 422
`idempotency_key_reused`; while the first request runs, 409
`idempotency_key_in_flight`. Keys are kept IDEMPOTENCY_TTL_HOURS (the
sweeper forgets them)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import locks
from app.core.config import Settings
from app.core.errors import Conflict, Unprocessable
from app.core.locks import Lock
from app.models.call import CallCreate, CallPublic

# What is remembered is the answer as given: 201 when a call was opened,
# 200 when a double tap found the one opened moments before.
_CREATED, _FOUND = 201, 200


@dataclass(frozen=True)
class Opened:
    """The call as its caller sees it, and whether this request made it."""

    call: CallPublic
    created: bool


def request_hash(body: CallCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(session: AsyncSession, person_id: uuid.UUID, key: str) -> None:
    """Hold the key until commit: a second request with it while this one
    runs is told so at once rather than waiting."""
    if not await locks.try_xact_lock(session, Lock.idempotency_key, f"{person_id}:{key}"):
        raise Conflict(
            "A request with this Idempotency-Key is still in flight.",
            code="idempotency_key_in_flight",
        )


_READ = text(
    """
    SELECT request_hash, response_status, response_body FROM idempotency_key
    WHERE person_id = :p AND key = :k AND expires_at > now()
    """
)
_WRITE = text(
    """
    INSERT INTO idempotency_key (person_id, key, request_hash, response_status,
                                 response_body, expires_at)
    VALUES (:p, :k, :h, :s, CAST(:b AS jsonb), now() + CAST(:ttl AS interval))
    ON CONFLICT (person_id, key) DO UPDATE
       SET request_hash = excluded.request_hash,
           response_status = excluded.response_status,
           response_body = excluded.response_body,
           created_at = now(), expires_at = excluded.expires_at
    """
)


async def replay(
    session: AsyncSession, person_id: uuid.UUID, key: str, digest: str
) -> Opened | None:
    """The answer given to this key before, or None if there is none."""
    row = (await session.execute(_READ, {"p": person_id, "k": key})).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise Unprocessable(
            "This Idempotency-Key was used with another request body.",
            code="idempotency_key_reused",
        )
    return Opened(CallPublic.model_validate(row.response_body), row.response_status == _CREATED)


async def remember(
    session: AsyncSession,
    settings: Settings,
    person_id: uuid.UUID,
    key: str,
    digest: str,
    opened: Opened,
) -> None:
    await session.execute(
        _WRITE,
        {
            "p": person_id,
            "k": key,
            "h": digest,
            "s": _CREATED if opened.created else _FOUND,
            "b": opened.call.model_dump_json(),
            "ttl": timedelta(hours=settings.idempotency_ttl_hours),
        },
    )
