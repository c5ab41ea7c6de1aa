"""Each process keeps the principals it loaded (app/identity/principals.py)
and forgets them on a NOTIFY sent by a trigger whenever what they are read
from changes: here the trigger is checked column by column against the
queries that read a principal, the cache's own rules, and the steady state
of an app on its own pool (no statement per request). Across two server
processes: tests/identity/test_principal_processes.py."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import asyncpg_dsn
from app.events import hub as live
from app.identity import api_keys, auth, principals
from app.identity.principals import Change, PrincipalCache
from app.identity.tokens import TokenClaims
from app.models.auth import TeamMembership
from app.models.enums import MemberKind
from tests import statements
from tests.conftest import make_settings
from tests.live import Ledger, committed_person, committed_team, eventually, live_app
from tests.principals import next_phone

# ---- the trigger: every column a principal is read from ---------------------------------


def _columns_read(sql: str) -> set[tuple[str, str]]:
    """(table, column) of every `alias.column` in a query, by its FROM and
    JOIN clauses; primary keys (`id`) aside, which are never updated."""
    aliases = dict(
        (alias, table) for table, alias in re.findall(r"(?:FROM|JOIN)\s+(\w+)\s+(\w+)\b", sql)
    )
    return {
        (aliases[alias], column)
        for alias, column in re.findall(r"\b(\w+)\.(\w+)\b", sql)
        if alias in aliases and column != "id"
    }


READ = _columns_read(auth._LOAD_PERSON.text) | _columns_read(live._LIVE_SESSIONS)


@asynccontextmanager
async def listening(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.add_listener(principals.CHANNEL, lambda *args: heard.put_nowait(args[-1]))
        yield heard
    finally:
        await conn.close()


async def _next(heard: asyncio.Queue[str]) -> Change:
    return Change.parse(await asyncio.wait_for(heard.get(), 5))


@pytest.fixture
async def cast(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> AsyncIterator[dict[str, Any]]:
    """Two people with a session each, a team of one, a dispatcher of an
    area of the test's own, committed; removed after."""
    settings = make_settings(database_url)
    team = await committed_team(
        engine, settings, ledger, 22.765, 113.925, members=1, complete=False
    )
    area_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO area (id, level, code, name, boundary)
                VALUES (:id, 'street', :code, '测试街道',
                        ST_Multi(ST_MakeEnvelope(0, 0, 0.01, 0.01, 4326)))
                """
            ),
            {"id": area_id, "code": f"test-{area_id.hex[:12]}"},
        )
        street = (
            await conn.execute(
                text("SELECT id FROM area WHERE level = 'street' AND id <> :a"), {"a": area_id}
            )
        ).scalar_one()
    dispatcher = await committed_person(engine, settings, ledger, dispatcher_of=area_id)
    other = await committed_person(engine, settings, ledger)
    async with engine.begin() as conn:
        session_id = (
            await conn.execute(
                text("SELECT id FROM auth_session WHERE person_id = :p"),
                {"p": other.person_id},
            )
        ).scalar_one()
    yield {
        "member": team.members[0].person_id,
        "team": team.id,
        "dispatcher": dispatcher.person_id,
        "area": area_id,
        "street": street,
        "other": other.person_id,
        "session": session_id,
    }
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM dispatcher WHERE area_id = :a"), {"a": area_id})
        await conn.execute(text("DELETE FROM area WHERE id = :a"), {"a": area_id})


# For each column a principal is read from: a write that changes it, and the
# people it must name.
WRITES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("auth_session", "revoked_at"): (
        "UPDATE auth_session SET revoked_at = now() WHERE id = :session",
        ("other",),
    ),
    ("auth_session", "person_id"): (
        "UPDATE auth_session SET person_id = :member WHERE id = :session",
        ("other", "member"),
    ),
    ("person", "display_name"): (
        "UPDATE person SET display_name = '改名' WHERE id = :other",
        ("other",),
    ),
    ("person", "phone"): ("UPDATE person SET phone = :phone WHERE id = :other", ("other",)),
    ("person", "is_admin"): ("UPDATE person SET is_admin = true WHERE id = :other", ("other",)),
    ("person", "disabled_at"): (
        "UPDATE person SET disabled_at = now() WHERE id = :other",
        ("other",),
    ),
    ("dispatcher", "area_id"): (
        "UPDATE dispatcher SET area_id = :street WHERE person_id = :dispatcher",
        ("dispatcher",),
    ),
    ("dispatcher", "person_id"): (
        "UPDATE dispatcher SET person_id = :other WHERE person_id = :dispatcher",
        ("dispatcher", "other"),
    ),
    ("area", "name"): ("UPDATE area SET name = '改名街道' WHERE id = :area", ("dispatcher",)),
    ("area", "level"): (
        "UPDATE area SET level = 'community', parent_id = :street WHERE id = :area",
        ("dispatcher",),
    ),
    ("team_member", "kind"): (
        "UPDATE team_member SET kind = 'part_time' WHERE person_id = :member",
        ("member",),
    ),
    ("team_member", "team_id"): (
        "INSERT INTO team_member (team_id, person_id, kind) VALUES (:team, :other, 'part_time')",
        ("other",),
    ),
    ("team_member", "person_id"): (
        "UPDATE team_member SET person_id = :other WHERE person_id = :member",
        ("member", "other"),
    ),
    ("team", "name"): ("UPDATE team SET name = '改名队' WHERE id = :team", ("member",)),
}


def test_every_column_a_principal_is_read_from_has_a_write_below() -> None:
    """A column added to the queries that read a principal must be added to
    WRITES, and so to the trigger, or the test below fails for it."""
    assert set(WRITES) == READ, READ ^ set(WRITES)


@pytest.mark.parametrize("column", sorted(WRITES), ids=lambda c: ".".join(c))
async def test_a_committed_change_of_a_principal_is_heard_with_whose(
    engine: AsyncEngine, database_url: str, cast: dict[str, Any], column: tuple[str, str]
) -> None:
    sql, who = WRITES[column]
    async with listening(database_url) as heard:
        async with engine.begin() as conn:
            # Not read by a principal: silent. Heard before the write below
            # if it were not (notifications come in commit order).
            await conn.execute(
                text("UPDATE person SET locale = 'en' WHERE id = :p"), {"p": cast["other"]}
            )
        async with engine.connect() as conn:
            await conn.execute(text(sql), {**cast, "phone": next_phone()})
            await conn.rollback()  # rolled back: nothing is said
        async with engine.begin() as conn:
            await conn.execute(text(sql), {**cast, "phone": next_phone()})
        change = await _next(heard)
    assert change == Change(persons=frozenset(cast[w] for w in who))


async def test_revoking_an_api_key_is_heard_and_many_people_at_once_are_everyone(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    async with AsyncSession(engine) as session:
        key = await api_keys.create(session, "test", ["areas:read"])
        await session.commit()
    try:
        async with listening(database_url) as heard:
            async with AsyncSession(engine) as session:
                await api_keys.revoke(session, key.id)
                await session.commit()
            assert await _next(heard) == Change(keys=frozenset({key.id}))

            # 101 people in one statement: too many to name.
            people = [uuid.uuid4() for _ in range(101)]
            ledger.persons.extend(people)
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO person (id, phone, display_name) VALUES (:id, :phone, 'x')"),
                    [{"id": p, "phone": next_phone()} for p in people],
                )
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE person SET display_name = 'y' WHERE id = ANY(CAST(:p AS uuid[]))"),
                    {"p": people},
                )
            assert await _next(heard) == Change(everyone=True)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM api_key WHERE id = :id"), {"id": key.id})


# ---- the cache's own rules --------------------------------------------------------------


def _principal(person_id: uuid.UUID | None = None) -> auth.PersonPrincipal:
    return auth.PersonPrincipal(
        person_id=person_id or uuid.uuid4(),
        session_id=uuid.uuid4(),
        display_name="x",
        phone="+8613800000000",
        is_admin=False,
        teams=(TeamMembership(id=uuid.uuid4(), name="t", kind=MemberKind.part_time),),
        dispatcher_area=None,
    )


def _claims(p: auth.PersonPrincipal) -> TokenClaims:
    return TokenClaims(p.person_id, p.session_id, uuid.uuid4(), datetime.now(UTC))


def test_the_cache_forgets_people_keeps_nothing_unheard_and_stays_bounded() -> None:
    cache = PrincipalCache(ttl_s=60, max_entries=3)
    a1 = _principal()
    a2 = _principal(a1.person_id)  # a second session of the same person
    b = _principal()
    cache.keep_person(a1, cache.generation)
    assert cache.person(_claims(a1)) is None, "nothing kept while not listening"
    cache.live = True
    for p in (a1, a2, b):
        cache.keep_person(p, cache.generation)
    assert cache.person(_claims(a2)) is a2
    # Another person's token never gets this session's principal.
    stranger = TokenClaims(b.person_id, a1.session_id, uuid.uuid4(), _claims(a1).expires_at)
    assert cache.person(stranger) is None

    cache.forget(Change(persons=frozenset({a1.person_id})))
    assert cache.person(_claims(a1)) is None
    assert cache.person(_claims(a2)) is None
    assert cache.person(_claims(b)) is b

    # A load that ran while a change was heard is not kept: it may have
    # read the state from before the change.
    started = cache.generation
    cache.forget(Change(persons=frozenset({uuid.uuid4()})))
    cache.keep_person(a1, started)
    assert cache.person(_claims(a1)) is None

    # Bounded: the oldest goes first.
    more = [_principal() for _ in range(3)]
    for p in more:
        cache.keep_person(p, cache.generation)
    assert len(cache) == 3
    assert cache.person(_claims(b)) is None
    assert all(cache.person(_claims(p)) is p for p in more)

    cache.forget(Change(everyone=True))
    assert len(cache) == 0


async def test_an_entry_is_used_no_longer_than_the_ttl() -> None:
    cache = PrincipalCache(ttl_s=0.05)
    cache.live = True
    p = _principal()
    cache.keep_person(p, cache.generation)
    assert cache.person(_claims(p)) is p
    await asyncio.sleep(0.1)
    assert cache.person(_claims(p)) is None


def test_payloads() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert Change.parse(f"p:{a},{b}") == Change(persons=frozenset({a, b}))
    assert Change.parse(f"k:{a}") == Change(keys=frozenset({a}))
    assert Change.parse("*") == Change(everyone=True)
    assert Change.parse("p:not-a-uuid") == Change(everyone=True)


# ---- the steady state of an app on its own pool -----------------------------------------


async def test_the_steady_state_asks_the_database_nothing_for_the_principal(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    settings = make_settings(database_url)
    person = await committed_person(engine, settings, ledger)
    async with AsyncSession(engine) as session:
        key = await api_keys.create(session, "steady", ["areas:read"])
        await session.commit()
    try:
        async with live_app(settings) as (app, http):
            cache: PrincipalCache = app.state.principals
            await eventually(_holds(lambda: cache.live), within_s=5)
            sent = statements.on_engine(app.state.engine)
            try:

                async def count() -> int:
                    return len(await sent.taken())

                assert (await http.get("/api/v1/me", headers=person.headers)).status_code == 200
                assert await count() >= 1, "the first request loads the principal"
                for _ in range(20):
                    me = await http.get("/api/v1/me", headers=person.headers)
                    assert me.status_code == 200
                    assert me.json()["teams"] == []
                assert await count() == 0

                api_key = {"X-API-Key": key.key}
                locate = {"lat": 22.77, "lng": 113.93}
                taken = []
                for _ in range(3):
                    answer = await http.get("/api/v1/areas/locate", params=locate, headers=api_key)
                    assert answer.status_code == 200
                    taken.append(await count())
                assert taken[0] == taken[1] + 1 == taken[2] + 1, "the key is read once"

                # A change committed elsewhere shows within the contract's second.
                team = await _join_a_team(engine, person.person_id)

                async def joined() -> bool:
                    me = await http.get("/api/v1/me", headers=person.headers)
                    return [t["id"] for t in me.json()["teams"]] == [str(team)]

                await eventually(joined, within_s=1.0)
                async with AsyncSession(engine) as session:
                    await api_keys.revoke(session, key.id)
                    await session.commit()

                async def refused() -> bool:
                    answer = await http.get("/api/v1/areas/locate", params=locate, headers=api_key)
                    return answer.status_code == 401

                await eventually(refused, within_s=1.0)
            finally:
                sent.stop()
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM api_key WHERE id = :id"), {"id": key.id})


async def test_a_lost_listener_forgets_everything_it_may_have_missed(
    engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    """While the listener is away a NOTIFY may be missed: nothing is served
    from the cache meanwhile, and everything is forgotten once it is back."""
    settings = make_settings(database_url)
    person = await committed_person(engine, settings, ledger)
    async with live_app(settings) as (app, http):
        cache: PrincipalCache = app.state.principals
        listener: principals.PrincipalListener = app.state.principal_listener
        await eventually(_holds(lambda: cache.live), within_s=5)
        assert (await http.get("/api/v1/me", headers=person.headers)).json()["teams"] == []
        assert len(cache) == 1

        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": principals.LISTENER_NAME},
            )
        await eventually(_holds(lambda: not cache.live), within_s=5)
        # Changed while nobody listened: this NOTIFY is lost.
        team = await _join_a_team(engine, person.person_id)
        await eventually(_holds(lambda: cache.live), within_s=10)
        assert listener.reconnects == 1
        me = await http.get("/api/v1/me", headers=person.headers)
        assert [t["id"] for t in me.json()["teams"]] == [str(team)]


def _holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


async def _join_a_team(engine: AsyncEngine, person_id: uuid.UUID) -> uuid.UUID:
    """Put the person on a seeded team, committed; the team's id."""
    async with engine.begin() as conn:
        team: uuid.UUID = (
            await conn.execute(text("SELECT id FROM team ORDER BY id LIMIT 1"))
        ).scalar_one()
        await conn.execute(
            text("INSERT INTO team_member (team_id, person_id, kind) VALUES (:t, :p, 'part_time')"),
            {"t": team, "p": person_id},
        )
    return team
