"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from app import __version__
from app.api.router import ROUTERS
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker
from app.core.metrics import Metrics
from app.dispatch.sweeper import Sweeper
from app.events.hub import EventHub
from app.http.docs import install_docs
from app.http.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    TrustedProxyMiddleware,
)
from app.http.problems import document_problems, install_problem_handlers
from app.http.redirects import install_slash_redirect
from app.http.responses import document_responses
from app.identity.challenge import make_send_challenge
from app.identity.sms import make_sms_sender
from app.notifications.push import make_push_sender
from app.notifications.push.worker import PushWorker

GC_THRESHOLDS = (100_000, 50, 1_000)

# What a web page of an allowed origin may send, and read of the answers.
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-API-Key",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "WWW-Authenticate", "Location"]

DESCRIPTION = """\
Backend of the one-tap call-a-party-member service (党员一键呼叫) of Dangqun
Hulian (党群户联网). Every error is RFC 9457 problem details
(`application/problem+json`) with a stable `code`.
"""


def operation_id(route: APIRoute) -> str:
    """`areas-locate_area`: readable ids for generated clients."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = make_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.sms = make_sms_sender(settings)
    app.state.otp_challenge = make_send_challenge(settings)
    sweeper = Sweeper(app.state.sessionmaker, settings)
    if settings.run_sweeper:
        sweeper.start()
    hub = EventHub(settings.database_url_str, settings.ws_auth_recheck_seconds)
    app.state.hub = hub
    await hub.start()
    push_worker = PushWorker(app.state.sessionmaker, settings, make_push_sender(settings))
    if settings.run_push_worker:
        push_worker.start()
    # What startup allocated lives as long as the process: keep it out of the
    # collector's way, and collect the young generation less often. Full
    # collections stopped a busy worker for 0.3-0.8 s (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        await push_worker.stop()  # also closes the sender
        await app.state.sms.close()
        await hub.stop()
        await sweeper.stop()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Hulian",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Ours instead (app/http/docs.py): no CDN, and off in production.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = None
    metrics = Metrics()
    metrics.watch_pool(lambda: getattr(app.state.engine, "pool", None))
    app.state.metrics = metrics
    # The last added runs first: request context wraps the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_allowed_origins:
        # Inside the request context: preflights carry X-Request-ID too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            # Credentials are bearer tokens the page sends itself, never cookies.
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    if settings.trusted_proxies:
        # Outermost: every layer inside sees the client's address.
        app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxies)
    install_problem_handlers(app)
    install_slash_redirect(app)
    for router in ROUTERS:
        app.include_router(router)
    if settings.serve_docs:
        install_docs(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        document_problems(schema)
        document_responses(
            schema, [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
        )
        app.openapi_schema = schema
    return app.openapi_schema


def openapi_document() -> dict[str, Any]:
    """The spec, without connecting to anything."""
    return create_app(Settings()).openapi()
