"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from app import __version__
from app.activities.reminders import QuotaReminders
from app.api.router import ROUTERS
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker, session_scope
from app.core.metrics import Metrics
from app.dispatch.sweeper import Sweeper
from app.events.hub import EventHub
from app.events.ws import LiveStreamShortcut
from app.http.docs import install_docs
from app.http.evolution import mark_extensible_enums
from app.http.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    TrustedProxyMiddleware,
)
from app.http.problems import document_problems, install_problem_handlers
from app.http.redirects import install_slash_redirect
from app.http.responses import document_responses
from app.identity.challenge import make_send_challenge
from app.identity.principals import PrincipalCache, PrincipalListener
from app.identity.sms import make_sms_sender
from app.notifications.push import make_push_sender
from app.notifications.push.worker import PushWorker
from app.notifications.sms_worker import SmsWorker
from app.open311.routes import PREFIX as OPEN311_PREFIX
from app.open311.routes import create_open311_app
from app.screen_feed.cache import ScreenFeeds
from app.screen_feed.limits import AddressLimiter
from app.teams import routes as nearby_teams
from app.webapp.serve import PREFIX as WEB_PREFIX
from app.webapp.serve import WebApp

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
    """`locate_area`: the route function's name, which generated clients call
    (`api.areas.locate_area`; they group by tag already). Names are unique
    across the service and listed in tests/http/test_openapi.py, so a
    rename is a decision, not an accident."""
    return route.name


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
    reminders = QuotaReminders(app.state.sessionmaker, settings)
    if settings.run_quota_reminders:
        reminders.start()
    hub = EventHub(
        settings.database_url_str,
        settings.ws_auth_recheck_seconds,
        heartbeat_seconds=settings.ws_heartbeat_seconds,
        duty_throttle_seconds=settings.duty_event_throttle_seconds,
        duty_max_age=timedelta(seconds=settings.duty_position_max_age_seconds),
    )
    app.state.hub = hub
    await hub.start()
    principals = PrincipalCache(settings.principal_cache_seconds)
    listener = PrincipalListener(settings.database_url_str, principals, hub.principals_changed)
    app.state.principals = principals
    app.state.principal_listener = listener
    listener.start()
    screen_feeds = ScreenFeeds(app.state.sessionmaker, settings)
    app.state.screen_feeds = screen_feeds
    app.state.screen_limiter = AddressLimiter(settings.screen_requests_per_minute)
    push_worker = PushWorker(app.state.sessionmaker, settings, make_push_sender(settings))
    if settings.run_push_worker:
        push_worker.start()
    sms_worker = SmsWorker(app.state.sessionmaker, settings, app.state.sms)
    app.state.sms_worker = sms_worker
    if settings.run_sms_worker:
        sms_worker.start()
    # What startup allocated lives as long as the process: keep it out of the
    # collector's way, and collect the young generation less often. Full
    # collections stopped a busy worker for 0.3-0.8 s (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        screen_feeds.close()  # open screen streams end
        await push_worker.stop()  # also closes the sender
        await sms_worker.stop()
        await app.state.sms.close()
        await listener.stop()
        await hub.stop()
        await sweeper.stop()
        await reminders.stop()
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
    app.state.principals = None
    # A request's unit of work (`app.http.deps.request_session`), on the
    # sessionmaker the lifespan makes; a test joins its own transaction here.
    app.state.unit_of_work = lambda: session_scope(app.state.sessionmaker)
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
    # Outside the layers above: a live socket holds no frame of theirs.
    app.add_middleware(LiveStreamShortcut)
    if settings.trusted_proxies:
        # Outermost: every layer inside sees the client's address.
        app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxies)
    install_problem_handlers(app)
    install_slash_redirect(app)
    for router in ROUTERS:
        app.include_router(router)
    # Open311 is its own application: its own error form, not problem details.
    app.mount(OPEN311_PREFIX, create_open311_app(app))
    # The reference web app: same origin as the API (docs/web.md).
    app.mount(WEB_PREFIX, WebApp(settings))
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
        _optional_is_not_null(schema)
        _document_api_key_scopes(schema)
        nearby_teams.document_limits(schema, app.state.settings)
        mark_extensible_enums(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _document_api_key_scopes(schema: dict[str, Any]) -> None:
    """Say in words, on the operations that take an API key, which scope it
    needs (the security requirement names it; not every reader looks there)."""
    for item in schema["paths"].values():
        for operation in item.values():
            for requirement in operation.get("security", []):
                scopes = requirement.get("APIKeyHeader")
                if scopes:
                    needed = ", ".join(f"`{scope}`" for scope in scopes)
                    operation["description"] += (
                        f"\n\nAlso for an API key (`X-API-Key`) with the scope {needed}."
                    )


def _optional_is_not_null(schema: dict[str, Any]) -> None:
    """An optional body or parameter is one a client leaves out. FastAPI
    writes `X | None = None` as `anyOf [X, null]`, which generated clients
    read as "send null": a `None` header, a JSON `null`, or a crash on their
    own marker for "not given". A query string or a header cannot carry a
    null anyway, so the null is dropped from every optional one."""
    for item in schema["paths"].values():
        for operation in item.values():
            body = operation.get("requestBody")
            if body is not None and not body.get("required"):
                for media in body["content"].values():
                    media["schema"] = _without_null(media["schema"])
            for parameter in operation.get("parameters", []):
                if not parameter.get("required"):
                    parameter["schema"] = _without_null(parameter["schema"])


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if "anyOf" not in schema or len(options) != 1:
        return schema
    if "$ref" in options[0]:
        return dict(options[0])  # a bare reference: the named schema, not a copy titled "Body"
    return {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}}


def openapi_document() -> dict[str, Any]:
    """The spec, without connecting to anything."""
    return create_app(Settings()).openapi()
