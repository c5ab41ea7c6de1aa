"""Every error as RFC 9457 problem details (`application/problem+json`) with
a stable `code`; nothing internal ever reaches the client."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.db import unavailable
from app.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from app.core.logging import mark_logged
from app.http.middleware import SECURITY_HEADERS
from app.models.problem import Problem

log = logging.getLogger("hulian.errors")

PROBLEM_JSON = "application/problem+json"

# Stable codes for errors raised by the framework itself.
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


# One title per code: where a code is also raised as an error class, the
# framework's answer goes out under the class's title.
_CLASS_TITLES: dict[str, str] = {
    cls.code: cls.title
    for cls in (
        AppError,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Unprocessable,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def framework_problem(status: int) -> tuple[str, str]:
    """The code and title of an error the framework raises with `status`."""
    code = _HTTP_CODES.get(status, "http_error")
    if code == "http_error":
        return code, "HTTP error"
    return code, _CLASS_TITLES.get(code) or _HTTP_TITLES.get(status) or HTTPStatus(status).phrase


# Where Python's phrase is not RFC 9110's (3.11 still says "Request Entity
# Too Large"); BodyLimitMiddleware writes the same title.
_HTTP_TITLES: dict[int, str] = {413: "Content Too Large"}


PROBLEM_REF = "#/components/schemas/Problem"


def document_problems(schema: dict[str, Any]) -> None:
    """The Problem schema, in place of FastAPI's validation-error schemas;
    which problems each operation answers is `app/http/responses.py`'s."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for defs_name, definition in components["Problem"].pop("$defs", {}).items():
        components.setdefault(defs_name, definition)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def problem_type(code: str) -> str:
    return f"urn:hulian:problem:{code}"


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    headers = dict(headers or {})
    request_id = getattr(request.state, "request_id", None)
    # Set here too: a 500 is sent from outside the request-id middleware.
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if request_id:
        body["request_id"] = request_id
        headers.setdefault("x-request-id", request_id)
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        request, exc.status, exc.code, exc.detail, title=exc.title, headers=exc.headers, **exc.extra
    )


def _loc(parts: tuple[Any, ...] | list[Any]) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in parts]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The submitted values are left out on purpose: they may be personal data.
    errors = [
        {
            "loc": _loc(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        detail = "The request body is not valid JSON."
    else:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        detail = f"The request has invalid or missing values: {fields}."
    return problem_response(
        request, 422, "validation_error", detail, title="Invalid request", errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code, title = framework_problem(status)
    headers = dict(exc.headers or {})
    if status == 404:
        detail = "There is nothing at this address."
    elif status == 405:
        detail = "This method is not allowed here."
        headers["Allow"] = ", ".join(_path_methods(request))
    else:
        detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    return problem_response(request, status, code, detail, title=title, headers=headers)


def _path_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path: a path is
    served by one route per method, and Starlette's 405 names only the
    first route's."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The one line for this error: its classes and frames, never its message
    # (app/core/logging.py). Starlette re-raises it after this answer, and
    # uvicorn's second report of it is dropped by the log's filter.
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={
            "request_id": getattr(request.state, "request_id", None),
            "error": f"{type(exc).__module__}.{type(exc).__qualname__}",
        },
    )
    mark_logged(exc)
    return problem_response(
        request,
        500,
        "internal_error",
        "Something went wrong on our side; it has been logged.",
        title=framework_problem(500)[1],
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database that is busy or away answers 503 with Retry-After
    (`app.core.db.unavailable`); any other database error is unexpected."""
    answer = unavailable(exc)
    if answer is None:
        return await _unexpected_error(request, exc)
    log.warning(
        "database unavailable",
        extra={
            "request_id": getattr(request.state, "request_id", None),
            "code": answer.code,
            "error": f"{type(exc).__module__}.{type(exc).__qualname__}",
        },
    )
    return await _app_error(request, answer)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    for database_failure in (sa_exc.TimeoutError, sa_exc.DBAPIError, ConnectionError):
        app.add_exception_handler(database_failure, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
