"""What a seed is asked for, and what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.seed.population import DEFAULT_TEAMS, MAX_TEAMS

SCALES = ("guangming",)


class SeedRefused(SystemExit):
    """The seed will not run; the message says why (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"seed: {message}")


@dataclass(frozen=True)
class SeedOptions:
    scale: str
    seed: int
    teams: int | None = None  # None: the district's 270
    on_duty: float = 0.3
    replace: bool = False

    @property
    def team_count(self) -> int:
        return DEFAULT_TEAMS if self.teams is None else self.teams

    def params(self) -> dict[str, Any]:
        """What seed_state records: the same params mean the same rows."""
        return {
            "scale": self.scale,
            "seed": self.seed,
            "teams": self.team_count,
            "on_duty": self.on_duty,
        }

    def check(self) -> None:
        if self.scale not in SCALES:
            raise SeedRefused(f"unknown scale {self.scale!r} (known: {', '.join(SCALES)})")
        if not 1 <= self.team_count <= MAX_TEAMS:
            raise SeedRefused(f"--teams must be between 1 and {MAX_TEAMS:,}")
        if not 0.0 <= self.on_duty <= 1.0:
            raise SeedRefused("--on-duty must be between 0 and 1")


def describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={params.get(key)!r}" for key in ("scale", "seed", "teams", "on_duty"))


@dataclass(frozen=True)
class SeedReport:
    """`seeded` is False when the same seed was already there (nothing written)."""

    seeded: bool
    params: dict[str, Any]
    seconds: float
    # Rows written per table, and "party_members"; empty when nothing was seeded.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if not self.seeded:
            return (
                f"already seeded ({describe(self.params)}); "
                "on-duty positions refreshed, nothing else to do"
            )
        r = self.counts
        return (
            f"seeded the demo district ({describe(self.params)}) in {self.seconds:.1f} s: "
            f"{r.get('area', 0):,} areas, {r.get('team', 0):,} teams, "
            f"{r.get('team_member', 0):,} members ({r.get('party_members', 0):,} party members, "
            f"{r.get('duty', 0):,} on duty), {r.get('household', 0):,} households, "
            f"{r.get('household_pairing', 0):,} pairings, "
            f"{r.get('activity', 0):,} activities"
        )
