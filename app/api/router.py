"""Every router of the service, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import (
    admin,
    areas,
    auth,
    calls,
    dispatch,
    health,
    me,
    notifications,
    offers,
    teams,
    ws,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.router,
    me.router,
    notifications.router,
    areas.router,
    teams.router,
    calls.router,
    offers.router,
    dispatch.router,
    admin.router,
    ws.router,
)
