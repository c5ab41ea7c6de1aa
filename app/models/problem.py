"""RFC 9457 problem details, as every error of the API is written."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='where in the request: e.g. ["query", "lat"]')
    msg: str = Field(description="what is wrong, in English")
    type: str = Field(description="the kind of error, e.g. missing, string_too_long")


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="a URI naming the kind of problem", examples=["urn:hulian:problem:not_found"]
    )
    title: str = Field(description="a short summary of the kind of problem")
    status: int = Field(description="the HTTP status")
    detail: str = Field(description="what went wrong this time")
    code: str = Field(description="stable machine-readable code", examples=["not_found"])
    request_id: str | None = Field(default=None, description="the X-Request-ID of the request")
    errors: list[FieldError] | None = Field(
        default=None, description="validation errors, one per field"
    )
    retry_after: int | None = Field(
        default=None, ge=1, description="429 only: seconds to wait, as in Retry-After"
    )

    @classmethod
    def example(cls, code: str, status: int, title: str, detail: str) -> dict[str, Any]:
        return {
            "type": f"urn:hulian:problem:{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
