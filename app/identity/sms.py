"""Sending one-time codes by SMS, behind one small interface.

- `console` logs that a code went to a masked phone (never the code) and,
  outside production, hands the code back so the API can show it as
  `debug_code`. Production refuses it.
- `http` posts the message to an SMS gateway (SMS_HTTP_URL, with
  SMS_HTTP_TOKEN as a bearer token): the shape of a government or carrier
  SMS platform. A gateway that fails or does not answer in time makes the
  request fail with 503 `sms_unavailable`, and nothing of it is kept.

Another provider implements `SmsSender` and gets a name in SMS_BACKEND.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from app.core.config import AppEnv, Settings, SmsBackend
from app.core.errors import ServiceUnavailable
from app.core.phones import mask_phone

log = logging.getLogger("hulian.sms")


class SmsSender(Protocol):
    async def send_code(self, phone_e164: str, code: str, ttl_seconds: int) -> str | None:
        """Send `code`; return it only when it may be shown to the caller
        (a development backend), else None."""
        ...

    async def send_text(self, phone_e164: str, message: str, purpose: str) -> None:
        """Send a text that needs no answer (a walk-up caller's call
        status); raise SmsUnavailable when it did not go."""
        ...

    async def close(self) -> None: ...


class ConsoleSms:
    def __init__(self, reveal: bool) -> None:
        self._reveal = reveal

    async def send_code(self, phone_e164: str, code: str, ttl_seconds: int) -> str | None:
        log.info("otp sent", extra={"phone": mask_phone(phone_e164), "ttl_s": ttl_seconds})
        return code if self._reveal else None

    async def send_text(self, phone_e164: str, message: str, purpose: str) -> None:
        # What went, to whom (masked): never the text, which a deployment
        # may word with more than it should.
        log.info("sms sent", extra={"phone": mask_phone(phone_e164), "purpose": purpose})

    async def close(self) -> None:
        return None


class SmsUnavailable(ServiceUnavailable):
    code = "sms_unavailable"
    title = "SMS unavailable"


class HttpSms:
    """POST `{"phone", "message", "purpose"}` to a gateway (`login_code`, or
    `call_accepted` / `call_resolved` for a walk-up caller at a screen)."""

    TIMEOUT_S = 5.0

    def __init__(self, url: str, token: str | None, template: str) -> None:
        self._url = url
        self._template = template
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=self.TIMEOUT_S)

    async def send_code(self, phone_e164: str, code: str, ttl_seconds: int) -> str | None:
        message = self._template.format(code=code, minutes=max(1, ttl_seconds // 60))
        await self._post(phone_e164, message, "login_code")
        log.info("otp sent", extra={"phone": mask_phone(phone_e164), "ttl_s": ttl_seconds})
        return None

    async def send_text(self, phone_e164: str, message: str, purpose: str) -> None:
        await self._post(phone_e164, message, purpose)
        log.info("sms sent", extra={"phone": mask_phone(phone_e164), "purpose": purpose})

    async def _post(self, phone_e164: str, message: str, purpose: str) -> None:
        """One message to the gateway; SmsUnavailable when it is away or refuses."""
        try:
            response = await self._client.post(
                self._url, json={"phone": phone_e164, "message": message, "purpose": purpose}
            )
        except httpx.HTTPError as exc:
            log.warning("sms gateway unreachable", extra={"error": type(exc).__name__})
            raise SmsUnavailable("The SMS service cannot be reached; try again soon.") from exc
        if response.status_code >= 300:
            log.warning("sms gateway refused", extra={"status": response.status_code})
            raise SmsUnavailable("The SMS service did not take the message; try again soon.")

    async def close(self) -> None:
        await self._client.aclose()


def make_sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_backend is SmsBackend.console:
        return ConsoleSms(reveal=settings.app_env is not AppEnv.production)
    if settings.sms_backend is SmsBackend.http:
        assert settings.sms_http_url is not None  # the settings refuse it otherwise
        token = settings.sms_http_token.get_secret_value() if settings.sms_http_token else None
        return HttpSms(str(settings.sms_http_url), token, settings.sms_template)
    raise ValueError(f"unknown SMS backend {settings.sms_backend!r}")  # pragma: no cover
