"""Closed vocabularies of the organisation (BRIEF.md), stored as checked text."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class AreaLevel(StrEnum):
    street = "street"
    community = "community"
    grid_branch = "grid_branch"
    grid = "grid"


# Parent level of each level; the street is the root.
PARENT_LEVEL: dict[AreaLevel, AreaLevel | None] = {
    AreaLevel.street: None,
    AreaLevel.community: AreaLevel.street,
    AreaLevel.grid_branch: AreaLevel.community,
    AreaLevel.grid: AreaLevel.grid_branch,
}


class MemberKind(StrEnum):
    full_time = "full_time"
    part_time = "part_time"


class MemberRole(StrEnum):
    liaison = "liaison"
    server = "server"
    mediator = "mediator"
    governance_assistant = "governance_assistant"
    publicity_supervisor = "publicity_supervisor"


class Affiliation(StrEnum):
    """Where a team member comes from: the full-time grid party member, or one of
    the part-time sources the brief lists."""

    grid_party_member = "grid_party_member"
    in_service_party_member = "in_service_party_member"
    activist = "activist"
    league_member = "league_member"
    volunteer = "volunteer"
    resident = "resident"
    property_company = "property_company"
    owners_committee = "owners_committee"
    social_organisation = "social_organisation"


class Vulnerability(StrEnum):
    elderly = "elderly"
    sick = "sick"
    disabled = "disabled"
    low_income = "low_income"
    mental_health = "mental_health"


def one_of(column: str, values: type[StrEnum] | Iterable[StrEnum]) -> str:
    """A CHECK that `column` holds one of `values`: `column::text = ANY
    ('{a,b}'::text[])`. One constant, not `IN ('a', 'b')`: PostgreSQL keeps
    a CHECK as the text of its expression and reads and compiles it again on
    every statement that writes the table, and an IN list is stored as an
    array of constants, each cast (a single-row UPDATE of a table with four
    of `call`'s checks: 33-35 µs as IN lists, 21-23 as array literals;
    docs/benchmarks.md, "The checks as array literals")."""
    return f"{column}::text = ANY ({_text_array(values)})"


def none_of(column: str, values: type[StrEnum] | Iterable[StrEnum]) -> str:
    """A CHECK that `column` holds none of `values` (as `one_of`)."""
    return f"{column}::text <> ALL ({_text_array(values)})"


def _text_array(values: type[StrEnum] | Iterable[StrEnum]) -> str:
    members = values if isinstance(values, tuple | list | type) else sorted(values, key=str)
    words = [str(v.value) for v in members]
    for word in words:
        # Our enums' values: nothing an array literal would need quoted.
        if not word or any(ch in word for ch in "{},\"'\\ "):
            raise ValueError(f"{word!r} needs quoting in an array literal")
    return "'{" + ",".join(words) + "}'::text[]"


def sql_values(values: Iterable[StrEnum]) -> str:
    """`('a', 'b')`: values of an enum as SQL literals, in the order given
    (a set in sorted order), so that a predicate that a partial index must
    match is always written the same."""
    members = values if isinstance(values, tuple | list) else sorted(values, key=str)
    return "(" + ", ".join(f"'{v.value}'" for v in members) + ")"


def sql_array(values: type[StrEnum]) -> str:
    """`ARRAY['a', 'b']::varchar[]` for a containment CHECK on an array column."""
    return "ARRAY[" + ", ".join(f"'{v.value}'" for v in values) + "]::varchar[]"
