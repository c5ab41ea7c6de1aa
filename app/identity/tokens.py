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

import base64
import binascii
import functools
import hashlib
import hmac
import json
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
    verify, or InvalidToken: `_signed_here` for the canonical form of our
    own tokens, PyJWT for every other token (it decides)."""
    claims = _signed_here(settings.secret_key, token)
    if claims is None:
        claims = _pyjwt(settings, token)
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


_REQUIRED = ("exp", "iat", "iss", "aud", "sub", "sid", "jti", "typ")


def _pyjwt(settings: Settings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": list(_REQUIRED)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The token has expired.", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("The token is not valid.") from exc
    return claims


# The fast path. PyJWT took 55-85 µs of CPU to verify a token in a loop
# (280 µs in place), about 3 % of a press whose resident's token is new to
# the process (a surge of first presses); this takes 21-24 µs with the
# claims built (bench/results/token-fast/). It
# accepts only what PyJWT accepts, and only in the exact form `encode`
# writes: the header PyJWT writes for HS256, the signature in its canonical
# base64url, a payload of exactly our claims with their types, issued in
# the past and not expired. Anything else, valid or not, is left to PyJWT,
# so errors and edge cases are PyJWT's (tests/identity/test_tokens.py holds
# the two to the same answers).
_HEADER = jwt.encode({}, "h" * 32, algorithm=ALGORITHM).partition(".")[0]
_CLAIMS = frozenset(_REQUIRED)


@functools.lru_cache(maxsize=4)
def _mac(secret: str) -> Any:
    """HMAC-SHA256 keyed with `secret`, ready to copy (keying costs more
    than copying)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _signed_here(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a canonical, valid token of ours; None for any other."""
    header, _, rest = token.partition(".")
    payload, _, signature = rest.partition(".")
    if header != _HEADER or not payload or not signature.isascii():
        return None
    mac = _mac(secret).copy()
    mac.update(f"{header}.{payload}".encode())
    expected = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict) or claims.keys() != _CLAIMS:
        return None
    exp, iat = claims["exp"], claims["iat"]
    now = _now()
    if (
        claims["iss"] != ISSUER
        or claims["aud"] != AUDIENCE
        or type(exp) is not int
        or type(iat) is not int
        or not exp > now >= iat
        or not all(type(claims[k]) is str for k in ("sub", "sid", "jti", "typ"))
    ):
        return None
    return claims


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
