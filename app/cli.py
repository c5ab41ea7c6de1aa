"""`python -m app migrate | seed | create-admin | serve | openapi | asyncapi`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence


def _cmd_migrate(_: argparse.Namespace) -> int:
    from app.core import migrations

    migrations.upgrade()
    return 0


def _cmd_seed(args: argparse.Namespace) -> int:
    from app.core.config import get_settings
    from app.seed import SeedOptions, run_seed

    options = SeedOptions(
        scale=args.scale,
        seed=args.seed,
        teams=args.teams,
        on_duty=args.on_duty,
        replace=args.replace,
    )
    asyncio.run(run_seed(get_settings(), options))
    return 0


def _cmd_create_admin(args: argparse.Namespace) -> int:
    from app.core.config import get_settings
    from app.identity.cli import create_admin

    person_id = asyncio.run(create_admin(get_settings(), args.phone, args.name))
    print(person_id)
    return 0


def _cmd_create_api_key(args: argparse.Namespace) -> int:
    from app.core.config import get_settings
    from app.identity.cli import create_api_key

    key_id, key = asyncio.run(create_api_key(get_settings(), args.name, args.scopes))
    # The key is shown this once; only its digest is kept.
    print(f"id:  {key_id}\nkey: {key}")
    return 0


def _cmd_revoke_api_key(args: argparse.Namespace) -> int:
    from app.core.config import get_settings
    from app.identity.cli import revoke_api_key

    asyncio.run(revoke_api_key(get_settings(), args.id))
    print(f"revoked {args.id}")
    return 0


# Seconds a stopping server waits for open responses (streams) to end.
SHUTDOWN_GRACE_SECONDS = 10


def _cmd_serve(args: argparse.Namespace) -> int:
    import os
    import tempfile

    import uvicorn

    from app.core.metrics import MULTIPROC_ENV

    if args.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Workers share their request metrics through files here (see
        # app/core/metrics.py); set before they start, so each inherits it.
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="hulian-metrics-")

    from app.core.config import get_settings
    from app.core.logging import uvicorn_log_config

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Our own middleware writes the access log: uvicorn's would print raw
        # paths and query strings, which can hold tokens.
        access_log=False,
        log_config=uvicorn_log_config(get_settings().log_level.upper()),
        # uvicorn's would believe X-Forwarded-For from 127.0.0.1, so anything
        # that reaches us through loopback picks its own address. The app
        # believes only FORWARDED_ALLOW_IPS (app/http/middleware.py).
        proxy_headers=False,
        # Client messages on the live socket are small; refuse big ones early.
        ws_max_size=get_settings().ws_max_message_bytes,
        # Per-message compression costs about 40 KiB per idle socket
        # (docs/benchmarks.md); events are small.
        ws_per_message_deflate=False,
        ws=get_settings().ws_protocol,
        # No protocol pings: uvicorn would time one per socket, in waves
        # after a mass reconnect. The heartbeat message is the process's one
        # timer (app/events/ticker.py); clients' own pings are answered.
        ws_ping_interval=None,
        # On a stop, uvicorn waits for open responses before the app's own
        # shutdown; a public screen's stream never ends by itself, so after
        # this long the rest are cut (their EventSource reconnects elsewhere).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return 0


def _cmd_openapi(_: argparse.Namespace) -> int:
    from app.main import openapi_document

    sys.stdout.write(json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n")
    return 0


def _cmd_asyncapi(_: argparse.Namespace) -> int:
    from app.events.asyncapi import asyncapi_document

    sys.stdout.write(json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n")
    return 0


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply the Alembic migrations up to head").set_defaults(
        func=_cmd_migrate
    )

    seed = commands.add_parser("seed", help="build the demo district (deterministic)")
    seed.add_argument("--scale", choices=["guangming"], required=True)
    seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    seed.add_argument(
        "--teams", type=_positive, default=None, help="number of teams (default 270, the district)"
    )
    seed.add_argument(
        "--on-duty",
        type=_fraction,
        default=0.3,
        help="fraction of members put on duty near their team's base (default 0.3; 0 for none)",
    )
    seed.add_argument(
        "--replace",
        action="store_true",
        help="replace a demo district seeded with other options (refused in production)",
    )
    seed.set_defaults(func=_cmd_seed)

    admin = commands.add_parser("create-admin", help="create (or promote) an administrator")
    admin.add_argument("--phone", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.set_defaults(func=_cmd_create_admin)

    from app.identity.api_keys import SCOPES

    key = commands.add_parser("create-api-key", help="create a key for a third-party system")
    key.add_argument("--name", required=True)
    key.add_argument("--scopes", nargs="+", required=True, choices=sorted(SCOPES))
    key.set_defaults(func=_cmd_create_api_key)

    revoke = commands.add_parser("revoke-api-key", help="revoke a third-party system's key")
    revoke.add_argument("--id", required=True, type=uuid.UUID)
    revoke.set_defaults(func=_cmd_revoke_api_key)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive, default=1)
    serve.set_defaults(func=_cmd_serve)

    commands.add_parser("openapi", help="print the OpenAPI document").set_defaults(
        func=_cmd_openapi
    )
    commands.add_parser(
        "asyncapi", help="print the AsyncAPI document of the live stream"
    ).set_defaults(func=_cmd_asyncapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
