"""Sending one-time codes by SMS, behind one small interface.

`console` is the only backend so far: it logs that a code went to a masked
phone (never the code) and, outside production, hands the code back so the
API can show it as `debug_code`. A real provider implements `SmsSender`
and is chosen by SMS_BACKEND; production refuses `console`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from app.core.config import AppEnv, Settings, SmsBackend
from app.services.phones import mask_phone

log = logging.getLogger("hulian.sms")


class SmsSender(Protocol):
    async def send_code(self, phone_e164: str, code: str, ttl_seconds: int) -> str | None:
        """Send `code`; return it only when it may be shown to the caller
        (a development backend), else None."""
        ...


class ConsoleSms:
    def __init__(self, reveal: bool) -> None:
        self._reveal = reveal

    async def send_code(self, phone_e164: str, code: str, ttl_seconds: int) -> str | None:
        log.info("otp sent", extra={"phone": mask_phone(phone_e164), "ttl_s": ttl_seconds})
        return code if self._reveal else None


def make_sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_backend is SmsBackend.console:
        return ConsoleSms(reveal=settings.app_env is not AppEnv.production)
    raise ValueError(f"unknown SMS backend {settings.sms_backend!r}")  # pragma: no cover
