"""The bench's load generators (issue 13, target 8), without a server: a
saturated generator is called so and its latencies are not reported; a
team's volunteers stay in one generator; merged records keep the first
sighting of an offer."""

from __future__ import annotations

import uuid
from typing import Any

from bench import report
from bench.generator import split_by_team, verdict
from bench.infra import Actor
from bench.load import Record, merge_records


def _meter(cpu: float, lag_p99: float) -> dict[str, Any]:
    return {
        "cpu_percent": cpu,
        "cpu_s": cpu / 10,
        "elapsed_s": 10.0,
        "lag_p50_ms": 0.2,
        "lag_p99_ms": lag_p99,
        "lag_max_ms": lag_p99 * 2,
    }


def _result(generator: dict[str, Any]) -> dict[str, Any]:
    latency = {"count": 3, "p50_ms": 12.5, "p90_ms": 20.0, "p99_ms": 31.25, "max_ms": 40.0}
    return {
        "command": "python -m bench run",
        "load": {
            "post_calls": latency,
            "press_to_offer": latency,
            "accept_to_call_updated": latency,
            "accept_request": latency,
            "rate_target": 5.0,
            "rate_achieved": 5.1,
            "calls_created": 3,
            "calls_offered_seen": 3,
            "calls_accepted_seen": 3,
            "error_count": 0,
            "errors": {},
            "accept_conflicts": {},
        },
        "resources": {
            "server_cpu_percent": 50.0,
            "postgres_cpu_percent": 10.0,
            "server_peak_rss_mib": 100.0,
        },
        "generator": {"processes": 2, **generator},
    }


def test_a_generator_over_its_cpu_or_lag_limit_is_saturated() -> None:
    fine = verdict([_meter(40.0, 3.0), _meter(60.0, 8.0)])
    assert not fine["saturated"]
    assert fine["reasons"] == []
    busy = verdict([_meter(40.0, 3.0), _meter(91.0, 8.0)])
    assert busy["saturated"]
    assert busy["reasons"] == ["generator 1 used 91.0 % of a core (> 85.0)"]
    lagging = verdict([_meter(30.0, 25.0)], max_lag_p99_ms=20.0)
    assert lagging["saturated"]
    assert "lag p99 25.0 ms" in lagging["reasons"][0]


def test_a_saturated_run_reports_no_latencies() -> None:
    fine = report.markdown(_result(verdict([_meter(40.0, 3.0)])))
    assert report.SATURATED not in fine
    assert "| POST /calls | 3 | 12.5 | 20.0 | 31.2 | 40.0 |" in fine

    saturated = report.markdown(_result(verdict([_meter(97.0, 3.0)])))
    assert f"**{report.SATURATED}**" in saturated
    assert "| POST /calls |" not in saturated
    assert "31.2" not in saturated
    # What the generators used is still there.
    assert "| generator 0: CPU (% of one core)" in saturated
    assert "97.0" in saturated


def test_a_teams_volunteers_stay_in_one_generator() -> None:
    teams = [uuid.uuid4() for _ in range(7)]
    volunteers = [
        Actor(uuid.uuid4(), "t", team_id=teams[i % 7]) for i in range(7 * 3 + 4)
    ]  # teams 0..3 have 4 members, the others 3
    shares = split_by_team(volunteers, 3)
    assert sorted(v.person_id for s in shares for v in s) == sorted(v.person_id for v in volunteers)
    owner: dict[uuid.UUID | None, int] = {}
    for i, share in enumerate(shares):
        for v in share:
            assert owner.setdefault(v.team_id, i) == i
    assert max(map(len, shares)) - min(map(len, shares)) <= 4


def test_merged_records_keep_the_first_sighting_and_every_sample() -> None:
    a, b = Record(), Record()
    a.pressed["c1"], a.press_sent = 10.0, [10.0]
    a.post_latency, a.post_latency_at = [0.02], [10.0]
    b.pressed["c2"], b.press_sent = 9.5, [9.5]
    b.post_latency, b.post_latency_at = [0.03], [9.5]
    a.first_offer["c1"], b.first_offer["c1"] = 10.05, 10.04
    b.first_offer["c2"] = 9.56
    a.errors["calls 500 internal_error"] += 1
    b.errors["calls 500 internal_error"] += 2
    merged = merge_records([a, b])
    assert merged.first_offer == {"c1": 10.04, "c2": 9.56}
    assert merged.press_sent == [9.5, 10.0]
    assert list(zip(merged.post_latency, merged.post_latency_at, strict=True)) == [
        (0.02, 10.0),
        (0.03, 9.5),
    ]
    assert merged.errors["calls 500 internal_error"] == 3
