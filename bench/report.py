"""JSON, a Markdown table and a PNG plot for a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import statements


def _ms(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    return "–" if v is None else f"{v:.1f}"


SATURATED = "generator saturated: latency figures not valid"


def generator_line(verdict: dict[str, Any]) -> str:
    """One line on the generators of a phase: their CPU and loop lag, and
    whether they were saturated."""
    parts = [
        f"{m['cpu_percent']} % of a core, lag p99 {m['lag_p99_ms']} ms"
        for m in verdict["generators"]
    ]
    n = verdict.get("processes")
    where = "in the bench's own process" if n == 0 else f"{len(parts)} process(es)"
    line = f"generators ({where}): " + "; ".join(parts)
    if verdict["saturated"]:
        line += f" — **{SATURATED}** ({'; '.join(verdict['reasons'])})"
    return line


def markdown(result: dict[str, Any]) -> str:
    load = result["load"]
    floors = result.get("floors", {})
    ratios = result.get("ratios", {})
    rows = [
        ("POST /calls", load["post_calls"]),
        ("press → offer.created (volunteer socket)", load["press_to_offer"]),
        ("accept → call.updated (resident socket)", load["accept_to_call_updated"]),
        ("POST /offers/{id}/accept", load["accept_request"]),
    ]
    out = [f"Command: `{result['command']}`", ""]
    gen = result.get("generator")
    if gen is not None:
        out += [generator_line(gen), ""]
    if gen is not None and gen["saturated"]:
        out += [f"**{SATURATED}** (they are in run.json, not here).", ""]
    else:
        out += [
            "| latency | n | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, s in rows:
            out.append(
                f"| {name} | {s.get('count', 0)} | {_ms(s, 'p50_ms')} | {_ms(s, 'p90_ms')} "
                f"| {_ms(s, 'p99_ms')} | {_ms(s, 'max_ms')} |"
            )
        out.append("")
    res = result["resources"]
    out += [
        "| figure | value |",
        "|---|---:|",
        f"| target rate (calls/s) | {load['rate_target']} |",
        f"| achieved rate (calls/s sent) | {load['rate_achieved']} |",
        f"| calls created / offered seen / accepted seen | {load['calls_created']} / "
        f"{load['calls_offered_seen']} / {load['calls_accepted_seen']} |",
        f"| errors | {load['error_count']} {json.dumps(load['errors']) if load['errors'] else ''}"
        " |",
        f"| accept conflicts (409, not errors) | {sum(load['accept_conflicts'].values())} |",
        f"| server CPU (% of one core, load phase) | {res['server_cpu_percent']} |",
        f"| PostgreSQL CPU (% of one core, every postgres process of the machine) "
        f"| {res['postgres_cpu_percent']} |",
        f"| PostgreSQL CPU (% of one core, this database's backends) "
        f"| {res.get('postgres_db_cpu_percent', '–')} |",
        f"| server peak RSS (MiB, process tree) | {res['server_peak_rss_mib']} |",
        f"| bench's own process CPU (% of one core) | {res.get('bench_cpu_percent', '–')} |",
        "| machine: some task waiting for a CPU (% of the phase, PSI) / load average "
        f"| {res.get('machine_cpu_pressure_percent', '–')} / {res.get('machine_load_1m', '–')} |",
    ]
    if gen is not None:
        for i, m in enumerate(gen["generators"]):
            out.append(
                f"| generator {i}: CPU (% of one core) / loop lag p50, p99, max (ms), pressing "
                f"| {m['cpu_percent']} / {m['lag_p50_ms']}, {m['lag_p99_ms']}, {m['lag_max_ms']} |"
            )
    if floors:
        h, n = floors.get("healthz", {}), floors.get("nearest_sql", {})
        bound = " (generator-bound)" if h.get("generator", {}).get("saturated") else ""
        out += [
            f"| floor: /healthz throughput (req/s, {h.get('concurrency')} clients) "
            f"| {h.get('rps')}{bound} |",
            f"| floor: nearest-team SQL via asyncpg (q/s, {n.get('concurrency')} conns) "
            f"| {n.get('qps')} |",
            f"| floor: nearest-team SQL p50 / p99 (ms) | {_ms(n, 'p50_ms')} / {_ms(n, 'p99_ms')} |",
        ]
        press = floors.get("press_sql")
        if press:
            out.append(
                f"| floor: a press's SQL via asyncpg (presses/s, {press['concurrency']} conns; "
                f"p50 / p99 ms) | {press['presses_per_s']} "
                f"({_ms(press, 'p50_ms')} / {_ms(press, 'p99_ms')}) |"
            )
            if "client_cpu_ms_per_press" in press:
                out.append(
                    "| floor: the bench's CPU per press (ms; asyncpg's client side) "
                    f"| {press['client_cpu_ms_per_press']} |"
                )
    for key, what in (
        ("calls_saturation", "whole loop: the volunteers accept and resolve"),
        ("calls_saturation_presses", "presses alone: the volunteers accept nothing"),
    ):
        if key not in result:
            continue
        s = result[key]
        bound = ""
        if s.get("generator", {}).get("saturated"):
            bound = " (generator saturated: a lower bound)"
        if s.get("ran_out_of_residents"):
            bound += " (ran out of residents before the end: raise --saturation-calls)"
        states = ", ".join(f"{k} {v}" for k, v in sorted(s.get("answered_states", {}).items()))
        out.append(
            f"| POST /calls closed-loop max (calls/s, {s['concurrency']} clients; {what}; "
            f"answered: {states or 'none'}) | {s['rps']}{bound} |"
        )
        if "server_cpu_ms_per_call" in s:
            out.append(
                f"| server CPU per answered press, closed loop ({what.split(':')[0]}; ms) "
                f"| {s['server_cpu_ms_per_call']} |"
            )
    for k, v in ratios.items():
        out.append(f"| ratio: {k} | {v} |")
    if "statements" in result:
        out += ["", *statements.markdown(result["statements"])]
    return "\n".join(out) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    series = result["load"]["_series"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, label in (
        ("post", "POST /calls"),
        ("press_to_offer", "press → offer.created"),
        ("accept_to_call_updated", "accept → call.updated"),
    ):
        data = np.sort(np.asarray(series[key], dtype=float) * 1000)
        if len(data):
            ax1.plot(data, np.arange(1, len(data) + 1) / len(data), label=label)
    ax1.set_xscale("log")
    ax1.set_xlabel("latency (ms, log)")
    ax1.set_ylabel("fraction ≤")
    ax1.set_title("latency CDF")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend()
    n = min(len(series["post_at"]), len(series["post"]))
    at, post = series["post_at"][:n], np.asarray(series["post"][:n], dtype=float) * 1000
    if n:
        ax2.scatter(at, post, s=3, alpha=0.5)
    ax2.set_yscale("log")
    ax2.set_xlabel("time in the run (s)")
    ax2.set_ylabel("POST /calls latency (ms, log)")
    ax2.set_title(f"POST /calls over time at {result['load']['rate_target']} calls/s")
    if result.get("generator", {}).get("saturated"):
        fig.suptitle(SATURATED, color="red")
    ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(result: dict[str, Any], out: Path, stem: str = "run") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "md": out / f"{stem}.md", "png": out / f"{stem}.png"}
    public = {**result, "load": {k: v for k, v in result["load"].items() if k != "_series"}}
    paths["json"].write_text(json.dumps(public, indent=2, default=str))
    paths["md"].write_text(markdown(result))
    plot(result, paths["png"])
    return paths
