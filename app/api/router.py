"""Every router of the service, in the order the OpenAPI document lists them.

The routes live with their domain (`app/<domain>/routes.py`); this is the one
place that gathers them.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.activities import routes as activities
from app.areas import routes as areas
from app.audit import routes as audit
from app.calls import routes as calls
from app.dispatch import routes as dispatch
from app.duty import routes as duty
from app.events import asyncapi, ws
from app.health import routes as health
from app.households import routes as households
from app.identity import admin_routes, me_routes
from app.identity import routes as identity
from app.kpis import routes as kpis
from app.notifications import device_routes
from app.notifications import routes as notifications
from app.offers import routes as offers
from app.screen_feed import routes as screen_feed
from app.screens import routes as screens
from app.stars import routes as stars
from app.teams import admin_routes as team_admin_routes
from app.teams import routes as teams

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    identity.router,
    me_routes.router,
    households.me_router,
    device_routes.router,
    duty.router,
    notifications.router,
    areas.router,
    teams.router,
    activities.router,
    calls.router,
    offers.router,
    dispatch.router,
    kpis.router,
    stars.router,
    screen_feed.router,
    households.dispatch_router,
    team_admin_routes.router,
    admin_routes.router,
    households.admin_router,
    screens.admin_router,
    screens.public_router,
    audit.router,
    ws.router,
    asyncapi.router,
)
