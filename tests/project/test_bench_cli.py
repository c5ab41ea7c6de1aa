"""`python -m bench …` sends each command to its own runner, and only to it
(a storm once failed at once on an argument of `scale`, and `scale
processes` went on to run `scale` as well)."""

from __future__ import annotations

import argparse

import pytest

import bench.processes
import bench.run
import bench.scale
import bench.storm
from bench.__main__ import main


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def fake(name: str) -> object:
        async def runner(args: argparse.Namespace) -> dict[str, dict[str, int]]:
            calls.append(name)
            return {"load": {"calls_created": 1}}

        return runner

    monkeypatch.setattr(bench.storm, "storm", fake("storm"))
    monkeypatch.setattr(bench.processes, "scale_processes", fake("processes"))
    monkeypatch.setattr(bench.scale, "scale", fake("scale"))
    monkeypatch.setattr(bench.run, "run", fake("run"))
    return calls


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["storm", "--sockets", "10"], ["storm"]),
        (["scale", "processes"], ["processes"]),
        (["scale", "nearest"], ["scale"]),
        (["scale", "knee"], ["scale"]),
        (["run", "--rate", "1"], ["run"]),
    ],
)
def test_each_command_runs_its_own_runner_once(
    ran: list[str], argv: list[str], expected: list[str]
) -> None:
    assert main(argv) == 0
    assert ran == expected
