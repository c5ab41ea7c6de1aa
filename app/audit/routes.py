from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service as audit
from app.audit.service import SUBJECT_PATTERN
from app.core.cursors import PAGE_LIMIT, Cursor
from app.http.deps import SessionDep, StaffUser
from app.http.prefix import API_PREFIX
from app.models.household import AuditList

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["admin"])


@router.get("/audit")
async def list_audit_entries(
    user: StaffUser,
    session: SessionDep,
    subject: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=SUBJECT_PATTERN,
            description="only entries about this, `<type>:<id>`, e.g. `household:<id>`",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description=PAGE_LIMIT)] = 50,
    cursor: Cursor = None,
) -> AuditList:
    """The audit log, newest first: every read of household data, every
    administrative change. An admin reads all of it; a dispatcher only the
    entries of a household of its area (`subject=household:<id>`, else 403
    `subject_required`; a household outside its area → 404)."""
    return await audit.list_entries(session, user, subject, limit=limit, cursor=cursor)
