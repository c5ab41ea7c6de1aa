"""Decoding a token (app/identity/tokens.py): a token verified once is not
verified again in this process, and what a verification decides still holds
on every use (its expiry, its kind, the secret it was signed with). Our own
tokens are verified by a fast path that accepts only what PyJWT accepts,
with the same claims; every other token is PyJWT's to judge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import settings as settings_
from hypothesis import strategies as st

from app.core.config import Settings
from app.identity import tokens
from app.identity.tokens import InvalidToken, TokenType
from tests.conftest import make_settings

URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/unused"


def _settings(secret: str = "s" * 40) -> Settings:
    return make_settings(URL, secret_key=secret)


def _token(
    settings: Settings, kind: TokenType = "access", ttl: timedelta = timedelta(minutes=5)
) -> str:
    return tokens.encode(
        settings,
        kind,
        person_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        token_id=uuid.uuid4(),
        now=datetime.now(UTC),
        ttl=ttl,
    )


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens verified (by either path), from an empty cache."""
    monkeypatch.setattr(tokens, "_verified", {})
    seen: list[str] = []
    real = tokens._verify

    def counting(settings: Settings, token: str) -> Any:
        seen.append(token)
        return real(settings, token)

    monkeypatch.setattr(tokens, "_verify", counting)
    return seen


@pytest.fixture
def pyjwt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens handed to PyJWT."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def test_a_token_seen_again_is_not_verified_again(verifications: list[str]) -> None:
    settings = _settings()
    token = _token(settings)
    first = tokens.decode(settings, token, "access")
    assert tokens.decode(settings, token, "access") == first
    assert verifications == [token]


def test_a_known_token_still_expires(
    verifications: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings()
    token = _token(settings)
    claims = tokens.decode(settings, token, "access")
    expiry = claims.expires_at.timestamp()
    monkeypatch.setattr(tokens, "_now", lambda: expiry - 1)
    assert tokens.decode(settings, token, "access") == claims
    monkeypatch.setattr(tokens, "_now", lambda: expiry)
    with pytest.raises(InvalidToken) as expired:
        tokens.decode(settings, token, "access")
    assert expired.value.code == "token_expired"
    assert verifications == [token], "expired from the cache, as PyJWT would say"


def test_a_known_token_is_still_of_its_kind_and_its_secret(verifications: list[str]) -> None:
    settings = _settings()
    refresh = _token(settings, "refresh")
    tokens.decode(settings, refresh, "refresh")
    with pytest.raises(InvalidToken, match="access token is needed"):
        tokens.decode(settings, refresh, "access")
    # The same string under another secret is verified under that one: refused.
    with pytest.raises(InvalidToken) as other:
        tokens.decode(_settings("o" * 40), refresh, "refresh")
    assert other.value.code == "invalid_token"
    # A token altered after its original was verified is verified itself.
    head, payload, signature = refresh.split(".")
    altered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidToken):
        tokens.decode(settings, altered, "refresh")
    assert verifications == [refresh, refresh, altered]


def test_an_expired_token_never_enters(verifications: list[str]) -> None:
    settings = _settings()
    token = _token(settings, ttl=timedelta(seconds=-5))
    for _ in range(2):
        with pytest.raises(InvalidToken) as expired:
            tokens.decode(settings, token, "access")
        assert expired.value.code == "token_expired"
    assert verifications == [token, token]
    assert tokens._verified == {}


