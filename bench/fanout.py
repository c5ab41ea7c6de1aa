"""CPU per event in the live hub against the number of idle sockets (issue
13, target 3), in process: `python -m bench.fanout [--sockets 1000,5000,20000]
[--out DIR]` (`DIR/fanout.json`, `DIR/fanout.png`).

Each socket is a person on a team of their own, or a plain resident; each
event is a `call.updated` of a call offered to one team. Measured: the CPU time
`EventHub._deliver` takes per event with every socket offered the event
(as before the index) and with the index (`readers_of`).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from app.calls.visibility import CallFacts, EventFacts
from app.events.hub import EventHub, LiveEvent, Subscriber
from app.identity.auth import PersonPrincipal
from app.models.auth import TeamMembership
from app.models.enums import MemberKind


def _person(team: uuid.UUID | None) -> PersonPrincipal:
    teams = (TeamMembership(id=team, name="t", kind=MemberKind.part_time),) if team else ()
    return PersonPrincipal(
        person_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        display_name="x",
        phone="+8610000000000",
        is_admin=False,
        teams=teams,
        dispatcher_area=None,
    )


def _event(n: int, team: uuid.UUID) -> LiveEvent:
    call = uuid.uuid4()
    return LiveEvent(
        id=n,
        type="call.updated",
        call_id=call,
        at="2026-12-02T00:00:00+00:00",
        data={"status": "offered", "location": {"lat": 22.77, "lng": 113.93}, "note": None},
        note=None,
        event=EventFacts(type="call.updated", offer_id=None, offer_team=None),
        facts=CallFacts(
            id=call,
            resident_id=uuid.uuid4(),
            responder_id=None,
            community_id=uuid.uuid4(),
            street_id=uuid.uuid4(),
            offered_team_ids=frozenset({team}),
            open_offer_team_ids=frozenset({team}),
            responder_released_at=None,
        ),
    )


def measure(sockets: int, events: int, *, every_socket: bool) -> float:
    """Microseconds of this process's CPU in `_deliver` per event."""
    hub = EventHub("postgresql+asyncpg://unused@127.0.0.1/unused")
    teams = [uuid.uuid4() for _ in range(max(1, sockets // 2))]
    for i in range(sockets):
        hub.subscribe(Subscriber(_person(teams[i % len(teams)] if i % 2 else None)))
    if every_socket:
        everyone = hub._subscribers

        def all_of(_: LiveEvent) -> Any:
            return everyone

        hub.readers_of = all_of  # type: ignore[method-assign,assignment]
    batch = [_event(n + 1, teams[n % len(teams)]) for n in range(events)]
    started = time.process_time()
    for event in batch:
        hub._deliver(event)
    return (time.process_time() - started) / events * 1e6


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sockets = [r["sockets"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sockets, [r["every_socket_us"] for r in rows], "o--", label="every socket offered")
    ax.plot(sockets, [r["by_index_us"] for r in rows], "o-", label="by index (readers only)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle sockets in the process")
    ax.set_ylabel("CPU µs per event in the hub's delivery (log)")
    ax.set_title("target 3: an event's delivery against the idle sockets")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", default="1000,5000,20000")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--out", default=None, help="a folder for fanout.json and fanout.png")
    args = parser.parse_args()
    print("| idle sockets | µs per event, every socket offered | µs per event, by index |")
    print("|---:|---:|---:|")
    rows = []
    for n in (int(x) for x in args.sockets.split(",")):
        before = measure(n, max(200, args.events // max(1, n // 1000)), every_socket=True)
        after = measure(n, args.events, every_socket=False)
        rows.append({"sockets": n, "every_socket_us": before, "by_index_us": after})
        print(f"| {n:,} | {before:,.1f} | {after:,.1f} |")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fanout.json").write_text(json.dumps(rows, indent=2))
        _plot(rows, out / "fanout.png")


if __name__ == "__main__":
    main()
