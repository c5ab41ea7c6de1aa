"""The three runs of this folder in one plot (combined.png): the server's
CPU per event against the idle sockets, and the spread of five rounds at
about 1,000 sockets (control-1000) as a band. Run from the repository:
    .venv/bin/python bench/results/sockets-cpu-2026-12-04/combine.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent


def rows(name: str) -> list[dict[str, float]]:
    loaded: list[dict[str, float]] = json.loads((HERE / name / "sockets.json").read_text())
    return loaded


def main() -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    control = [r["server_cpu_us_per_event"] for r in rows("control-1000")]
    ax.axhspan(
        min(control),
        max(control),
        color="grey",
        alpha=0.2,
        label="five rounds at 1,000 sockets (spread)",
    )
    for name, label in (
        ("presses-300", "300 presses a level"),
        ("presses-1000", "1,000 presses a level"),
    ):
        run = rows(name)
        ax.plot(
            [r["sockets"] for r in run],
            [r["server_cpu_us_per_event"] for r in run],
            "o-",
            label=label,
        )
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("idle sockets (one worker)")
    ax.set_ylabel("server CPU µs per event (its press included)")
    ax.set_title("target 3: CPU per event against the idle sockets")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(HERE / "combined.png", dpi=90)


if __name__ == "__main__":
    main()
