"""`python -m bench.press_cpu`: the CPU one press costs the server, measured
in one process.

The app runs in this process behind httpx's ASGI transport (no sockets, no
uvicorn) on a fresh seeded database; residents press one after another,
each once, at team bases (so every press is offered). Reported: CPU time of
this process per press (user + system: the app's Python, asyncpg and
httpx's client side, which is small and the same before and after),
wall time per press, and the CPU time of the database's PostgreSQL
backends per press (PostgreSQL runs on this machine); with `--plans`, how
often PostgreSQL planned each of the app's prepared statements
generically and for its values (the presses run one at a time, so on one
pooled connection: its `pg_prepared_statements`). CPU time is what a press costs whatever else the
machine runs, so a before/after on a shared machine is read from it; wall
time there is mostly waiting for a core. The statements a press sends are
bounded by tests/calls/test_press_round_trips.py.

With `--accept`, each press is followed by its accept (by an available
member of the team offered the call, found by the bench's own query) and
the resident's cancel, which frees the member again: the figures are per
loop of the three (`..._per_loop`), and a before/after of the accept's
path is read from them. The statements an accept sends are bounded by
tests/offers/test_accept_round_trips.py. Also reported: how many updates
of `call` the measured presses (or loops) made, and how many of them were
heap-only (they stayed on their page and wrote no index entry).

With `--direct`, the same presses skip HTTP and FastAPI: each is the work a
press route cannot do without, called straight in one unit of work (the
body parsed by `CallCreate`, the token's principal, `open_call`, the answer
serialised by `CallPublic`). The difference from a run without it is what
the framework, the middleware and httpx's client cost a press, the most a
leaner press route could take off. Every run also reports httpx's client
alone (`client_cpu_ms_per_request`: the same client posting the same body
to a bare ASGI app that answers a fixed 201), so the framework's share can
be read without it.

    python -m bench.press_cpu [--presses 300] [--teams 300] [--plans] [--accept | --resolve]
        [--direct] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from pydantic import TypeAdapter
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from bench.infra import BENCH_SECRET, BenchDatabase, Sampler, admin_url_from_env, db_backends

WARMUP = 20


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _backends_cpu(dsn: str) -> dict[int, float]:
    """CPU seconds so far of each backend of the database: what the presses
    cost PostgreSQL."""
    conn = await asyncpg.connect(dsn)
    try:
        return Sampler.cpu(await db_backends(conn))
    finally:
        await conn.close()


_PLANS = text(
    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
    " WHERE generic_plans + custom_plans > 1 ORDER BY custom_plans DESC, statement"
)


_CALL_UPDATES = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'call'"


async def _call_updates(dsn: str) -> tuple[int, int]:
    """The updates of `call` so far, and of those the heap-only ones. The
    backends report their counts when idle for a second, so this waits."""
    await asyncio.sleep(2)
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(_CALL_UPDATES)
        return int(row["n_tup_upd"]), int(row["n_tup_hot_upd"])
    finally:
        await conn.close()


# The open offer of a call and an available member of its team: who accepts.
_OFFERED = """
    SELECT o.id, m.person_id FROM offer o
    JOIN team_member m ON m.team_id = o.team_id
    JOIN duty d ON d.person_id = m.person_id AND d.on_duty
    WHERE o.call_id = $1 AND o.status = 'open'
    LIMIT 1
