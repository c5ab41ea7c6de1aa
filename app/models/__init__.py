"""Tables and API schemas. Importing this package registers every table on
`metadata`, which Alembic compares against."""

from app.models.area import Area
from app.models.auth import (
    ApiKey,
    AuditLog,
    AuthSession,
    Device,
    Dispatcher,
    OtpCode,
    RateLimitHit,
    RefreshToken,
)
from app.models.base import metadata
from app.models.household import Household, HouseholdPairing
from app.models.person import Person
from app.models.seed_state import SeedState
from app.models.team import Duty, Team, TeamMember

__all__ = [
    "ApiKey",
    "Area",
    "AuditLog",
    "AuthSession",
    "Device",
    "Dispatcher",
    "Duty",
    "Household",
    "HouseholdPairing",
    "OtpCode",
    "Person",
    "RateLimitHit",
    "RefreshToken",
    "SeedState",
    "Team",
    "TeamMember",
    "metadata",
]
