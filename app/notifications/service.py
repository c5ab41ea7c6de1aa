"""A person's own notifications: every alert sent to them, newest first,
with how its push fared."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import cursors
from app.identity.auth import PersonPrincipal
from app.models.notification import NotificationPublic, NotificationPush

# The push summary of a notification: `sent` when any device got it, else
# `pending`, `withdrawn`, `failed`; `none` when there was no device.
_LIST = text(
    """
    SELECT n.id, n.kind, n.title, n.body, n.call_id, n.team_id, n.created_at,
           s.backend, s.status
    FROM notification n
    CROSS JOIN LATERAL (
        SELECT max(pd.backend) AS backend,
               CASE WHEN count(pd.id) = 0 THEN 'none'
                    WHEN bool_or(pd.status = 'sent') THEN 'sent'
                    WHEN bool_or(pd.status = 'pending') THEN 'pending'
                    WHEN bool_or(pd.status = 'withdrawn') THEN 'withdrawn'
                    ELSE 'failed' END AS status
        FROM push_delivery pd WHERE pd.notification_id = n.id
    ) s
    WHERE n.person_id = :me
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR (n.created_at, n.id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
    ORDER BY n.created_at DESC, n.id DESC
    LIMIT :limit
    """
)


async def list_notifications(
    session: AsyncSession, person: PersonPrincipal, *, limit: int, cursor: str | None
) -> tuple[list[NotificationPublic], str | None]:
    rows = (
        await session.execute(
            _LIST,
            {
                "me": person.person_id,
                **cursors.bounds(cursor),
                "limit": limit + 1,
            },
        )
    ).all()
    page = rows[:limit]
    data = [
        NotificationPublic(
            id=row.id,
            kind=row.kind,
            title=row.title,
            body=row.body,
            call_id=row.call_id,
            team_id=row.team_id,
            created_at=row.created_at,
            push=NotificationPush(backend=row.backend, status=row.status),
        )
        for row in page
    ]
    next_cursor = cursors.next_cursor(rows, limit)
    return data, next_cursor
