"""GeoReport v2's two formats: JSON, and XML with the spec's element names
(a list's root and one element per item), UTF-8 with its declaration."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import Response


class Format(StrEnum):
    json = "json"
    xml = "xml"


# A list's root element and its items' element, by what the list holds.
LISTS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}


def _element(parent: ET.Element, name: str, value: Any) -> None:
    node = ET.SubElement(parent, name)
    _fill(node, name, value)


def _fill(node: ET.Element, name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _element(node, key, item)
    elif isinstance(value, list):
        child = LISTS.get(name, "item")
        for item in value:
            _element(node, child, item)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    else:
        node.text = str(value)


def to_xml(root: str, value: Any) -> bytes:
    node = ET.Element(root)
    _fill(node, root, value)
    body: bytes = ET.tostring(node, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def render(fmt: Format, root: str, value: Any, status: int = 200) -> Response:
    """`value` as JSON, or as XML under the element `root`."""
    if fmt is Format.xml:
        return Response(to_xml(root, value), status, media_type="text/xml; charset=utf-8")
    return Response(
        json.dumps(value, ensure_ascii=False, default=str).encode(),
        status,
        media_type="application/json",
    )


def errors(fmt: Format, status: int, description: str) -> Response:
    """The spec's error form: `[{"code", "description"}]`, `<errors><error>…`."""
    return render(fmt, "errors", [{"code": status, "description": description}], status)
