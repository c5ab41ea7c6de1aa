"""The load harness at tiny scale (issue 7), so it cannot rot: it seeds its
own database, serves, drives a few calls end to end, writes its report, and
cleans up its database and server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import psutil
import pytest

from bench.infra import PROJECT_ROOT, admin_url_from_env

pytestmark = pytest.mark.processes


async def _databases_named(name: str) -> int:
    conn = await asyncpg.connect(admin_url_from_env())
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", name
        )
        return count
    finally:
        await conn.close()


def _children_serving() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "serve" in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_a_tiny_bench_run_reports_sane_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [
        sys.executable,
        "-m",
        "bench",
        "run",
        "--teams",
        "300",
        "--rate",
        "2",
        "--duration",
        "3",
        "--volunteers",
        "20",
        "--workers",
        "1",
        "--floor-seconds",
        "0.5",
        "--accept-min",
        "0.1",
        "--accept-max",
        "0.3",
        "--drain",
        "5",
        # A second of the closed loop, then the press floor (target 2) on
        # the same database: the floor runs the app's own statements, so a
        # statement that gains a parameter must not break it unseen.
        "--saturation-seconds",
        "1",
        # A district's past first: its rows must satisfy the schema's rules.
        "--history",
        "200",
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENCH_ADMIN_URL": admin_url_from_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "run.json").read_text())
    load = result["load"]
    assert load["calls_created"] > 0
    assert load["error_count"] == 0, load["errors"]
    for key in ("post_calls", "press_to_offer", "accept_to_call_updated"):
        assert load[key]["count"] > 0, key
        assert 0 < load[key]["p50_ms"] <= load[key]["p99_ms"] < 30_000, key
    assert result["setup"]["history_s"] >= 0
    assert result["resources"]["server_peak_rss_mib"] > 0
    assert result["floors"]["healthz"]["rps"] > 0
    assert result["floors"]["nearest_sql"]["qps"] > 0
    # Both closed loops: the whole loop and presses alone (target 2's).
    assert result["calls_saturation"]["rps"] > 0
    assert result["calls_saturation_presses"]["rps"] > 0
    # The presses were offered, not turned away cheaper (no team found).
    assert result["calls_saturation_presses"]["answered_states"].get("offered", 0) > 0
    assert result["floors"]["press_sql"]["presses_per_s"] > 0
    # CPU per press on both sides of target 2's ratio: a press costs the
    # server more than the floor's asyncpg client, and both cost something.
    server_cpu = result["calls_saturation_presses"]["server_cpu_ms_per_call"]
    assert server_cpu > result["floors"]["press_sql"]["client_cpu_ms_per_press"] > 0
    ratios = result["ratios"]
    assert ratios["POST /calls closed-loop, presses alone ÷ press SQL floor (16 each)"] > 0
    assert ratios["POST /calls closed-loop, whole loop ÷ press SQL floor (16 each)"] > 0
    assert result["server_tracebacks"] == 0
    # The load came from two generator processes, each metered.
    generator = result["generator"]
    assert generator["processes"] == 2
    assert len(generator["pids"]) == 2
    assert len(generator["generators"]) == 2
    for meter in generator["generators"]:
        assert meter["cpu_percent"] > 0
        assert meter["elapsed_s"] > 2
    assert result["latency_valid"] is not generator["saturated"]
    assert (out / "run.md").read_text().startswith("Command: `python -m bench run")
    assert (out / "run.png").stat().st_size > 1000
    # Cleaned up: its database is gone, and so is its server.
    assert asyncio.run(_databases_named(result["database"])) == 0
    assert _children_serving() == []
    assert not [pid for pid in generator["pids"] if psutil.pid_exists(pid)]
