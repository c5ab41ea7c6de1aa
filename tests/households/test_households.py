"""Households and pairing through the API: recording, pairing limits, who
may read a household (and the audit row of every read), the audit log."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.principals import Cast, bearer, make_cast, make_person, next_phone, token_for
from tests.problems import assert_problem
from tests.scene import make_team

ADMIN_HOUSEHOLDS = "/api/v1/admin/households"


async def _team_base(session: AsyncSession, team_id: uuid.UUID) -> dict[str, float]:
    row = (
        await session.execute(
            text("SELECT ST_Y(base::geometry), ST_X(base::geometry) FROM team WHERE id = :id"),
            {"id": team_id},
        )
    ).one()
    return {"lat": row[0], "lng": row[1]}


async def _household(
    client: httpx.AsyncClient, cast: Cast, session: AsyncSession, **body: Any
) -> dict[str, Any]:
    """A household at team X's base (community 1), made by the admin."""
    payload = {
        "address": "光明街道测试小区1栋1单元101室",
        "location": await _team_base(session, cast.team_x),
        "tags": ["elderly", "low_income"],
        **body,
    }
    answer = await client.post(ADMIN_HOUSEHOLDS, json=payload, headers=cast.headers["admin"])
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def _party_member(session: AsyncSession, team_id: uuid.UUID, name: str) -> uuid.UUID:
    person_id = await make_person(session, name)
    await session.execute(
        text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'full_time')"),
        {"t": team_id, "p": person_id},
    )
    return person_id


async def _audit_rows(session: AsyncSession, household_id: str) -> list[Any]:
    return list(
        (
            await session.execute(
                text(
                    "SELECT actor_person_id, action, detail FROM audit_log"
                    " WHERE target_type = 'household' AND target_id = :h ORDER BY id"
                ),
                {"h": household_id},
            )
        ).all()
    )


