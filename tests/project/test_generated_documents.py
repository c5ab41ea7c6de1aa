"""The documents under openapi/ are generated from the app (`make openapi`):
the committed copies, and what the command line prints, are what the app
says now."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from app.events.asyncapi import asyncapi_document
from app.main import openapi_document
from tests.dbutil import PROJECT_ROOT

DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "openapi": openapi_document,
    "asyncapi": asyncapi_document,
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_committed_document_matches_the_app(name: str) -> None:
    committed = json.loads((PROJECT_ROOT / "openapi" / f"{name}.json").read_text("utf-8"))
    assert committed == DOCUMENTS[name](), (
        f"openapi/{name}.json has drifted from the app: run `make openapi` and commit it"
    )


@pytest.mark.processes
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_command_line_prints_the_same_document(name: str) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "app", name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(printed) == DOCUMENTS[name]()
