"""Races on identity, with real commits and real concurrency: the app runs on
its own connection pool, so simultaneous requests are simultaneous
transactions in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.log import RequestOrigin
from app.core.config import Settings
from app.core.db import make_sessionmaker, session_scope
from app.core.errors import Forbidden
from app.identity.auth import PersonPrincipal
from app.main import create_app
from app.models.auth import DispatcherArea
from app.models.enums import AreaLevel, MemberKind
from app.models.team import MemberCreate
from app.teams import admin
from tests.principals import next_phone, team_in_community
from tests.problems import assert_problem


@pytest.fixture
async def live_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as deployed: every request commits its own transaction."""
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


@pytest.fixture
async def cleanup(engine: AsyncEngine) -> AsyncIterator[list[str]]:
    phones: list[str] = []
    yield phones
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM person WHERE phone = ANY(:p)"), {"p": phones})
        await conn.execute(text("DELETE FROM otp_code WHERE phone = ANY(:p)"), {"p": phones})
        await conn.execute(text("DELETE FROM rate_limit_hit"))


async def _login(http: httpx.AsyncClient, phone: str) -> dict[str, str]:
    code = (await http.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
    response = await http.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert response.status_code == 200, response.text
    pair: dict[str, str] = response.json()
    return pair


async def test_one_refresh_token_sent_twice_at_once_succeeds_once(
    live_client: httpx.AsyncClient, cleanup: list[str]
) -> None:
    for _ in range(15):
        phone = next_phone()
        cleanup.append(phone)
        pair = await _login(live_client, phone)
        body = {"refresh_token": pair["refresh_token"]}
        first, second = await asyncio.gather(
            live_client.post("/api/v1/auth/refresh", json=body),
            live_client.post("/api/v1/auth/refresh", json=body),
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 401], (first.text, second.text)
        loser = first if first.status_code == 401 else second
        assert_problem(loser, 401, "refresh_token_reused")


ClientAt = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def client_at(settings: Settings) -> AsyncIterator[ClientAt]:
    """Clients of the app as deployed, each with its own address; codes may be
    asked for as often as the hourly limits allow."""
    app = create_app(settings.model_copy(update={"otp_resend_seconds": 0}))
    clients: list[httpx.AsyncClient] = []

    def at(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=(address, 50000)
        )
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://t"))
        return clients[-1]

    async with LifespanManager(app):
        yield at
        for http in clients:
            await http.aclose()


async def test_simultaneous_wrong_guesses_stop_at_the_limit(
    client_at: ClientAt, cleanup: list[str], engine: AsyncEngine
) -> None:
    phone = next_phone()
    cleanup.append(phone)
    owner = client_at("198.51.100.10")
    sent = await owner.post("/api/v1/auth/otp", json={"phone": phone})
    code = sent.json()["debug_code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    # Four addresses, three tries each: as many as they may make, more than the code allows.
    guessers = [client_at(f"203.0.113.{n}") for n in range(4)]
    guesses = await asyncio.gather(
        *(
            http.post("/api/v1/auth/token", json={"phone": phone, "code": wrong})
            for http in guessers
            for _ in range(3)
        )
    )
    assert all(g.status_code == 401 for g in guesses), [g.text for g in guesses]
    async with engine.connect() as conn:
        attempts, closed = (
            await conn.execute(
                text("SELECT attempts, closed_at IS NOT NULL FROM otp_code WHERE phone = :p"),
                {"p": phone},
            )
        ).one()
    assert attempts == 5, "every try counted, none beyond the limit"
    assert closed
    right = await owner.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert_problem(right, 401, "invalid_otp")


async def test_an_attacker_asking_for_codes_and_guessing_cannot_stop_the_owner(
    client_at: ClientAt, cleanup: list[str], engine: AsyncEngine
) -> None:
    """While the owner types the code they received, someone else asks for
    more codes for the phone and guesses from one address, all at once."""
    owner = client_at("198.51.100.10")
    attacker = client_at("203.0.113.66")
    logins: list[int] = []
    guessed: list[list[int]] = []
    for _ in range(10):
        phone = next_phone()
        cleanup.append(phone)
        code = (await owner.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        *noise, login = await asyncio.gather(
            attacker.post("/api/v1/auth/otp", json={"phone": phone}),
            attacker.post("/api/v1/auth/otp", json={"phone": phone}),
            *(
                attacker.post("/api/v1/auth/token", json={"phone": phone, "code": wrong})
                for _ in range(6)
            ),
            owner.post("/api/v1/auth/token", json={"phone": phone, "code": code}),
        )
        assert [n.status_code for n in noise[:2]] == [202, 202]
        logins.append(login.status_code)
        guessed.append(sorted(n.status_code for n in noise[2:]))
    assert logins == [200] * 10
    # Guesses after the owner's login find no live code: 401, and not counted.
    assert all(set(statuses) <= {401, 429} for statuses in guessed), guessed
    async with engine.connect() as conn:
        most = (
            await conn.execute(
                text("SELECT max(attempts) FROM otp_code WHERE phone = ANY(:p)"), {"p": cleanup}
            )
        ).scalar_one()
    assert most <= 3, "one address spent at most its three tries on any code"


async def test_simultaneous_guesses_from_one_address_stop_at_its_limit(
    client_at: ClientAt, cleanup: list[str]
) -> None:
    phone = next_phone()
    cleanup.append(phone)
    owner = client_at("198.51.100.10")
    attacker = client_at("203.0.113.66")
    code = (await owner.post("/api/v1/auth/otp", json={"phone": phone})).json()["debug_code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    guesses = await asyncio.gather(
        *(
            attacker.post("/api/v1/auth/token", json={"phone": phone, "code": wrong})
            for _ in range(12)
        )
    )
    assert sorted(g.status_code for g in guesses) == [401] * 3 + [429] * 9
    login = await owner.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text


async def test_the_per_phone_limit_holds_under_concurrency(
    settings: Settings, cleanup: list[str]
) -> None:
    app = create_app(settings.model_copy(update={"otp_resend_seconds": 0}))
    phone = next_phone()
    cleanup.append(phone)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answers = await asyncio.gather(
                *(http.post("/api/v1/auth/otp", json={"phone": phone}) for _ in range(9))
            )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] * 5 + [429] * 4


async def test_two_dispatchers_enrolling_one_phone_at_once_cannot_both_have_it(
    engine: AsyncEngine, settings: Settings, cleanup: list[str]
) -> None:
    """Each checks that the person belongs to no other area, then enrols:
    without a lock on the person both checks pass and both enrol."""
    factory = make_sessionmaker(engine)
    async with factory() as session:
        team_x, community_1 = await team_in_community(session, 0)
        team_y, community_2 = await team_in_community(session, 1)

    def dispatcher_of(area: uuid.UUID) -> PersonPrincipal:
        return PersonPrincipal(
            person_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            display_name="调度",
            phone=next_phone(),
            is_admin=False,
            teams=(),
            dispatcher_area=DispatcherArea(id=area, name="社区", level=AreaLevel.community),
        )

    async def enrol(actor: PersonPrincipal, team: uuid.UUID, phone: str) -> uuid.UUID | None:
        body = MemberCreate(phone=phone, display_name="队员", kind=MemberKind.part_time)
        try:
            async with session_scope(factory) as session:
                await admin.add_member(session, settings, actor, team, body, RequestOrigin())
        except Forbidden:
            return None
        return team

    d1, d2 = dispatcher_of(community_1), dispatcher_of(community_2)
    for round_ in range(12):
        phone = next_phone()
        cleanup.append(phone)
        if round_ % 2:  # a resident who logged in once, on no team yet
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO person (id, phone, display_name) VALUES (:i, :p, '居民')"),
                    {"i": uuid.uuid4(), "p": phone},
                )
        won = await asyncio.gather(enrol(d1, team_x, phone), enrol(d2, team_y, phone))
        assert sum(team is not None for team in won) == 1, won
        enrolled = text(
            "SELECT m.team_id FROM team_member m JOIN person p ON p.id = m.person_id "
            "WHERE p.phone = :p"
        )
        async with engine.connect() as conn:
            teams = (await conn.execute(enrolled, {"p": phone})).scalars().all()
        assert teams == [team for team in won if team is not None]
