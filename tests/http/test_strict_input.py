"""Request bodies take JSON as typed: a number is a JSON number, a boolean a
JSON boolean. `"lat": "22.77"` or `"accuracy_m": false` was coerced and
accepted; a generated client in a typed language never sends them, so the
server taking them only hid client bugs (issue 12, item 6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from app.api.router import ROUTERS
from tests.problems import assert_problem

POINT = {"lat": 22.77, "lng": 113.93, "accuracy_m": 8}


@pytest.mark.parametrize(
    "location",
    [
        {**POINT, "lat": "22.77"},
        {**POINT, "lng": "113.93"},
        {**POINT, "accuracy_m": False},
        {**POINT, "accuracy_m": "8"},
        {**POINT, "lat": True},
    ],
)
async def test_numbers_are_json_numbers(
    client: httpx.AsyncClient, location: dict[str, Any]
) -> None:
    response = await client.post("/api/v1/calls", json={"location": location})
    assert_problem(response, 422, "validation_error")


async def test_integers_still_count_as_floats(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/calls", json={"location": {"lat": 22, "lng": 114, "accuracy_m": 8}}
    )
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:  # outside the demo district, not a type error
        assert response.json()["code"] == "outside_service_area"


def _leaves(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """(name, annotated type) of every number and boolean field, nested models included."""
    found: list[tuple[str, FieldInfo]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        options = getattr(annotation, "__args__", (annotation,))
        for option in options:
            if isinstance(option, type) and issubclass(option, BaseModel):
                found += [(f"{name}.{n}", f) for n, f in _leaves(option)]
            elif option in (int, float, bool):
                found.append((name, field))
    return found


def test_every_request_body_number_and_boolean_is_strict() -> None:
    """Over every request body of every route, as FastAPI validates it
    (Python mode, on the decoded JSON): no string or boolean becomes a number,
    no number or string a boolean."""
    checked = 0
    for route in (route for router in ROUTERS for route in router.routes):
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        model = route.body_field.field_info.annotation
        for option in getattr(model, "__args__", (model,)):
            if not (isinstance(option, type) and issubclass(option, BaseModel)):
                continue
            for name, field in _leaves(option):
                adapter: TypeAdapter[Any] = TypeAdapter(field.rebuild_annotation())
                wrong = ("1", False) if field.annotation is not bool else ("true", 1)
                for value in wrong:
                    try:
                        adapter.validate_python(value)
                    except ValidationError:
                        checked += 1
                    else:
                        pytest.fail(f"{option.__name__}.{name} accepts {value!r}")
    assert checked > 0