def test_the_cache_is_bounded(verifications: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_MAX", 3)
    settings = _settings()
    issued = [_token(settings) for _ in range(5)]
    for token in issued:
        tokens.decode(settings, token, "access")
    assert [token for _, token in tokens._verified] == issued[2:], "the oldest left first"
    tokens.decode(settings, issued[0], "access")
    assert verifications == [*issued, issued[0]]


def test_our_own_tokens_are_verified_without_pyjwt(
    verifications: list[str], pyjwt_calls: list[str]
) -> None:
    settings = _settings()
    for kind in ("access", "refresh"):
        token = _token(settings, kind)
        claims = tokens.decode(settings, token, kind)
        assert verifications == [token]
        assert pyjwt_calls == []
        verifications.clear()
        # The same claims PyJWT reads from it.
        fast = tokens._signed_here(settings.secret_key, token)
        assert fast is not None
        assert fast == _pyjwt_claims(settings, token)
        assert str(claims.person_id) == fast["sub"]
        pyjwt_calls.clear()


def test_a_token_the_fast_path_declines_is_judged_by_pyjwt(pyjwt_calls: list[str]) -> None:
    settings = _settings()
    expired = _token(settings, ttl=timedelta(seconds=-5))
    with pytest.raises(InvalidToken) as caught:
        tokens._verify(settings, expired)
    assert caught.value.code == "token_expired", "PyJWT's answer, not a generic refusal"
    wrong_secret = _token(_settings("o" * 40))
    with pytest.raises(InvalidToken) as caught:
        tokens._verify(settings, wrong_secret)
    assert caught.value.code == "invalid_token"
    assert pyjwt_calls == [expired, wrong_secret]


def _pyjwt_claims(settings: Settings, token: str) -> dict[str, Any] | None:
    """What PyJWT, configured as the app configures it, makes of a token."""
    try:
        return tokens._pyjwt(settings, token)
    except InvalidToken:
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    """A token written by hand, so that any header and claims can be made."""
    head = _b64(json.dumps(header, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


SECRET = "s" * 40
# Seconds from now, away from the instant itself (the two paths read the
# clock a moment apart).
_OFFSETS = st.sampled_from([-86_400, -60, 60, 86_400])
_ODD: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=5), st.just([])
)


@st.composite
def _tokens(draw: st.DrawFn) -> str:
    """Our tokens, and near misses of them: a header or claim changed,
    dropped or added, another secret, a character of the string altered."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "typ": draw(st.sampled_from(["access", "refresh"])),
        "iat": now + draw(st.sampled_from([-60, -5, 60])),
        "exp": now + draw(_OFFSETS),
    }
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([*claims, "nbf", "extra"]))
        change = draw(st.sampled_from(["drop", "odd", "float", "list"]))
        if change == "drop":
            claims.pop(name, None)
        elif change == "odd":
            claims[name] = draw(_ODD)
        elif change == "float" and isinstance(claims.get(name), int):
            claims[name] = claims[name] + 0.5
        elif change == "list":
            claims[name] = [claims.get(name, now)]
    header_change = draw(st.sampled_from(["none", "alg", "extra", "order"]))
    if header_change == "alg":
        header["alg"] = draw(st.sampled_from(["none", "HS384", "HS512", "hs256"]))
    elif header_change == "extra":
        header["kid"] = "k"
    elif header_change == "order":
        header = {"typ": "JWT", "alg": "HS256"}
    secret = draw(st.sampled_from([SECRET, SECRET, "o" * 40]))
    if header_change == "none" and secret == SECRET and draw(st.booleans()):
        claims["iat"] = now - 5
        claims["exp"] = now + 3600
    token = _signed(header, claims, secret)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(token) - 1))
        token = token[:at] + draw(st.sampled_from("A_-.=é")) + token[at + 1 :]
    return token


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=_tokens())
def test_the_fast_path_accepts_only_what_pyjwt_accepts(token: str) -> None:
    settings = _settings(SECRET)
    fast = tokens._signed_here(SECRET, token)
    if fast is not None:
        assert fast == _pyjwt_claims(settings, token)


def test_the_property_reaches_both_answers() -> None:
    """The generator above makes tokens the fast path takes and tokens it
    leaves to PyJWT, valid and not (else the property would be vacuous)."""
    settings = _settings(SECRET)
    seen: set[tuple[bool, bool]] = set()

    @settings_(max_examples=300, deadline=None)
    @given(token=_tokens())
    def look(token: str) -> None:
        fast = tokens._signed_here(SECRET, token) is not None
        seen.add((fast, _pyjwt_claims(settings, token) is not None))

    look()
    assert {(True, True), (False, True), (False, False)} <= seen
    assert (True, False) not in seen
