from __future__ import annotations

import hmac
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import Unauthorized
from app.health.service import check_ready
from app.http.deps import SettingsDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["ok"] = Field(default="ok", description="always ok")


class Readiness(BaseModel):
    # Sent always, defaults included: the spec says so (issue 12).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["ready"] = Field(default="ready", description="always ready")
    postgis: str = Field(description="the PostGIS version the database answered with")


@router.get("/healthz")
async def get_health() -> Health:
    """200 while the process runs."""
    return Health()


@router.head("/healthz", response_class=Response)
async def head_health() -> Response:
    """GET /healthz without its body, for probes that only look at the status."""
    return Response()


@router.get("/readyz")
async def get_readiness(request: Request) -> Readiness:
    """200 when the database and PostGIS answer; 503 `not_ready` when not."""
    return Readiness(postgis=await check_ready(request.app.state.engine))


@router.head("/readyz", response_class=Response)
async def head_readiness(request: Request) -> Response:
    """GET /readyz without its body: 200 or 503."""
    await check_ready(request.app.state.engine)
    return Response()


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text format; with METRICS_TOKEN set (production must), only
    for `Authorization: Bearer <METRICS_TOKEN>`."""
    if settings.metrics_token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise Unauthorized("The metrics need `Authorization: Bearer <METRICS_TOKEN>`.")
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
