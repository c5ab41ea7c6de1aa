"""Who is asking, without a query per request: each process keeps the
principals it loaded and forgets them when the database says they changed.

A request's access token is verified without the database (it is signed);
the person behind its session (roles, a dispatcher's area, teams) is read
once by `auth.load_principal` and kept here, by session id. An API key's
principal is kept by the key's digest.

**Forgetting.** Whatever writes what a principal is read from (a session's
revocation, a person's disabling or name, admin, a dispatcher's area, team
memberships, a team's or an area's name, an API key's revocation) makes
PostgreSQL send a NOTIFY on `CHANNEL`, from a trigger in the writing
transaction (migration 94af9dfae36b, `principals_changed()`): delivered on
commit, whoever wrote, in SQL or through the API. Each process listens on a
connection of its own (`PrincipalListener`) and forgets the people (or keys)
named, so a logout or a disable takes effect in every process within the
notification's delivery, milliseconds; the contract is 1 s.

**Missed notifications.** The cache is used only while the listener is
connected. When the connection is lost, nothing is served from the cache
and nothing is kept; once it is back, everything is forgotten first (a
NOTIFY sent meanwhile was missed). A connection that dies silently is found
by a ping every `PING_S`; `PRINCIPAL_CACHE_SECONDS` bounds how long any
entry is used in any case. A load that ran while a notification arrived is
not kept (`generation`): it may have read what was just changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.background import BackgroundTask
from app.core.config import Settings
from app.core.db import asyncpg_dsn
from app.identity import api_keys, auth, tokens
from app.identity.auth import ApiKeyPrincipal, PersonPrincipal

log = logging.getLogger("hulian.principals")

CHANNEL = "hulian_principals"
LISTENER_NAME = "hulian-principals"
MAX_ENTRIES = 10_000
PING_S = 5.0


@dataclass(frozen=True)
class Change:
    """Whose principals changed: some people, some API keys, or everyone
    (`everyone`: too many to name, or a payload not understood)."""

    persons: frozenset[uuid.UUID] = frozenset()
    keys: frozenset[uuid.UUID] = frozenset()
    everyone: bool = False

    @classmethod
    def parse(cls, payload: str) -> Change:
        kind, _, ids = payload.partition(":")
        try:
            parsed = frozenset(uuid.UUID(i) for i in ids.split(","))
        except ValueError:
            parsed = None
        if kind == "p" and parsed:
            return cls(persons=parsed)
        if kind == "k" and parsed:
            return cls(keys=parsed)
        return cls(everyone=True)


class PrincipalCache:
    """The principals this process loaded, each for at most `ttl_s`, at most
    `max_entries` of them (the oldest go first). `ttl_s` 0: nothing kept."""

    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # True while the listener is connected: only then is anything used.
        self.live = False
        # Bumped by every change heard and every reset: a load that started
        # under an older generation is not kept.
        self.generation = 0
        self._people: dict[uuid.UUID, tuple[float, PersonPrincipal]] = {}
        self._sessions_of: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._keys: dict[str, tuple[float, ApiKeyPrincipal]] = {}
        self._digest_of: dict[uuid.UUID, str] = {}
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.live and self.ttl_s > 0

    def __len__(self) -> int:
        return len(self._people) + len(self._keys)

    # ---- people ---------------------------------------------------------------------

    def person(self, claims: tokens.TokenClaims) -> PersonPrincipal | None:
        if not self.enabled:
            return None
        entry = self._people.get(claims.session_id)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            self.misses += 1
            return None
        principal = entry[1]
        if principal.person_id != claims.person_id:
            return None
        self.hits += 1
        return principal

    def keep_person(self, principal: PersonPrincipal, generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return
        self._make_room()
        self._people[principal.session_id] = (time.monotonic(), principal)
        self._sessions_of.setdefault(principal.person_id, set()).add(principal.session_id)

    # ---- API keys ---------------------------------------------------------------------

    def api_key(self, digest: str) -> ApiKeyPrincipal | None:
        if not self.enabled:
            return None
        entry = self._keys.get(digest)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def keep_api_key(self, digest: str, principal: ApiKeyPrincipal, generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return
        self._make_room()
        self._keys[digest] = (time.monotonic(), principal)
        self._digest_of[principal.key_id] = digest

    # ---- forgetting -----------------------------------------------------------------

    def forget(self, change: Change) -> None:
        self.generation += 1
        if change.everyone:
            self.clear()
            return
        for person_id in change.persons:
            for session_id in self._sessions_of.pop(person_id, ()):
                self._people.pop(session_id, None)
        for key_id in change.keys:
            digest = self._digest_of.pop(key_id, None)
            if digest is not None:
                self._keys.pop(digest, None)

    def clear(self) -> None:
        self.generation += 1
        self._people.clear()
        self._sessions_of.clear()
        self._keys.clear()
        self._digest_of.clear()

    def _make_room(self) -> None:
        while len(self) >= self.max_entries:
            # Dicts keep their order of insertion: the first is the oldest.
            if self._people:
                session_id, (_, old) = next(iter(self._people.items()))
                del self._people[session_id]
                sessions = self._sessions_of.get(old.person_id)
                if sessions is not None:
                    sessions.discard(session_id)
                    if not sessions:
                        del self._sessions_of[old.person_id]
            else:
                digest, (_, key) = next(iter(self._keys.items()))
                del self._keys[digest]
                self._digest_of.pop(key.key_id, None)


# ---- authenticating through the cache -------------------------------------------------


async def person(
    cache: PrincipalCache | None, session: AsyncSession, settings: Settings, token: str
) -> PersonPrincipal:
    """The person behind an access token (`auth.authenticate_bearer`), from
    the cache when it holds them."""
    claims = tokens.decode(settings, token, "access")
    if cache is None:
        return await auth.load_principal(session, claims.person_id, claims.session_id)
    found = cache.person(claims)
    if found is not None:
        return found
    generation = cache.generation
    loaded = await auth.load_principal(session, claims.person_id, claims.session_id)
    cache.keep_person(loaded, generation)
    return loaded


async def api_key(cache: PrincipalCache | None, session: AsyncSession, key: str) -> ApiKeyPrincipal:
    """The principal of an API key (`api_keys.authenticate`), from the cache
    when it holds it."""
    if cache is None:
        return await api_keys.authenticate(session, key)
    digest = tokens.digest(key)
    found = cache.api_key(digest)
    if found is not None:
        return found
    generation = cache.generation
    loaded = await api_keys.authenticate(session, key)
    cache.keep_api_key(digest, loaded, generation)
    return loaded


# ---- the listener ---------------------------------------------------------------------


class PrincipalListener(BackgroundTask):
    """LISTEN on `CHANNEL` on a connection of its own (a pooled one would be
    `UNLISTEN`ed on release): forgets what changed, tells `on_change` (the
    live hub ends the sockets of people who changed), and keeps
    `cache.live` true only while connected."""

    name = "hulian-principals"

    def __init__(
        self,
        database_url: str,
        cache: PrincipalCache,
        on_change: Callable[[Change], None] | None = None,
    ) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(database_url)
        self.cache = cache
        self.on_change = on_change
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._lost = asyncio.Event()

    async def stop(self) -> None:
        await super().stop()
        self._down()

    def _down(self) -> None:
        self.cache.live = False
        self.cache.clear()
        self.connected.clear()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        change = Change.parse(payload)
        self.cache.forget(change)
        if self.on_change is not None:
            self.on_change(change)

    def _terminated(self, *_: object) -> None:
        self._down()
        self._lost.set()

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=5,
                    server_settings={"application_name": LISTENER_NAME, "jit": "off"},
                )
                self._lost.clear()
                conn.add_termination_listener(self._terminated)
                await conn.add_listener(CHANNEL, self._notified)
                # Listening now: whatever changed before may have been missed.
                self.cache.clear()
                self.cache.live = True
                self.connected.set()
                if not first:
                    self.reconnects += 1
                    log.info("principal listener reconnected")
                    # Anyone may have changed while we were away.
                    if self.on_change is not None:
                        self.on_change(Change(everyone=True))
                first = False
                backoff = 0.1
                while not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), PING_S)
                    if not self._lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=PING_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("principal listener lost", extra={"error": type(exc).__name__})
            finally:
                self._down()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
