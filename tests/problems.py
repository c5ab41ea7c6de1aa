"""Assertions on RFC 9457 problem documents."""

from __future__ import annotations

from typing import Any

import httpx


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:hulian:problem:{code}"
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    assert body.get("request_id") == response.headers["x-request-id"]
    return body
