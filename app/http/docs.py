"""`/docs` (Swagger UI) and `/redoc`, their scripts, styles and icon served
from here: the files ship in the package fastapi-offline, pinned in
requirements.lock. FastAPI's own pages load them from a CDN, and a page
that runs a CDN's script runs whatever the CDN serves, next to the tokens a
reader pastes into it. Off in production unless DOCS_ENABLED says so."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"

_STATIC = Path(fastapi_offline.__file__).parent / "static"
# The only files served, by name: nothing else of the package is reachable.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# The same files for everyone, changed only with the package's version.
_ASSET_CACHE = "public, max-age=86400"


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def install_docs(app: FastAPI) -> None:
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # Swagger UI would otherwise send the spec's address to a public
            # validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404)
        return FileResponse(
            _STATIC / name, media_type=media_type, headers={"cache-control": _ASSET_CACHE}
        )

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
    app.add_route(ASSETS_URL + "/{name}", asset, include_in_schema=False)
