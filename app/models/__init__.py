"""Tables and API schemas. Importing this package registers every table on
`metadata`, which Alembic compares against."""

from app.models.activity import Activity, QuotaReminder
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
from app.models.call import Call, Event, IdempotencyKey, Offer, OfferDecline, Rating
from app.models.household import Household, HouseholdPairing, HouseholdResident
from app.models.notification import Notification, PushDelivery, SmsOutbox
from app.models.person import Person
from app.models.screen import Screen
from app.models.seed_state import SeedState
from app.models.star import StarRanking
from app.models.team import Duty, Team, TeamMember

__all__ = [
    "Activity",
    "ApiKey",
    "Area",
    "AuditLog",
    "AuthSession",
    "Call",
    "Device",
    "Dispatcher",
    "Duty",
    "Event",
    "Household",
    "HouseholdPairing",
    "HouseholdResident",
    "IdempotencyKey",
    "Notification",
    "Offer",
    "OfferDecline",
    "OtpCode",
    "Person",
    "PushDelivery",
    "QuotaReminder",
    "RateLimitHit",
    "Rating",
    "RefreshToken",
    "Screen",
    "SeedState",
    "SmsOutbox",
    "StarRanking",
    "Team",
    "TeamMember",
    "metadata",
]
