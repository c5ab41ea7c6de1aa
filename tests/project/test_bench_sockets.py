"""Issue 13's curves against idle sockets at tiny scale, so they cannot rot:
`python -m bench scale sockets` (memory per idle socket, target 5, and the
server's CPU per event with the sockets open, target 3) and
`python -m bench.fanout` (the hub's delivery alone, in process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.infra import PROJECT_ROOT, admin_url_from_env


def _run(*argv: str, timeout: float) -> None:
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENCH_ADMIN_URL": admin_url_from_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.processes
def test_the_sockets_curve_measures_presses_beside_idle_sockets(tmp_path: Path) -> None:
    out = tmp_path / "sockets"
    _run(
        "-m",
        "bench",
        "scale",
        "sockets",
        "--sockets",
        "10,30",
        "--presses",
        "8",
        "--out",
        str(out),
        timeout=300,
    )
    rows: list[dict[str, Any]] = json.loads((out / "sockets.json").read_text())
    assert [row["sockets"] for row in rows] == [10, 30]
    for row in rows:
        # Every press was answered as made, and each wrote its call's events
        # (born, then moved on: nobody is on duty in this district).
        assert row["press_statuses"] == {"201": 8}
        assert row["press_events"] >= 2 * 8
        assert row["kib_per_socket"] > 0
        # (Not that the CPU is > 0: the server's CPU is read in clock ticks of
        # 10 ms, and eight presses may fall within one or two.)
        assert row["server_cpu_us_per_event"] >= 0
        assert row["server_cpu_ms_per_press"] >= 0
        # Both figures divide the same CPU time, by the presses and by the
        # events they wrote.
        assert row["server_cpu_ms_per_press"] * 1000 * 8 == pytest.approx(
            row["server_cpu_us_per_event"] * row["press_events"], abs=10
        )
    assert (out / "sockets.png").stat().st_size > 0


@pytest.mark.processes
def test_the_fanout_curve_writes_its_figures_and_plot(tmp_path: Path) -> None:
    _run(
        "-m",
        "bench.fanout",
        "--sockets",
        "100,400",
        "--events",
        "50",
        "--out",
        str(tmp_path),
        timeout=120,
    )
    rows: list[dict[str, Any]] = json.loads((tmp_path / "fanout.json").read_text())
    assert [row["sockets"] for row in rows] == [100, 400]
    for row in rows:
        assert row["every_socket_us"] > 0
        assert row["by_index_us"] > 0
    # Offering an event to every socket costs more than to its readers alone.
    assert rows[-1]["every_socket_us"] > rows[-1]["by_index_us"]
    assert (tmp_path / "fanout.png").stat().st_size > 0
