"""A write is committed before its 2xx leaves the server: against a real
`python -m app serve` process, a commit made slow or made to fail by the
database itself (a deferred constraint trigger, which runs at COMMIT) shows
whether the answer waits for the commit and reports its failure.

The trigger acts only on calls carrying this test's marker note, and is
dropped at the end; the calls and the resident are deleted."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from tests.conftest import make_settings
from tests.live import Ledger, LiveServer, committed_person, park, spots

pytestmark = pytest.mark.processes

SLOW_COMMIT_S = 0.5
RADIUS_M = 400
TRIGGER_FN = "test_commit_before_answer_fn"
TRIGGER = "test_commit_before_answer"


@pytest.fixture
def settings_for_tokens(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def server(
    database_url: str, settings_for_tokens: Settings, ledger: Ledger, tmp_path: Path
) -> Iterator[LiveServer]:
    """One serving process, no background work; stopped before the ledger's
    cleanup, which this fixture depends on."""
    live = LiveServer(
        database_url,
        tmp_path / "serve.log",
        {
            "secret_key": settings_for_tokens.secret_key,
            "search_radius_m": RADIUS_M,
            "run_sweeper": "false",
            "run_push_worker": "false",
            "double_tap_seconds": 0,
            "double_tap_meters": 0,
            "max_open_calls_per_resident": 1000,
            "db_pool_size": 2,
            "db_max_overflow": 2,
        },
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
async def marker(engine: AsyncEngine) -> AsyncIterator[str]:
    """A note no other call carries; the trigger below acts on it alone."""
    note = f"commit-before-answer {uuid.uuid4()}"
    try:
        yield note
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {TRIGGER} ON call"))
            await conn.execute(text(f"DROP FUNCTION IF EXISTS {TRIGGER_FN}()"))
            await conn.execute(text("DELETE FROM call WHERE note = :n"), {"n": note})


async def at_commit(engine: AsyncEngine, note: str, action: str) -> None:
    """Run `action` (PL/pgSQL) at the commit of any transaction that inserted
    a call with this note."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"""
                CREATE FUNCTION {TRIGGER_FN}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.note = '{note}' THEN
                        {action}
                    END IF;
                    RETURN NULL;
                END $$
                """
            )
        )
        await conn.execute(
            text(
                f"""
                CREATE CONSTRAINT TRIGGER {TRIGGER} AFTER INSERT ON call
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {TRIGGER_FN}()
                """
            )
        )


async def calls_with_note(engine: AsyncEngine, note: str) -> list[uuid.UUID]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT id FROM call WHERE note = :n"), {"n": note})
        return list(result.scalars())


async def press_with_note(
    engine: AsyncEngine,
    settings: Settings,
    ledger: Ledger,
    server: LiveServer,
    note: str,
) -> tuple[httpx.Response, float]:
    """Open a call with this note; the answer and the seconds it took."""
    ((lat, lng),) = await spots(engine, 1, 0)
    await park(engine, ledger, lat, lng, RADIUS_M + 400)  # no team nearby: nobody is offered it
    resident = await committed_person(engine, settings, ledger)
    await server.wait_ready()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        started = time.monotonic()
        response = await http.post(
            "/api/v1/calls",
            json={"location": {"lat": lat, "lng": lng}, "note": note},
            headers=resident.headers,
        )
        return response, time.monotonic() - started


async def test_a_2xx_means_the_write_is_committed(
    engine: AsyncEngine,
    settings_for_tokens: Settings,
    ledger: Ledger,
    server: LiveServer,
    marker: str,
) -> None:
    await at_commit(engine, marker, f"PERFORM pg_sleep({SLOW_COMMIT_S});")
    response, took = await press_with_note(engine, settings_for_tokens, ledger, server, marker)
    # Before anything else: another connection sees the call at once.
    seen = await calls_with_note(engine, marker)

    assert response.status_code == 201, response.text
    assert seen == [uuid.UUID(response.json()["id"])], "committed before the 2xx was sent"
    assert took >= SLOW_COMMIT_S * 0.9, f"answered in {took:.3f} s, before the commit ended"


async def test_a_failed_commit_answers_5xx_problem_details(
    engine: AsyncEngine,
    settings_for_tokens: Settings,
    ledger: Ledger,
    server: LiveServer,
    marker: str,
) -> None:
    await at_commit(
        engine, marker, "RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation';"
    )
    response, _ = await press_with_note(engine, settings_for_tokens, ledger, server, marker)

    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert "refused at commit" not in response.text, "nothing internal reaches the client"
    assert problem.get("request_id") == response.headers.get("x-request-id")
    assert await calls_with_note(engine, marker) == [], "the call was never written"
