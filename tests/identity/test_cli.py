"""The command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.main import create_app
from tests.dbutil import PROJECT_ROOT, run_app_command
from tests.live import eventually
from tests.problems import assert_problem

pytestmark = pytest.mark.processes


async def test_create_admin_creates_then_promotes(database_url: str, engine: AsyncEngine) -> None:
    phone = "+86 100 9999 0001"
    first = run_app_command(database_url, "create-admin", "--phone", phone, "--name", "管理员")
    second = run_app_command(database_url, "create-admin", "--phone", "+8610099990001")
    person_id = first.stdout.strip()
    assert second.stdout.strip() == person_id
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text("SELECT phone, display_name, is_admin FROM person WHERE id = :id"),
                {"id": person_id},
            )
        ).one()
        await conn.execute(text("DELETE FROM person WHERE id = :id"), {"id": person_id})
    assert row == ("+8610099990001", "管理员", True)
    # The phone never shows up in what the command prints.
    assert "10099990001" not in first.stdout + first.stderr


def test_create_admin_refuses_a_bad_phone(database_url: str) -> None:
    with pytest.raises(RuntimeError, match=r"invalid_phone|Not a valid phone"):
        run_app_command(database_url, "create-admin", "--phone", "12345")


@pytest.mark.parametrize(
    "args",
    [
        ["seed", "--scale", "atlantis"],
        ["seed", "--scale", "guangming", "--on-duty", "1.5"],
        ["seed", "--scale", "guangming", "--teams", "0"],
        ["serve", "--workers", "0"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_exit_with_usage(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr


async def test_api_keys_are_shown_once_work_within_their_scopes_and_can_be_revoked(
    database_url: str, settings: Settings, engine: AsyncEngine
) -> None:
    made = run_app_command(
        database_url, "create-api-key", "--name", "screen", "--scopes", "areas:read"
    )
    key_id = made.stdout.split("id:")[1].split()[0]
    key = made.stdout.split("key:")[1].split()[0]
    assert key.startswith("hk_")
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT key_hash, scopes FROM api_key WHERE id = :id"), {"id": key_id}
            )
        ).one()
    assert key not in stored.key_hash, "only a digest is kept"
    assert stored.scopes == ["areas:read"]

    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = {"X-API-Key": key}
            params = {"lat": 22.77, "lng": 113.93}
            assert (
                await http.get("/api/v1/areas/locate", params=params, headers=headers)
            ).status_code == 200
            other_scope = await http.get("/api/v1/teams/nearby", params=params, headers=headers)
            assert_problem(other_scope, 403, "insufficient_scope")
            assert_problem(
                await http.get("/api/v1/me", headers=headers), 403, "api_key_not_allowed"
            )
            run_app_command(database_url, "revoke-api-key", "--id", key_id)

            # Revoked by another process: this one hears of it within 1 s.
            async def revoked() -> bool:
                answer = await http.get("/api/v1/areas/locate", params=params, headers=headers)
                return answer.status_code == 401

            await eventually(revoked, within_s=1.0)
            assert_problem(
                await http.get("/api/v1/areas/locate", params=params, headers=headers),
                401,
                "invalid_api_key",
            )
    with pytest.raises(RuntimeError, match=r"No live API key"):
        run_app_command(database_url, "revoke-api-key", "--id", key_id)


def test_create_api_key_refuses_unknown_scopes(database_url: str) -> None:
    with pytest.raises(RuntimeError, match=r"invalid choice"):
        run_app_command(database_url, "create-api-key", "--name", "x", "--scopes", "calls:write")
