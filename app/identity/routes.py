from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from app.http.deps import (
    ChallengeDep,
    CurrentUser,
    OriginDep,
    SessionDep,
    SettingsDep,
    SmsDep,
)
from app.http.prefix import API_PREFIX
from app.identity import auth
from app.models.auth import OtpRequest, OtpSent, RefreshRequest, TokenPair, TokenRequest

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"])


@router.post("/otp", status_code=status.HTTP_202_ACCEPTED)
async def request_otp(
    body: OtpRequest,
    session: SessionDep,
    settings: SettingsDep,
    sms: SmsDep,
    challenge: ChallengeDep,
    origin: OriginDep,
    x_challenge_response: Annotated[
        str | None,
        Header(
            max_length=4096,
            description="the answer to the deployment's CAPTCHA or proof of work, if it has one",
        ),
    ] = None,
) -> OtpSent:
    """Send a six-digit login code by SMS; earlier codes of the phone stay
    valid. 429 `rate_limited` (per phone or per address, per hour) or
    `otp_resend_too_soon`, with Retry-After; 403 `challenge_failed` when the
    deployment asks for a CAPTCHA or proof of work and did not get it."""
    return await auth.request_code(
        session, settings, sms, body.phone, origin, challenge, x_challenge_response
    )


@router.post("/token")
async def create_token(
    body: TokenRequest, session: SessionDep, settings: SettingsDep, origin: OriginDep
) -> TokenPair:
    """Exchange a phone and one of its newest codes for tokens; the first
    login creates the person (a resident). A wrong, expired or used code →
    401 `invalid_otp`; too many tries for the phone from one address → 429
    `rate_limited` with Retry-After."""
    return await auth.login(session, settings, body.phone, body.code, origin)


@router.post("/refresh")
async def refresh_token(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, origin: OriginDep
) -> TokenPair:
    """New tokens for a refresh token, which is then used up. Presenting a used
    one again → 401 `refresh_token_reused`, and its whole chain is revoked."""
    return await auth.refresh(session, settings, body.refresh_token, origin)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout_session(user: CurrentUser, session: SessionDep, origin: OriginDep) -> Response:
    """End the session: its access and refresh tokens stop working."""
    await auth.logout(session, user, origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
