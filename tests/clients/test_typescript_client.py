"""A third party's TypeScript client, generated from openapi/openapi.json by
@hey-api/openapi-ts (pinned in clients/typescript/package-lock.json),
compiles with `tsc --strict` and runs a flow with Node against a real
server process (clients/typescript/flow.ts)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.dbutil import PROJECT_ROOT
from tests.live import Ledger, LiveServer, committed_team, park, person_with, phone_of, spots
from tests.principals import next_phone
from tests.scene import offset

pytestmark = pytest.mark.processes

PROJECT = PROJECT_ROOT / "clients" / "typescript"
BIN = PROJECT / "node_modules" / ".bin"


def _run(*command: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    done = subprocess.run(
        command,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def compiled() -> Path:
    """Generate the client and compile it with the flow, as its author would."""
    assert shutil.which("node"), "Node.js is needed (the project's machines have it)"
    assert (BIN / "openapi-ts").exists(), "run `make clients` (npm ci in clients/typescript)"
    for old in ("generated", "dist"):
        shutil.rmtree(PROJECT / old, ignore_errors=True)
    _run(str(BIN / "openapi-ts"))
    _run(str(BIN / "tsc"), "--project", "tsconfig.json")
    return PROJECT / "dist" / "flow.js"


async def test_the_generated_typescript_client_compiles_strictly_and_runs_a_flow(
    compiled: Path, engine: AsyncEngine, database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    settings = make_settings(database_url)
    ((lat, lng),) = await spots(engine, 1, 2000)
    await park(engine, ledger, lat, lng, 1500)
    team = await committed_team(engine, settings, ledger, *offset(lat, lng, 30, 0), members=3)
    resident_phone = next_phone()
    server = LiveServer(
        database_url,
        tmp_path / "server.log",
        {"search_radius_m": 400, "double_tap_seconds": 0, "run_sweeper": "false"},
    )
    try:
        await server.wait_ready()
        out = _run(
            "node",
            str(compiled),
            env={
                "HULIAN_URL": server.url,
                "HULIAN_LAT": str(lat),
                "HULIAN_LNG": str(lng),
                "HULIAN_RESIDENT": resident_phone,
                "HULIAN_VOLUNTEER": await phone_of(engine, team.members[0].person_id),
                "HULIAN_TEAMMATE": await phone_of(engine, team.members[1].person_id),
            },
            timeout=60,
        )
    finally:
        server.stop()
        resident = await person_with(engine, resident_phone)
        if resident is not None:
            ledger.persons.append(resident)
    assert json.loads(out.strip().splitlines()[-1]) == {
        "steps": ["accepted", "en_route", "on_site", "resolved"],
        "declined": True,
        "cancelled": "cancelled",
        "code": "outside_service_area",
    }
