"""The star formula: the one place that says how a member's month becomes
the two scores of the monthly awards (docs/organisation.md, "Monthly stars").

Each score is a sum of parts, each part `value × weight = points`, and every
part is kept (the breakdown) so a branch secretary can explain a score to the
member line by line. The weights are settings (`STAR_WEIGHT_*`).

Service Star (服务之星), serving residents (weight: STAR_WEIGHT_…):
    resolved_calls         calls the member resolved, not disputed    (RESOLVED_CALL)
    ratings                Σ (stars − 3) of the ratings of the calls
                           the member resolved                        (RATING)
    fast_responses         of those not disputed, offers the member
                           accepted within STAR_FAST_RESPONSE_SECONDS (FAST_RESPONSE)
    service_activities     logged visit and hardship activities       (SERVICE_ACTIVITY)
    disputes               calls of the member the caller disputed    (DISPUTE, < 0)

Governance Star (治理之星), governance work:
    governance_activities  logged mediation, safety, affairs          (GOVERNANCE_ACTIVITY)
    governance_calls       resolved mediation, safety, affairs calls,
                           not disputed                               (GOVERNANCE_CALL)
    events                 logged community events                    (EVENT)
    disputes               as above                                   (DISPUTE, < 0)

A ranking lists the members whose score is above 0, best first: by score,
then by the month's activities (more work first), then by person id (as
text, ascending), so equal members always come in the same order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.core.config import Settings
from app.models.activity import ActivityKind

# Which logged activities count for which star.
SERVICE_KINDS = frozenset({ActivityKind.visit, ActivityKind.hardship})
GOVERNANCE_KINDS = frozenset({ActivityKind.mediation, ActivityKind.safety, ActivityKind.affairs})
EVENT_KINDS = frozenset({ActivityKind.event})
# A rating of this many stars neither adds nor subtracts.
NEUTRAL_STARS = 3


@dataclass(frozen=True)
class MemberMonth:
    """What a member did in a month, as the formula reads it (app/stars/service.py
    counts it from the activities, ratings and offers)."""

    person_id: uuid.UUID
    display_name: str
    team_id: uuid.UUID
    team_name: str
    activities: int  # every activity of the month: the tie-break
    resolved_calls: int  # activities of calls (source call), not disputed
    governance_calls: int  # of those, of the governance kinds
    rating_points: int  # Σ (stars − NEUTRAL_STARS) over ratings of the month's calls
    fast_responses: int  # of the month's calls, accepted within the fast time
    service_activities: int  # logged, SERVICE_KINDS
    governance_activities: int  # logged, GOVERNANCE_KINDS
    events: int  # logged, EVENT_KINDS
    disputes: int  # activities of calls the caller disputed


@dataclass(frozen=True)
class Weights:
    resolved_call: int
    rating: int
    fast_response: int
    service_activity: int
    governance_activity: int
    governance_call: int
    event: int
    dispute: int

    @classmethod
    def of(cls, settings: Settings) -> Weights:
        return cls(
            resolved_call=settings.star_weight_resolved_call,
            rating=settings.star_weight_rating,
            fast_response=settings.star_weight_fast_response,
            service_activity=settings.star_weight_service_activity,
            governance_activity=settings.star_weight_governance_activity,
            governance_call=settings.star_weight_governance_call,
            event=settings.star_weight_event,
            dispute=settings.star_weight_dispute,
        )


@dataclass(frozen=True)
class Part:
    value: int
    weight: int

    @property
    def points(self) -> int:
        return self.value * self.weight


@dataclass(frozen=True)
class Score:
    parts: dict[str, Part]

    @property
    def total(self) -> int:
        return sum(part.points for part in self.parts.values())


def scores(m: MemberMonth, w: Weights) -> tuple[Score, Score]:
    """The formula: a member's month as its (Governance Star, Service Star)
    scores, each with its parts."""
    return _governance(m, w), _service(m, w)


def _service(m: MemberMonth, w: Weights) -> Score:
    return Score(
        {
            "resolved_calls": Part(m.resolved_calls, w.resolved_call),
            "ratings": Part(m.rating_points, w.rating),
            "fast_responses": Part(m.fast_responses, w.fast_response),
            "service_activities": Part(m.service_activities, w.service_activity),
            "disputes": Part(m.disputes, w.dispute),
        }
    )


def _governance(m: MemberMonth, w: Weights) -> Score:
    return Score(
        {
            "governance_activities": Part(m.governance_activities, w.governance_activity),
            "governance_calls": Part(m.governance_calls, w.governance_call),
            "events": Part(m.events, w.event),
            "disputes": Part(m.disputes, w.dispute),
        }
    )


def rank_key(score: Score, m: MemberMonth) -> tuple[int, int, str]:
    """The order of a ranking: higher score, then more activities, then
    person id as text (ascending): never two members in an undecided order."""
    return (-score.total, -m.activities, str(m.person_id))
