"""`python -m bench.press_cpu` at tiny scale, so it cannot rot: presses
alone, with `--accept` loops of a press, its accept and a cancel (the
accept's before/after figures come from it), with `--resolve` a call's
whole loop (the press, the accept, two steps), and with `--direct` the
press's work without HTTP or FastAPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.infra import PROJECT_ROOT, admin_url_from_env

pytestmark = pytest.mark.processes


def _press_cpu(out: Path, *options: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.press_cpu",
            "--presses",
            "5",
            "--teams",
            "30",
            *options,
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENCH_ADMIN_URL": admin_url_from_env()},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_press_cpu_measures_presses_and_whole_loops(tmp_path: Path) -> None:
    presses = _press_cpu(tmp_path / "presses.json", "--plans")
    assert presses["presses"] == 5
    for key in ("cpu_ms_per_press", "wall_ms_per_press", "postgres_cpu_ms_per_press"):
        assert presses[key] > 0, key
    assert presses["plans"], "the presses' prepared statements are listed"
    assert presses["client_cpu_ms_per_request"] > 0

    direct = _press_cpu(tmp_path / "direct.json", "--direct")
    assert direct["direct"] is True
    # (Not PostgreSQL's CPU: its backends' are read in clock ticks of 10 ms,
    # and five direct presses may fall within one.)
    assert direct["cpu_ms_per_press"] > 0
    # Each press moved its call to `offered`, so it did its whole work.
    assert direct["call_updates"] > 0

    loops = _press_cpu(tmp_path / "loops.json", "--accept")
    for key in ("cpu_ms_per_loop", "wall_ms_per_loop", "postgres_cpu_ms_per_loop"):
        assert loops[key] > 0, key
    # Every press moves its call (to `offered`) and points it at its events.
    assert loops["call_updates"] > 0
    assert 0 <= loops["call_updates_heap_only"] <= loops["call_updates"]
    # (Not that a loop costs more than a press: five of each is a timing
    # comparison, and the first requests of a run carry its warm-up. It
    # failed once in a suite run, 2026-12-04.)

    # Each loop's steps answered 200 (the bench stops on anything else).
    # (Not the updates of `call`: PostgreSQL's table statistics reach the
    # view when a backend flushes them, and five loops may be counted
    # partly.)
    resolved = _press_cpu(tmp_path / "resolved.json", "--resolve")
    assert resolved["resolve"] is True
    assert resolved["presses"] == 5
    assert resolved["cpu_ms_per_loop"] > 0
