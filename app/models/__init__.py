"""Tables and API schemas. Importing this package registers every table on
`metadata`, which Alembic compares against."""

from app.models.area import Area
from app.models.base import metadata
from app.models.household import Household, HouseholdPairing
from app.models.person import Person
from app.models.seed_state import SeedState
from app.models.team import Duty, Team, TeamMember

__all__ = [
    "Area",
    "Duty",
    "Household",
    "HouseholdPairing",
    "Person",
    "SeedState",
    "Team",
    "TeamMember",
    "metadata",
]
