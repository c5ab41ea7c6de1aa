"""The command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.dbutil import PROJECT_ROOT, run_app_command


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
