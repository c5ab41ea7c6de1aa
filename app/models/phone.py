"""A phone number as a client sends it: the one type of every request
body's `phone`. The service normalises it to E.164
(`app/core/phones.py::normalize_phone`), answering 422 `invalid_phone`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from app.core.phones import PHONE_PATTERN

PHONE_EXAMPLE = "+8613800000000"
PHONE_DESCRIPTION = "E.164; a Chinese mobile number without +86 is accepted"

# The pattern is stated, not enforced by pydantic: `normalize_phone` refuses
# what does not match with its own code, `invalid_phone`, as before.
Phone = Annotated[
    str,
    StringConstraints(min_length=3, max_length=32),
    Field(json_schema_extra={"pattern": PHONE_PATTERN}),
]
