"""The API's point: WGS 84 latitude/longitude with an optional accuracy.

Numbers are strict, as in every request body: a JSON number (an integer
too), never a string or a boolean (`tests/http/test_strict_input.py`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Point(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lat": 22.77, "lng": 113.93, "accuracy_m": 15}]},
    )

    lat: float = Field(strict=True, ge=-90, le=90, description="latitude, WGS 84 degrees")
    lng: float = Field(strict=True, ge=-180, le=180, description="longitude, WGS 84 degrees")
    accuracy_m: float | None = Field(
        default=None, strict=True, ge=0, le=100_000, description="horizontal accuracy, metres"
    )
