"""JWTs for access and refresh, and digests of secrets kept at rest.

Access tokens are short-lived JWTs (HS256, the allow-list: `none` and every
other algorithm are refused); each names its session (`sid`), and every
request checks that the session is alive and its person not disabled, so a
logout or a disable takes effect in every process within 1 s (each process
keeps the principals it loaded until a NOTIFY says they changed:
app/identity/principals.py). Refresh tokens
are JWTs too (`typ: refresh`), one per link of the session's chain, each
usable once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt

from app.core.config import Settings
from app.core.errors import Unauthorized

ISSUER = "hulian"
AUDIENCE = "hulian-api"
ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


class InvalidToken(Unauthorized):
    code = "invalid_token"
    title = "Invalid token"


@dataclass(frozen=True)
class TokenClaims:
    person_id: uuid.UUID
    session_id: uuid.UUID
    token_id: uuid.UUID
    expires_at: datetime


def encode(
    settings: Settings,
    kind: TokenType,
    *,
    person_id: uuid.UUID,
    session_id: uuid.UUID,
    token_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(person_id),
        "sid": str(session_id),
        "jti": str(token_id),
        "typ": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


# Tokens this process has verified, by (secret, token): the signature and
# the claims are a function of the two, so a token seen again (every request
# of a signed-in client) is not verified again. Its expiry is checked on
# every use, as PyJWT checks it (expired once `exp` <= now); its kind too.
# Only tokens that verified enter; at most VERIFIED_MAX, the oldest leave
# first. (Verifying was 4 % of a press's CPU.)
VERIFIED_MAX = 4096
_verified: dict[tuple[str, str], tuple[str, int, TokenClaims]] = {}
_now = time.time


def decode(settings: Settings, token: str, kind: TokenType) -> TokenClaims:
    """The claims of a valid token of this kind, or InvalidToken."""
    key = (settings.secret_key, token)
    known = _verified.get(key)
    if known is None:
        known = _verify(settings, token)
        if len(_verified) >= VERIFIED_MAX:
            del _verified[next(iter(_verified))]
        _verified[key] = known
    typ, exp, claims = known
    if exp <= _now():
        raise InvalidToken("The token has expired.", code="token_expired")
    if typ != kind:
        raise InvalidToken(f"An {kind} token is needed here.")
    return claims


def _verify(settings: Settings, token: str) -> tuple[str, int, TokenClaims]:
    """The kind, expiry and claims of a token whose signature and claims
    verify (PyJWT), or InvalidToken."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "sid", "jti", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The token has expired.", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("The token is not valid.") from exc
    try:
        return (
            str(claims.get("typ")),
            int(claims["exp"]),
            TokenClaims(
                person_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                token_id=uuid.UUID(claims["jti"]),
                expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
            ),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidToken("The token is not valid.") from exc


def digest(value: str) -> str:
    """SHA-256 of a high-entropy secret (API keys): enough at rest."""
    return hashlib.sha256(value.encode()).hexdigest()


def keyed_digest(settings: Settings, *parts: str) -> str:
    """HMAC-SHA256 under the server's secret, for low-entropy secrets (a
    six-digit code): a leaked table alone does not give the codes away."""
    message = "\x1f".join(parts).encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
