"""A third party's Python client, generated from openapi/openapi.json by
openapi-python-client (pinned in the dev extra), drives the whole loop
against a real server process, written as a client author would write it:
no workaround, no raw HTTP. docs/clients.md shows the same in ten lines."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from tests.conftest import make_settings
from tests.dbutil import PROJECT_ROOT
from tests.live import Ledger, LiveServer, committed_team, park, person_with, phone_of, spots
from tests.principals import next_phone
from tests.scene import SceneTeam, offset

pytestmark = pytest.mark.processes

SPEC = PROJECT_ROOT / "openapi" / "openapi.json"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "hulian_client"


def generate_client(into: Path) -> Path:
    """`openapi-python-client generate`, as its README says, without the
    formatting hook (the generated code is imported, not read)."""
    config = into / "config.yml"
    config.write_text("post_hooks: []\n")
    subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(SPEC),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return into


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    where = generate_client(tmp_path_factory.mktemp("generated"))
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    live = LiveServer(
        database_url,
        tmp_path / "server.log",
        {"search_radius_m": 400, "double_tap_seconds": 0, "run_sweeper": "false"},
    )
    try:
        await live.wait_ready()
        yield live
    finally:
        live.stop()


async def test_the_generated_python_client_drives_the_whole_loop(
    client_package: Any, server: LiveServer, engine: AsyncEngine, database_url: str, ledger: Ledger
) -> None:
    settings: Settings = make_settings(database_url)
    (lat, lng), (far_lat, far_lng) = await spots(engine, 2, 2000)
    await park(engine, ledger, lat, lng, 1500)
    await park(engine, ledger, far_lat, far_lng, 1500)
    team: SceneTeam = await committed_team(
        engine, settings, ledger, *offset(lat, lng, 30, 0), members=3
    )
    volunteer_phone = await phone_of(engine, team.members[0].person_id)
    teammate_phone = await phone_of(engine, team.members[1].person_id)
    resident_phone = next_phone()

    # ---- the client author's code -------------------------------------------------------
    from hulian_client import AuthenticatedClient, Client  # type: ignore[import-not-found]
    from hulian_client.api.auth import create_token, request_otp  # type: ignore[import-not-found]
    from hulian_client.api.calls import (  # type: ignore[import-not-found]
        cancel_call,
        create_call,
        get_call,
        list_call_events,
        rate_call,
        report_progress,
    )
    from hulian_client.api.offers import (  # type: ignore[import-not-found]
        accept_offer,
        decline_offer,
        list_offers,
    )
    from hulian_client.models import (  # type: ignore[import-not-found]
        CallCreate,
        CallProgress,
        OfferStatus,
        OtpRequest,
        Point,
        Problem,
        ProgressStatus,
        RatingCreate,
        TokenRequest,
    )

    async def log_in(phone: str) -> Any:
        anonymous = Client(base_url=server.url)
        sent = await request_otp.asyncio(client=anonymous, body=OtpRequest(phone=phone))
        tokens = await create_token.asyncio(
            client=anonymous, body=TokenRequest(phone=phone, code=sent.debug_code)
        )
        return AuthenticatedClient(base_url=server.url, token=tokens.access_token)

    resident = await log_in(resident_phone)
    ledger.persons.append(await person_with(engine, resident_phone))  # made by the login
    volunteer = await log_in(volunteer_phone)
    teammate = await log_in(teammate_phone)

    call = await create_call.asyncio(
        client=resident, body=CallCreate(location=Point(lat=lat, lng=lng), note="请敲门")
    )
    assert call.status == "offered"
    offers = await list_offers.asyncio(client=volunteer, status=OfferStatus.OPEN)
    offer = next(o for o in offers.data if o.call_id == call.id)
    taken = await accept_offer.asyncio(client=volunteer, offer_id=offer.id)
    assert taken.responder.display_name

    late = await accept_offer.asyncio_detailed(client=teammate, offer_id=offer.id)
    assert late.status_code == 409
    assert isinstance(late.parsed, Problem)
    assert late.parsed.code == "offer_closed"  # a client switches on the code

    for step in ("en_route", "on_site", "resolved"):
        moved = await report_progress.asyncio(
            client=volunteer, call_id=call.id, body=CallProgress(status=ProgressStatus(step))
        )
        assert moved.status == step
    rated = await rate_call.asyncio(client=resident, call_id=call.id, body=RatingCreate(stars=5))
    assert rated.stars == 5
    seen = await get_call.asyncio(client=resident, call_id=call.id)
    assert seen.status == "resolved"
    events = await list_call_events.asyncio(client=resident, call_id=call.id)
    assert [e.type_ for e in events.data][-1] == "call.updated"

    # A call cancelled, and an offer declined, both without a body.
    second = await create_call.asyncio(
        client=resident, body=CallCreate(location=Point(lat=lat, lng=lng))
    )
    offers = await list_offers.asyncio(client=teammate, status=OfferStatus.OPEN)
    offer = next(o for o in offers.data if o.call_id == second.id)
    declined = await decline_offer.asyncio(client=teammate, offer_id=offer.id)
    assert declined.id == offer.id
    cancelled = await cancel_call.asyncio(client=resident, call_id=second.id)
    assert cancelled.status == "cancelled"

    outside = await create_call.asyncio_detailed(
        client=resident, body=CallCreate(location=Point(lat=39.9, lng=116.4))
    )
    assert outside.status_code == 422
    assert outside.parsed.code == "outside_service_area"
