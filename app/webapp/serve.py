"""`/app/`: the reference web app, built by Vite into `web/dist` (docs/web.md).

Served by this process so that `make run` needs no second server and the app
is same-origin with the API (no CORS, and its WebSocket passes the origin
check). Hashed files under `/app/assets/` are cached for a year; everything
else (the page, the service worker, the manifest) is revalidated on every
load, so a new build reaches phones at once. `/app/config.js` hands the page
its deployment's settings (a tile style for maps). Nothing else of the disk
is reachable: a path is resolved and must stay inside the build.
"""

from __future__ import annotations

import json
import mimetypes

from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import ServiceUnavailable

PREFIX = "/app"

_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"

mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("text/javascript", ".js")


def content_security_policy(settings: Settings) -> str:
    """Scripts and styles only from here; MapLibre's worker from a blob; a
    tile style's host when one is set."""
    connect = ["'self'", "ws:", "wss:"]
    if settings.web_tile_style_url:
        connect.append("https:")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:" + (" https:" if settings.web_tile_style_url else ""),
            "font-src 'self' data:",
            "connect-src " + " ".join(connect),
            "worker-src 'self' blob:",
            "child-src blob:",
            "manifest-src 'self'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


class NotBuilt(ServiceUnavailable):
    code = "web_app_not_built"
    title = "The web app is not built"


class WebApp:
    """An ASGI app mounted at /app: the built files, and config.js."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.web_dist_dir.resolve()
        self.csp = content_security_policy(settings)
        self.config_js = (
            "window.HULIAN_TILE_STYLE = " + json.dumps(settings.web_tile_style_url or None) + ";\n"
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        # Mounted: root_path ends with /app and path is the whole path.
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        rest = path[len(root) :] if path.startswith(root) else path
        if scope["method"] not in ("GET", "HEAD"):
            return Response(status_code=405, headers={"Allow": "GET, HEAD"})
        if rest == "":
            return RedirectResponse(f"{root}/", status_code=308)
        if rest == "/config.js":
            return self._headers(
                Response(self.config_js, media_type="text/javascript"), _REVALIDATE
            )
        index = self.root / "index.html"
        if not index.is_file():
            raise NotBuilt("the web app is not built: run `make web` (npm ci and build in web/)")
        if rest == "/":
            return self._headers(FileResponse(index), _REVALIDATE)
        wanted = (self.root / rest.lstrip("/")).resolve()
        if not wanted.is_relative_to(self.root) or not wanted.is_file():
            return self._headers(
                Response("not found", status_code=404, media_type="text/plain"), _REVALIDATE
            )
        cache = _IMMUTABLE if rest.startswith("/assets/") else _REVALIDATE
        return self._headers(FileResponse(wanted), cache)

    def _headers(self, response: Response, cache: str) -> Response:
        response.headers["Cache-Control"] = cache
        response.headers["Content-Security-Policy"] = self.csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        # The page asks for the position and notifications itself, never a frame.
        response.headers["Permissions-Policy"] = "geolocation=(self), camera=(), microphone=()"
        return response
