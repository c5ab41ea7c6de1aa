"""Every route of the service, by prefix."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import areas, health, teams

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(areas.router)
api_router.include_router(teams.router)

root_router = APIRouter()
root_router.include_router(health.router)
