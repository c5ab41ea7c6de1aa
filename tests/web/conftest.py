"""Browser tests: the built web app, a server process, Debian's chromium.

The app is built once per session when web/dist is missing or older than
its sources or the spec (`npm run build` in web/, as `make web` does). What
the tests commit is undone by the ledger (tests/clients/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.clients.conftest import ledger  # noqa: F401 - the same undoing
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, WEB


def _newest(*roots: Path) -> float:
    return max(
        (p.stat().st_mtime for root in roots for p in root.rglob("*") if p.is_file()),
        default=0.0,
    )


@pytest.fixture(scope="session")
def web_dist() -> Path:
    assert Path(CHROMIUM).exists(), f"chromium is needed at {CHROMIUM} (.ci/run installs it)"
    dist = WEB / "dist"
    index = dist / "index.html"
    sources = [WEB / "src", WEB / "public", WEB / "index.html", WEB / "package-lock.json"]
    spec = WEB.parent / "openapi" / "openapi.json"
    newest = max(
        _newest(*(s for s in sources if s.is_dir())),
        *(s.stat().st_mtime for s in [*sources, spec] if s.is_file()),
    )
    if not index.is_file() or index.stat().st_mtime < newest:
        assert shutil.which("npm"), "npm is needed to build the web app (make web)"
        if not (WEB / "node_modules" / ".bin" / "vite").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
        done = subprocess.run(
            ["npm", "run", "build"], cwd=WEB, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"npm run build:\n{done.stdout}\n{done.stderr}"
    return dist


@pytest.fixture(scope="session")
async def browser(web_dist: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
