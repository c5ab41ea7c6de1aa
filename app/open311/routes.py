"""Open311 GeoReport v2, a sub-application mounted at /open311/v2: its own
error form (`[{"code", "description"}]`, or `<errors>` in XML) by its own
handlers, so the problem details of /api/v1 never touch its answers. Each
path ends in `.json` or `.xml` as the spec has it."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import AppError, Forbidden
from app.http.deps import SessionDep, SettingsDep
from app.identity import principals
from app.identity.auth import ApiKeyPrincipal
from app.open311 import service
from app.open311.formats import Format, errors, render

PREFIX = "/open311/v2"

Fmt = Annotated[Format, Path(description="the answer's format: json or xml")]
QueryText = Annotated[str | None, Query(max_length=2000, description="see the GeoReport v2 spec")]


def _format_of(request: Request) -> Format:
    return Format.xml if request.url.path.endswith(".xml") else Format.json


async def _fields(request: Request) -> dict[str, str]:
    """A POST's fields: form-encoded (the spec) or a JSON object."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise service.Open311Error("the body is not JSON", status=400) from None
        if not isinstance(body, dict):
            raise service.Open311Error("the body must be an object", status=400)
        return {str(k): str(v) for k, v in body.items() if v is not None}
    # Form-encoded, read here: no multipart (media uploads are not taken).
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise service.Open311Error("use form-encoded or JSON fields", status=400)
    try:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise service.Open311Error("the body is not form-encoded UTF-8", status=400) from None
    return dict(pairs)


async def _key(session: Any, request: Request, supplied: str | None) -> ApiKeyPrincipal:
    """The API key (`api_key` field or query parameter, or X-API-Key) with
    the scope open311; else 403 as the spec's examples answer."""
    raw = supplied or request.headers.get("x-api-key")
    if not raw:
        raise service.Open311Error("api_key is required", status=403)
    try:
        key = await principals.api_key(request.app.state.principals, session, raw)
    except AppError:
        raise service.Open311Error("invalid api_key", status=403) from None
    if service.SCOPE not in key.scopes:
        raise Forbidden("this api_key lacks the scope open311")
    return key


def create_open311_app(parent: FastAPI) -> FastAPI:
    """The Open311 application, sharing the parent's state (settings, the
    database) and dependency overrides (tests)."""
    app = FastAPI(
        title="Hulian Open311 GeoReport v2",
        version="v2",
        description="Open311 GeoReport v2 over the one-tap calls (docs/open311.md). "
        "Service codes are the call categories; a request becomes a call.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state = parent.state
    app.dependency_overrides = parent.dependency_overrides

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return errors(_format_of(request), exc.status, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        if where == "response_format":
            return errors(Format.json, 404, "unknown format: use .json or .xml")
        return errors(_format_of(request), 400, f"invalid {where or 'request'}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return errors(_format_of(request), exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return errors(_format_of(request), 500, "internal error")

    @app.get("/discovery.{response_format}")
    async def get_discovery(request: Request, response_format: Fmt) -> Response:
        """Service discovery: where GeoReport v2 is served, in which formats."""
        base = str(request.base_url).rstrip("/") + PREFIX
        return render(
            response_format,
            "discovery",
            {
                "changeset": "2026-12-02T00:00:00Z",
                "contact": "光明街道党工委 · 党群户联网",
                "key_service": "an API key of scope open311, from the service's administrators",
                "endpoints": [
                    {
                        "specification": service.SPECIFICATION,
                        "url": base,
                        "changeset": "2026-12-02T00:00:00Z",
                        "type": "production",
                        "formats": ["text/xml", "application/json"],
                    }
                ],
            },
        )

    @app.get("/services.{response_format}")
    async def list_services(response_format: Fmt) -> Response:
        """The service codes: the call categories."""
        return render(response_format, "services", service.services())

    @app.get("/services/{service_code}.{response_format}")
    async def get_service_definition(
        service_code: Annotated[str, Path(max_length=32, description="a service code")],
        response_format: Fmt,
    ) -> Response:
        """A service's definition: no attributes."""
        return render(
            response_format, "service_definition", service.service_definition(service_code)
        )

    @app.post("/requests.{response_format}")
    async def create_request(
        request: Request,
        response_format: Fmt,
        session: SessionDep,
        settings: SettingsDep,
    ) -> Response:
        """File a request (form-encoded or JSON fields of the spec, `api_key`
        among them): it becomes a call, offered at once like a press."""
        fields = await _fields(request)
        key = await _key(session, request, fields.get("api_key"))
        made = await service.post_request(session, settings, key.key_id, fields)
        return render(response_format, "service_requests", made, 201)

    @app.get("/requests.{response_format}")
    async def list_requests(
        request: Request,
        response_format: Fmt,
        session: SessionDep,
        api_key: QueryText = None,
        service_request_id: QueryText = None,
        service_code: QueryText = None,
        start_date: QueryText = None,
        end_date: QueryText = None,
        status: QueryText = None,
    ) -> Response:
        """The key's own requests (newest first, at most 1000; the last 90
        days unless dates are given)."""
        key = await _key(session, request, api_key)
        wanted = service.request_filter(
            service_request_id, service_code, start_date, end_date, status
        )
        found = await service.list_requests(session, key.key_id, wanted)
        return render(response_format, "service_requests", found)

    @app.get("/requests/{service_request_id}.{response_format}")
    async def get_request(
        request: Request,
        service_request_id: Annotated[str, Path(max_length=64, description="a request's id")],
        response_format: Fmt,
        session: SessionDep,
        api_key: QueryText = None,
    ) -> Response:
        """One of the key's own requests; another's → 404."""
        key = await _key(session, request, api_key)
        found = await service.one_request(session, key.key_id, service_request_id)
        return render(response_format, "service_requests", found)

    return app
