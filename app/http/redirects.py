"""The trailing-slash redirect (`/healthz/` → `/healthz`), to a relative
address. Starlette's own builds an absolute URL from the request's Host
header, which the client writes: with a forged Host (passed on by a proxy,
or kept by a cache) it sends a browser to any site."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.routing import Match
from starlette.types import Receive, Scope, Send


def install_slash_redirect(app: FastAPI) -> None:
    router = app.router
    router.redirect_slashes = False
    not_found = router.default

    async def slash_redirect_or_not_found(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            # `//host` or `/\host` would be read as another site's address.
            if other.startswith("/") and not other.startswith(("//", "/\\")):
                moved = {**scope, "path": other}
                if any(route.matches(moved)[0] is not Match.NONE for route in router.routes):
                    query = scope.get("query_string", b"").decode("latin-1")
                    location = f"{other}?{query}" if query else other
                    await RedirectResponse(location, status_code=307)(scope, receive, send)
                    return
        await not_found(scope, receive, send)

    router.default = slash_redirect_or_not_found