"""


async def _client_cpu(requests: int, headers: dict[str, str], body: dict[str, Any]) -> float:
    """CPU seconds per request of httpx's client alone: the same posts to a
    bare ASGI app that reads the body and answers a fixed 201."""
    answer = json.dumps({"id": str(uuid.uuid4()), "status": "offered"}).encode()

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        more = scope["type"] == "http"
        while more:
            more = (await receive()).get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    transport = httpx.ASGITransport(app=bare)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for _ in range(WARMUP):
            await http.post("/api/v1/calls", json=body, headers=headers)
        cpu = _cpu()
        for _ in range(requests):
            if (await http.post("/api/v1/calls", json=body, headers=headers)).json()["status"] != (
                "offered"
            ):
                raise RuntimeError("the bare app's answer changed")
        return (_cpu() - cpu) / requests


async def measure(
    presses: int,
    teams: int,
    plans: bool = False,
    accept: bool = False,
    direct: bool = False,
    resolve: bool = False,
) -> dict[str, Any]:
    from app.calls import service as calls
    from app.core.config import Settings
    from app.core.db import make_engine, make_sessionmaker
    from app.identity import auth, principals
    from app.main import create_app
    from app.models.call import CallCreate, CallPublic

    accept = accept or resolve
    if direct and accept:
        raise ValueError("--direct measures presses alone")
    public = TypeAdapter(CallPublic)  # as FastAPI serialises a response model

    planned: list[dict[str, Any]] = []
    db = BenchDatabase(admin_url_from_env())
    finder: asyncpg.Connection | None = None
    await db.create()
    try:
        db.migrate()
        db.seed(teams, 0.5)
        settings = Settings.model_validate(
            {
                "database_url": db.url,
                "secret_key": BENCH_SECRET,
                "app_env": "dev",
                "log_level": "WARNING",
                "duty_position_max_age_seconds": 86400,
                "double_tap_seconds": 0,
                "run_sweeper": False,
                "run_push_worker": False,
            }
        )
        engine = make_engine(settings)
        async with make_sessionmaker(engine)() as session:
            bases = [
                (row.lat, row.lng)
                for row in await session.execute(
                    text("SELECT ST_Y(base::geometry) lat, ST_X(base::geometry) lng FROM team")
                )
            ]
            tokens = []
            for n in range(presses + WARMUP):
                person = uuid.uuid4()
                await session.execute(
                    text("INSERT INTO person (id, phone, display_name) VALUES (:id, :p, '居民')"),
                    {"id": person, "p": f"+8613{n:09d}"},
                )
                tokens.append((await auth.start_session(session, settings, person)).access_token)
            members: dict[uuid.UUID, str] = {}
            if accept:
                on_duty = await session.execute(
                    text(
                        "SELECT DISTINCT m.person_id FROM team_member m"
                        " JOIN duty d ON d.person_id = m.person_id AND d.on_duty"
                    )
                )
                for (member,) in on_duty:
                    minted = await auth.start_session(session, settings, member)
                    members[member] = minted.access_token
            await session.commit()
        await engine.dispose()

        app = create_app(settings)
        if accept:
            finder = await asyncpg.connect(db.dsn)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

                async def press_direct(n: int) -> None:
                    # What any press route must do, without HTTP or FastAPI.
                    lat, lng = bases[n % len(bases)]
                    raw = json.dumps({"location": {"lat": lat, "lng": lng, "accuracy_m": 10}})
                    async with app.state.unit_of_work() as session:
                        user = await principals.person(
                            app.state.principals, session, settings, tokens[n]
                        )
                        opened = await calls.open_call(
                            session,
                            settings,
                            calls.Origin.of_resident(user),
                            CallCreate.model_validate_json(raw),
                        )
                    answer = public.dump_json(opened.call)
                    if not opened.created or b'"status":"offered"' not in answer:
                        raise RuntimeError(f"press {n}: {answer[:200]!r}")

                async def press(n: int) -> None:
                    if direct:
                        await press_direct(n)
                        return
                    lat, lng = bases[n % len(bases)]
                    answer = await http.post(
                        "/api/v1/calls",
                        json={"location": {"lat": lat, "lng": lng, "accuracy_m": 10}},
                        headers={"Authorization": f"Bearer {tokens[n]}"},
                    )
                    if answer.status_code != 201 or answer.json()["status"] != "offered":
                        raise RuntimeError(f"press {n}: {answer.status_code} {answer.text[:200]}")
                    if finder is None:
                        return
                    call_id = answer.json()["id"]
                    offered = await finder.fetchrow(_OFFERED, uuid.UUID(call_id))
                    taken = await http.post(
                        f"/api/v1/offers/{offered['id']}/accept",
                        headers={"Authorization": f"Bearer {members[offered['person_id']]}"},
                    )
                    if taken.status_code != 200:
                        raise RuntimeError(f"accept {n}: {taken.status_code} {taken.text[:200]}")
                    if resolve:
                        # The responder's two steps, as `bench run`'s volunteers.
                        for step in ("on_site", "resolved"):
                            stepped = await http.post(
                                f"/api/v1/calls/{call_id}/progress",
                                json={"status": step},
                                headers={
                                    "Authorization": f"Bearer {members[offered['person_id']]}"
                                },
                            )
                            if stepped.status_code != 200:
                                raise RuntimeError(f"{step} {n}: {stepped.status_code}")
                        return
                    cancelled = await http.post(
                        f"/api/v1/calls/{call_id}/cancel",
                        json={},
                        headers={"Authorization": f"Bearer {tokens[n]}"},
                    )
                    if cancelled.status_code != 200:
                        raise RuntimeError(f"cancel {n}: {cancelled.status_code}")

                for n in range(WARMUP):
                    await press(n)
                updates = await _call_updates(db.dsn)
                pg = await _backends_cpu(db.dsn)
                cpu, wall = _cpu(), time.perf_counter()
                for n in range(WARMUP, WARMUP + presses):
                    await press(n)
                cpu, wall = _cpu() - cpu, time.perf_counter() - wall
                pg_cpu = sum(
                    spent - pg.get(pid, 0.0) for pid, spent in (await _backends_cpu(db.dsn)).items()
                )
                updated, heap_only = (
                    after - before
                    for after, before in zip(await _call_updates(db.dsn), updates, strict=True)
                )
                if plans:
                    async with app.state.sessionmaker() as session:
                        planned = [
                            {
                                "generic": row.generic_plans,
                                "custom": row.custom_plans,
                                "statement": " ".join(row.statement.split())[:200],
                            }
                            for row in await session.execute(_PLANS)
                        ]
        client = await _client_cpu(
            presses,
            {"Authorization": f"Bearer {tokens[-1]}"},
            {"location": {"lat": bases[0][0], "lng": bases[0][1], "accuracy_m": 10}},
        )
    finally:
        if finder is not None:
            await finder.close()
        await db.drop()
    each = "loop" if accept else "press"
    result: dict[str, Any] = {
        "presses": presses,
        "teams": teams,
        f"cpu_ms_per_{each}": round(cpu / presses * 1000, 2),
        f"wall_ms_per_{each}": round(wall / presses * 1000, 2),
        f"postgres_cpu_ms_per_{each}": round(pg_cpu / presses * 1000, 2),
        # Updates of `call` that stayed on their page and wrote no index entry.
        "call_updates": updated,
        "call_updates_heap_only": heap_only,
        "client_cpu_ms_per_request": round(client * 1000, 3),
    }
    if direct:
        result["direct"] = True
    if resolve:
        result["resolve"] = True
    if plans:
        result["plans"] = planned
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.press_cpu", description=__doc__)
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--teams", type=int, default=300)
    parser.add_argument("--plans", action="store_true")
    parser.add_argument("--accept", action="store_true", help="each press accepted, then cancelled")
    parser.add_argument(
        "--resolve",
        action="store_true",
        help="each press accepted, then on_site and resolved by its responder",
    )
    parser.add_argument(
        "--direct", action="store_true", help="the press's work without HTTP or FastAPI"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.direct and (args.accept or args.resolve):
        parser.error("--direct measures presses alone, not with --accept or --resolve")
    result = asyncio.run(
        measure(args.presses, args.teams, args.plans, args.accept, args.direct, args.resolve)
    )
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
