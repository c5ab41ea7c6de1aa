"""Typed domain errors. Services raise these; one handler in `app.http.problems`
renders them as RFC 9457 problem details with a stable `code`."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    # Most errors undo the request's writes. Some must keep them even though
    # the answer is an error: a wrong one-time code still counts as a try, a
    # replayed refresh token still revokes its chain.
    keep_changes: bool = False

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(AppError):
    status = 401
    code = "not_authenticated"
    title = "Not authenticated"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        headers = {"WWW-Authenticate": "Bearer", **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unprocessable(AppError):
    status = 422
    code = "validation_error"
    title = "Invalid request"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(retry_after, 1))}, **kwargs)
        self.extra["retry_after"] = max(retry_after, 1)


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"
    # A dependency that is down is worth trying again soon, not at once.
    retry_after = 5

    def __init__(self, detail: str, **kwargs: Any) -> None:
        headers = {"Retry-After": str(self.retry_after), **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class Overloaded(ServiceUnavailable):
    """Every database connection of this process is busy (the pool waited
    DB_POOL_TIMEOUT_SECONDS), or PostgreSQL refuses more: try again in a moment."""

    code = "overloaded"
    title = "Overloaded"
    retry_after = 1


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "Database unavailable"


class OutsideServiceArea(Unprocessable):
    """A point that no area of the service covers: 422 where the point is
    something to act on (a call, a team's base); a lookup of the point
    (GET /areas/locate) answers it as 404 (API.md)."""

    code = "outside_service_area"
    title = "Outside the service area"
