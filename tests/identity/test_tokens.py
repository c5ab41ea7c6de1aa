"""Decoding a token (app/identity/tokens.py): a token verified once is not
verified again in this process, and what a verification decides still holds
on every use (its expiry, its kind, the secret it was signed with)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

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
    """The tokens PyJWT is asked to verify, from an empty cache."""
    monkeypatch.setattr(tokens, "_verified", {})
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
