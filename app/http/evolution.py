"""How the API may grow, said in the spec itself (docs/clients.md, "How the
API evolves"): new properties, new operations, and new values of the enums
the server sends. Every enum a response can carry is marked
`x-extensible-enum: true` and says in words that a client must take an
unknown value as "other"; enums that appear only in requests are closed
from the client's side (it sends values it knows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

EXTENSIBLE = "x-extensible-enum"
NOTE = (
    "More values may be added in later versions of /api/v1: take a value you "
    'do not know as "other", never fail on it.'
)
POLICY = """
**How it evolves.** `/api/v1` grows without breaking: new operations, new
properties in answers, new values of the enums the server sends (marked
`x-extensible-enum`). A client ignores properties it does not know and takes
an enum value it does not know as "other"; paths, methods, the meaning and
type of documented properties and the `code` of documented problems do not
change (CHANGELOG.md lists every addition).
"""


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def answered_schemas(schema: dict[str, Any]) -> set[str]:
    """The component schemas an answer of some operation can contain."""
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    pending = [
        name
        for item in schema.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict)
        for name in _refs(operation.get("responses", {}))
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in components:
            continue
        seen.add(name)
        pending.extend(_refs(components[name]))
    return seen


def mark_extensible_enums(schema: dict[str, Any]) -> None:
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    for name in sorted(answered_schemas(schema)):
        component = components[name]
        if "enum" in component:
            component[EXTENSIBLE] = True
            described = component.get("description", "").rstrip()
            component["description"] = f"{described}\n\n{NOTE}".strip()
    info = schema.setdefault("info", {})
    info["description"] = info.get("description", "").rstrip() + "\n" + POLICY