async def test_recording_a_household_locates_it_and_masks_its_residents(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    phone = next_phone()
    created = await _household(
        client, cast, session, residents=[phone, phone], tags=["mental_health", "elderly", "sick"]
    )
    assert created["tags"] == ["elderly", "sick", "mental_health"]
    assert created["grid"]["id"]
    [resident] = created["residents"]
    assert resident["phone_masked"] == f"{phone[3:6]}****{phone[-4:]}"
    assert phone not in str(created)
    assert created["paired_members"] == []
    # The resident is a person now, linked to the household.
    linked = (
        await session.execute(
            text(
                "SELECT r.household_id FROM household_resident r JOIN person p"
                " ON p.id = r.person_id WHERE p.phone = :phone"
            ),
            {"phone": phone},
        )
    ).scalar_one()
    assert str(linked) == created["id"]
    # A resident belongs to one household.
    again = await client.post(
        ADMIN_HOUSEHOLDS,
        json={
            "address": "另一户",
            "location": created["location"],
            "tags": ["disabled"],
            "residents": [phone],
        },
        headers=cast.headers["admin"],
    )
    assert_problem(again, 409, "already_resident")
    rows = await _audit_rows(session, created["id"])
    assert [row.action for row in rows] == ["household.created"]


async def test_where_a_household_may_be_recorded(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    here = await _team_base(session, cast.team_x)
    body = {"address": "某户", "location": here, "tags": ["elderly"]}
    outside = await client.post(
        ADMIN_HOUSEHOLDS,
        json={**body, "location": {"lat": 10.0, "lng": 10.0}},
        headers=cast.headers["admin"],
    )
    assert_problem(outside, 422, "outside_service_area")
    other = await client.post(ADMIN_HOUSEHOLDS, json=body, headers=cast.headers["dispatcher_c2"])
    assert_problem(other, 403, "outside_your_area")
    own = await client.post(ADMIN_HOUSEHOLDS, json=body, headers=cast.headers["dispatcher_c1"])
    assert own.status_code == 201, own.text
    unknown_tag = await client.post(
        ADMIN_HOUSEHOLDS, json={**body, "tags": ["rich"]}, headers=cast.headers["admin"]
    )
    assert_problem(unknown_tag, 422, "validation_error")
    volunteer = await client.post(ADMIN_HOUSEHOLDS, json=body, headers=cast.headers["volunteer_x"])
    assert_problem(volunteer, 403, "not_staff")


async def test_pairing_limits_and_the_minimum_reported(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    member = await _party_member(session, cast.team_x, "结对党员")
    households = [await _household(client, cast, session) for _ in range(6)]
    answers = []
    for household in households[:5]:
        answer = await client.post(
            f"{ADMIN_HOUSEHOLDS}/{household['id']}/pairings",
            json={"person_id": str(member)},
            headers=cast.headers["dispatcher_c1"],
        )
        assert answer.status_code == 201, answer.text
        answers.append(answer.json())
    assert [a["pairings_count"] for a in answers] == [1, 2, 3, 4, 5]
    assert [a["below_minimum"] for a in answers] == [True, True, False, False, False]
    assert answers[0]["minimum"] == 3
    assert answers[0]["maximum"] == 5
    sixth = await client.post(
        f"{ADMIN_HOUSEHOLDS}/{households[5]['id']}/pairings",
        json={"person_id": str(member)},
        headers=cast.headers["admin"],
    )
    assert_problem(sixth, 409, "pairing_limit")
    twice = await client.post(
        f"{ADMIN_HOUSEHOLDS}/{households[0]['id']}/pairings",
        json={"person_id": str(member)},
        headers=cast.headers["admin"],
    )
    assert_problem(twice, 409, "already_paired")
    # Ending one pairing makes room again.
    gone = await client.delete(
        f"{ADMIN_HOUSEHOLDS}/{households[0]['id']}/pairings/{member}",
        headers=cast.headers["admin"],
    )
    assert gone.status_code == 204
    again = await client.delete(
        f"{ADMIN_HOUSEHOLDS}/{households[0]['id']}/pairings/{member}",
        headers=cast.headers["admin"],
    )
    assert_problem(again, 404, "not_paired")
    sixth = await client.post(
        f"{ADMIN_HOUSEHOLDS}/{households[5]['id']}/pairings",
        json={"person_id": str(member)},
        headers=cast.headers["admin"],
    )
    assert sixth.status_code == 201
    assert sixth.json()["pairings_count"] == 5


async def test_only_party_members_are_paired(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    household = await _household(client, cast, session)
    url = f"{ADMIN_HOUSEHOLDS}/{household['id']}/pairings"
    # Resident A is on no team; volunteer X is a part-time member, not
    # recorded as a party member.
    for who in ("resident_a", "volunteer_x"):
        answer = await client.post(
            url, json={"person_id": str(cast.person_ids[who])}, headers=cast.headers["admin"]
        )
        assert_problem(answer, 422, "not_a_party_member")
    await session.execute(
        text("UPDATE person SET is_party_member = true WHERE id = :p"),
        {"p": cast.person_ids["volunteer_x"]},
    )
    recorded = await client.post(
        url,
        json={"person_id": str(cast.person_ids["volunteer_x"])},
        headers=cast.headers["admin"],
    )
    assert recorded.status_code == 201, recorded.text
    # A dispatcher pairs only members of its area's teams, with households
    # of its area.
    elsewhere = await _party_member(session, cast.team_y, "别处党员")
    refused = await client.post(
        url, json={"person_id": str(elsewhere)}, headers=cast.headers["dispatcher_c1"]
    )
    assert_problem(refused, 403, "outside_your_area")
    not_theirs = await client.post(
        url, json={"person_id": str(elsewhere)}, headers=cast.headers["dispatcher_c2"]
    )
    assert_problem(not_theirs, 404, "household_not_found")


async def test_who_may_read_a_household_and_every_read_is_audited(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    household = await _household(client, cast, session, residents=[next_phone()])
    paired = await _party_member(session, cast.team_x, "结对党员")
    other_member = await _party_member(session, cast.team_x, "同队党员")
    answer = await client.post(
        f"{ADMIN_HOUSEHOLDS}/{household['id']}/pairings",
        json={"person_id": str(paired)},
        headers=cast.headers["admin"],
    )
    assert answer.status_code == 201
    headers = {
        **cast.headers,
        "paired": bearer(await token_for(session, settings, paired)),
        "other_member": bearer(await token_for(session, settings, other_member)),
    }
    expected = {
        "paired": 200,
        "other_member": 404,
        "volunteer_x": 404,
        "resident_a": 404,
        "dispatcher_c2": 404,
        "dispatcher_c1": 200,
        "admin": 200,
    }
    url = f"{ADMIN_HOUSEHOLDS}/{household['id']}"
    before = len(await _audit_rows(session, household["id"]))
    readers = []
    for who, status in expected.items():
        read = await client.get(url, headers=headers[who])
        assert read.status_code == status, (who, read.text)
        if status == 200:
            body = read.json()
            assert body["address"] == household["address"]
            assert body["tags"] == ["elderly", "low_income"]
            assert body["paired_members"] == [
                {"person_id": str(paired), "display_name": "结对党员"}
            ]
            assert "phone" not in body["residents"][0]
            readers.append(who)
        elif status == 404:
            assert_problem(read, 404, "household_not_found")
            assert household["address"] not in read.text
    rows = (await _audit_rows(session, household["id"]))[before:]
    ids = {
        "paired": paired,
        "dispatcher_c1": cast.person_ids["dispatcher_c1"],
        "admin": cast.person_ids["admin"],
    }
    # One row per read that was answered, none for a refused one.
    assert [(row.action, row.actor_person_id) for row in rows] == [
        ("household.read", ids[who]) for who in readers
    ]
    assert [row.detail["as"] for row in rows] == ["paired", "staff", "admin"]

    # GET /me/households: the paired member's households, each read audited.
    mine = await client.get("/api/v1/me/households", headers=headers["paired"])
    assert mine.status_code == 200
    assert [h["id"] for h in mine.json()["data"]] == [household["id"]]
    assert mine.json()["data"][0]["tags"] == ["elderly", "low_income"]
    last = (await _audit_rows(session, household["id"]))[-1]
    assert (last.action, last.actor_person_id, last.detail["via"]) == (
        "household.read",
        paired,
        "me/households",
    )
    nothing = await client.get("/api/v1/me/households", headers=headers["other_member"])
    assert nothing.json() == {"data": [], "next_cursor": None}

    # The audit log of the household: admin, and the dispatcher of its area.
    audit_url = "/api/v1/admin/audit"
    subject = {"subject": f"household:{household['id']}"}
    log = await client.get(audit_url, params=subject, headers=headers["admin"])
    assert log.status_code == 200
    entries = log.json()["data"]
    assert entries[0]["action"] == "household.read"
    assert entries[0]["actor_id"] == str(paired)
    assert entries[0]["subject"] == subject["subject"]
    assert {"id", "at", "actor_id", "action", "subject", "detail"} == set(entries[0])
    assert entries[-1]["action"] == "household.created"
    page = await client.get(audit_url, params={**subject, "limit": 2}, headers=headers["admin"])
    assert len(page.json()["data"]) == 2
    rest = await client.get(
        audit_url,
        params={**subject, "limit": 100, "cursor": page.json()["next_cursor"]},
        headers=headers["admin"],
    )
    assert [e["id"] for e in page.json()["data"] + rest.json()["data"]] == [
        e["id"] for e in entries
    ]
    own = await client.get(audit_url, params=subject, headers=headers["dispatcher_c1"])
    assert own.status_code == 200
    assert len(own.json()["data"]) == len(entries)
    other = await client.get(audit_url, params=subject, headers=headers["dispatcher_c2"])
    assert_problem(other, 404, "household_not_found")
    everything = await client.get(audit_url, headers=headers["dispatcher_c1"])
    assert_problem(everything, 403, "subject_required")
    member = await client.get(audit_url, params=subject, headers=headers["paired"])
    assert_problem(member, 403, "not_staff")
    bad = await client.get(audit_url, params={"cursor": "@@"}, headers=headers["admin"])
    assert_problem(bad, 422, "invalid_cursor")


async def test_shortfalls_list_members_below_the_minimum(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    cast = await make_cast(session, settings)
    member = await _party_member(session, cast.team_x, "缺额党员")
    household = await _household(client, cast, session)
    await client.post(
        f"{ADMIN_HOUSEHOLDS}/{household['id']}/pairings",
        json={"person_id": str(member)},
        headers=cast.headers["admin"],
    )
    url = "/api/v1/dispatch/pairing-shortfalls"
    own = await client.get(url, headers=cast.headers["dispatcher_c1"])
    assert own.status_code == 200
    found = [row for row in own.json()["data"] if row["person_id"] == str(member)]
    assert [(r["pairings_count"], r["short_by"]) for r in found] == [(1, 2)]
    assert found[0]["team"]["id"] == str(cast.team_x)
    # Seeded party members all look after 3 to 5 households.
    seeded = (
        await session.execute(
            text(
                "SELECT count(*) FROM person p WHERE p.is_party_member AND"
                " (SELECT count(*) FROM household_pairing x WHERE x.person_id = p.id) < 3"
            )
        )
    ).scalar_one()
    assert seeded == 0
    other = await client.get(url, headers=cast.headers["dispatcher_c2"])
    assert str(member) not in other.text
    assert "address" not in other.text


async def test_team_scene_members_are_no_party_members_unless_full_time(
    session: AsyncSession, settings: Settings
) -> None:
    """The definition, as SQL sees it: a scene team's first member is
    full-time (a party member), the others part-time (not)."""
    team = await make_team(session, settings, 22.77, 113.93, members=2, on_duty=0, complete=False)
    kinds = (
        await session.execute(
            text("SELECT kind FROM team_member WHERE team_id = :t ORDER BY kind"), {"t": team.id}
        )
    ).scalars()
    assert list(kinds) == ["full_time", "part_time"]
