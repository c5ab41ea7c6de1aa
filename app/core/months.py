"""Months of the organisation's rules (`YYYY-MM`, API.md 1.1), counted in the
district's time zone (`TIMEZONE`): the monthly quota, the stars and the
reports all read a month as the same half-open interval of instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query

from app.core.errors import Unprocessable

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def start(self, tz: ZoneInfo) -> datetime:
        """The first instant of the month in the district (aware, in UTC)."""
        return datetime(self.year, self.month, 1, tzinfo=tz).astimezone(UTC)

    def end(self, tz: ZoneInfo) -> datetime:
        """The first instant after the month (the next month's start)."""
        return self.next().start(tz)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @classmethod
    def of(cls, instant: datetime, tz: ZoneInfo) -> Month:
        """The month an instant falls in, in the district."""
        local = instant.astimezone(tz)
        return cls(local.year, local.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`, or 422 `invalid_month`."""
        found = _MONTH.match(text)
        if found is None or int(found.group(1)) < 2000:
            raise Unprocessable(
                f"month must be YYYY-MM (from 2000-01), not {text!r}.", code="invalid_month"
            )
        return cls(int(found.group(1)), int(found.group(2)))


# `?month=` of the organisation's lists; left out it means the current month.
MonthQuery = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="the month, YYYY-MM in the district's time zone; the current month "
        "when left out",
        examples=["2026-11"],
    ),
]


def chosen(month: str | None, tz: ZoneInfo, now: datetime | None = None) -> Month:
    """The month a `?month=` asks for: the given one, else the current one."""
    if month is None:
        return Month.of(now or datetime.now(UTC), tz)
    return Month.parse(month)
