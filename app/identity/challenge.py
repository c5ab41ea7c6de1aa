"""A check on the sending side of login codes: a CAPTCHA, a proof of work.

Anyone may ask for a code for any phone, and each code spends one of the
phone's OTP_PER_PHONE_PER_HOUR, so a bot can use up a phone's codes for the
hour (docs/security.md, "One-time codes under attack"). A `SendChallenge`
runs before anything is spent or sent: when it refuses, the answer is 403
`challenge_failed` and neither the phone's nor the address's limit moves.
The client sends its answer (a CAPTCHA token, a proof-of-work nonce) in the
`X-Challenge-Response` header.

`none`, the default, lets every request through. Another check implements
`SendChallenge` and gets a name in OTP_CHALLENGE.
"""

from __future__ import annotations

from typing import Protocol

from app.audit.log import RequestOrigin
from app.core.config import OtpChallenge, Settings
from app.core.errors import Forbidden

CHALLENGE_HEADER = "X-Challenge-Response"


class ChallengeFailed(Forbidden):
    code = "challenge_failed"
    title = "Challenge failed"


class SendChallenge(Protocol):
    async def check(self, phone_e164: str, origin: RequestOrigin, answer: str | None) -> bool:
        """True when a code may be sent to `phone_e164` for this request;
        `answer` is the client's `X-Challenge-Response`, if it sent one."""
        ...


class NoChallenge:
    async def check(self, phone_e164: str, origin: RequestOrigin, answer: str | None) -> bool:
        return True


def make_send_challenge(settings: Settings) -> SendChallenge:
    if settings.otp_challenge is OtpChallenge.none:
        return NoChallenge()
    raise ValueError(f"unknown OTP challenge {settings.otp_challenge!r}")  # pragma: no cover
