"""Logging in by one-time code, rotating refresh tokens, and who is asking.

The rules (API.md, Identity): a code is 6 digits from a CSPRNG, kept only as
an HMAC, valid OTP_TTL_SECONDS, single use, bound to its phone; a new one no
sooner than OTP_RESEND_SECONDS; per-phone and per-IP hourly limits on
sending, behind an optional challenge (app/identity/challenge.py). A refresh
token is used once: presented again, it revokes its whole chain (the
session), and every token of it stops working at once.

Anyone may ask for codes for any phone and try codes for it, so neither may
lock its owner out (docs/security.md, "One-time codes under attack"):
- a new code cancels no other: the phone's OTP_LIVE_CODES newest live codes
  are all accepted, so the owner can use whichever one reached them;
- a wrong try is compared with each of those codes and counts against each:
  no code is exposed to more than OTP_MAX_ATTEMPTS guesses;
- one address may try a phone's codes OTP_TRIES_PER_PHONE_PER_IP times per
  OTP_TTL_SECONDS, fewer than a code allows, so one address alone cannot
  use up the code the owner received; tries while the phone has no live
  code expose nothing and are not counted.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import log as audit
from app.audit.log import RequestOrigin
from app.core import locks, sql
from app.core.config import AppEnv, Settings
from app.core.errors import Forbidden, TooManyRequests, Unauthorized
from app.core.locks import Lock
from app.core.phones import mask_phone, normalize_phone
from app.identity import ratelimit, tokens
from app.identity.challenge import ChallengeFailed, SendChallenge
from app.identity.sms import SmsSender
from app.models.auth import DispatcherArea, OtpSent, Role, TeamMembership, TokenPair, User
from app.models.enums import AreaLevel, MemberKind

HOUR = timedelta(hours=1)


class InvalidOtp(Unauthorized):
    code = "invalid_otp"
    title = "Invalid code"
    keep_changes = True  # the failed try must count


class AccountDisabled(Forbidden):
    code = "account_disabled"
    title = "Account disabled"
    keep_changes = True  # the code is used up and the refusal audited


# ---- who is asking -----------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """The facts that decide what a person may see: admin, a dispatcher's
    area, their teams."""

    is_admin: bool
    dispatcher_area_id: uuid.UUID | None
    team_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class PersonPrincipal:
    person_id: uuid.UUID
    session_id: uuid.UUID
    display_name: str
    phone: str
    is_admin: bool
    teams: tuple[TeamMembership, ...]
    dispatcher_area: DispatcherArea | None

    @property
    def team_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(team.id for team in self.teams)

    @property
    def is_volunteer(self) -> bool:
        return bool(self.teams)

    @property
    def access(self) -> Access:
        """What the person may see by, as the session check reads it again
        (`app/events/hub.py`): when it changes, an open socket must not go
        on with the old one."""
        return Access(
            is_admin=self.is_admin,
            dispatcher_area_id=self.dispatcher_area.id if self.dispatcher_area else None,
            team_ids=tuple(sorted(self.team_ids)),
        )

    @property
    def roles(self) -> list[Role]:
        roles = [Role.resident]
        if self.teams:
            roles.append(Role.volunteer)
        if self.dispatcher_area is not None:
            roles.append(Role.dispatcher)
        if self.is_admin:
            roles.append(Role.admin)
        return roles

    def to_user(self) -> User:
        return User(
            id=self.person_id,
            display_name=self.display_name,
            phone_masked=mask_phone(self.phone),
            roles=self.roles,
            teams=list(self.teams),
            dispatcher_area=self.dispatcher_area,
        )


@dataclass(frozen=True)
class ApiKeyPrincipal:
    key_id: uuid.UUID
    name: str
    scopes: frozenset[str]


Principal = PersonPrincipal | ApiKeyPrincipal

_LOAD_PERSON = text(
    """
    SELECT p.id, p.display_name, p.phone, p.is_admin, p.disabled_at,
           s.revoked_at,
           d.area_id AS dispatcher_area_id, a.name AS dispatcher_area_name,
           a.level AS dispatcher_area_level,
           coalesce((SELECT json_agg(json_build_object('id', t.id, 'name', t.name, 'kind', m.kind)
                                     ORDER BY t.name)
                       FROM team_member m JOIN team t ON t.id = m.team_id
                      WHERE m.person_id = p.id), '[]'::json) AS teams
    FROM auth_session s
    JOIN person p ON p.id = s.person_id
    LEFT JOIN dispatcher d ON d.person_id = p.id
    LEFT JOIN area a ON a.id = d.area_id
    WHERE s.id = :session_id AND p.id = :person_id
    """
)


async def load_principal(
    session: AsyncSession, person_id: uuid.UUID, session_id: uuid.UUID
) -> PersonPrincipal:
    """The person behind a live session, or InvalidToken (logged out,
    revoked, disabled: all the same to the caller)."""
    # On every cache miss, so each resident's first request (a press, in a
    # surge) pays it: below the ORM (app.core.sql), like the press itself.
    row = await sql.fetchrow(
        session, _LOAD_PERSON, {"session_id": session_id, "person_id": person_id}
    )
    if row is None or row.revoked_at is not None or row.disabled_at is not None:
        raise tokens.InvalidToken("The session has ended.")
    area = None
    if row.dispatcher_area_id is not None:
        area = DispatcherArea(
            id=row.dispatcher_area_id,
            name=row.dispatcher_area_name,
            level=AreaLevel(row.dispatcher_area_level),
        )
    return PersonPrincipal(
        person_id=row.id,
        session_id=session_id,
        display_name=row.display_name,
        phone=row.phone,
        is_admin=row.is_admin,
        teams=tuple(
            TeamMembership(id=uuid.UUID(t["id"]), name=t["name"], kind=MemberKind(t["kind"]))
            for t in row.teams
        ),
        dispatcher_area=area,
    )


async def authenticate_bearer(
    session: AsyncSession, settings: Settings, token: str
) -> PersonPrincipal:
    claims = tokens.decode(settings, token, "access")
    return await load_principal(session, claims.person_id, claims.session_id)


# ---- one-time codes ------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def request_code(
    session: AsyncSession,
    settings: Settings,
    sms: SmsSender,
    raw_phone: str,
    origin: RequestOrigin,
    challenge: SendChallenge,
    challenge_answer: str | None,
) -> OtpSent:
    phone = normalize_phone(raw_phone, allow_demo=settings.app_env is not AppEnv.production)
    # Before any limit is spent: a request that fails it costs the phone nothing.
    if not await challenge.check(phone, origin, challenge_answer):
        raise ChallengeFailed("Answer the challenge before asking for a code.")
    if origin.ip:
        await ratelimit.hit(
            session,
            f"otp:ip:{origin.ip}",
            settings.otp_per_ip_per_hour,
            HOUR,
            what="codes from this address",
        )
    await ratelimit.hit(
        session,
        f"otp:phone:{phone}",
        settings.otp_per_phone_per_hour,
        HOUR,
        what="codes for this phone",
    )
    # Serialises the resend check and the closing below with other requests
    # and tries for this phone.
    await locks.xact_lock(session, Lock.otp_codes, phone)
    last = (
        await session.execute(
            text(
                """
                SELECT extract(epoch FROM
                           (created_at + CAST(:resend AS interval) - clock_timestamp())) AS wait
                FROM otp_code WHERE phone = :phone ORDER BY created_at DESC LIMIT 1
                """
            ),
            {"phone": phone, "resend": timedelta(seconds=settings.otp_resend_seconds)},
        )
    ).scalar()
    # Measured at this moment (clock_timestamp): this transaction may have
    # waited on the phone's lock behind the one that made the last code.
    if settings.otp_resend_seconds > 0 and last is not None and last > 0:
        raise TooManyRequests(
            "A code was sent moments ago; wait before asking for another.",
            retry_after=int(last) + 1,
            code="otp_resend_too_soon",
        )
    # Room for the new code among the phone's live ones; the rest stay valid,
    # so a code someone else asks for does not cancel the one the owner has.
    await session.execute(
        text(
            """
            UPDATE otp_code SET closed_at = now()
            WHERE id IN (SELECT id FROM otp_code WHERE phone = :phone AND closed_at IS NULL
                         ORDER BY created_at DESC OFFSET :keep)
            """
        ),
        {"phone": phone, "keep": settings.otp_live_codes - 1},
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    code_id = uuid.uuid4()
    await session.execute(
        text(
            """
            INSERT INTO otp_code (id, phone, code_hash, created_at, expires_at)
            VALUES (:id, :phone, :hash, clock_timestamp(), now() + CAST(:ttl AS interval))
            """
        ),
        {
            "id": code_id,
            "phone": phone,
            "hash": tokens.keyed_digest(settings, "otp", phone, str(code_id), code),
            "ttl": timedelta(seconds=settings.otp_ttl_seconds),
        },
    )
    debug_code = await sms.send_code(phone, code, settings.otp_ttl_seconds)
    return OtpSent(
        expires_in=settings.otp_ttl_seconds,
        resend_after=settings.otp_resend_seconds,
        debug_code=debug_code,
    )


async def _check_code(
    session: AsyncSession, settings: Settings, phone: str, code: str, origin: RequestOrigin
) -> bool:
    """Try `code` against the phone's live codes; True when one matched. It
    is then used, and the phone's other codes are closed: none is needed."""
    # Simultaneous tries are counted one after the other, and a code asked
    # for meanwhile waits: what is read here is what is updated below.
    await locks.xact_lock(session, Lock.otp_codes, phone)
    live = (
        await session.execute(
            text(
                """
                SELECT id, code_hash FROM otp_code
                WHERE phone = :phone AND closed_at IS NULL AND expires_at > now()
                ORDER BY created_at DESC LIMIT :live
                """
            ),
            {"phone": phone, "live": settings.otp_live_codes},
        )
    ).all()
    if not live:
        return False
    await ratelimit.hit(
        session,
        f"otp:try:{phone}:{origin.ip or '-'}",
        settings.otp_tries_per_phone_per_ip,
        timedelta(seconds=settings.otp_ttl_seconds),
        what="tries of a code for this phone from this address",
    )
    if any(
        tokens.same(tokens.keyed_digest(settings, "otp", phone, str(row.id), code), row.code_hash)
        for row in live
    ):
        await session.execute(
            text(
                "UPDATE otp_code SET closed_at = now() WHERE phone = :phone AND closed_at IS NULL"
            ),
            {"phone": phone},
        )
        return True
    await session.execute(
        text(
            """
            UPDATE otp_code SET attempts = attempts + 1,
                   closed_at = CASE WHEN attempts + 1 >= :max THEN now() END
            WHERE id = ANY(:ids)
            """
        ),
        {"ids": [row.id for row in live], "max": settings.otp_max_attempts},
    )
    return False


async def login(
    session: AsyncSession, settings: Settings, raw_phone: str, code: str, origin: RequestOrigin
) -> TokenPair:
    phone = normalize_phone(raw_phone, allow_demo=settings.app_env is not AppEnv.production)
    if not await _check_code(session, settings, phone, code.strip(), origin):
        await audit.record(
            session, "login_failed", origin, target_type="phone", target_id=mask_phone(phone)
        )
        raise InvalidOtp("The code is wrong, expired or already used.")
    person = (
        await session.execute(
            text(
                """
                INSERT INTO person (id, phone, display_name) VALUES (:id, :phone, :name)
                ON CONFLICT (phone) DO UPDATE SET phone = excluded.phone
                RETURNING id, disabled_at
                """
            ),
            {"id": uuid.uuid4(), "phone": phone, "name": "居民" + phone[-4:]},
        )
    ).one()
    if person.disabled_at is not None:
        await audit.record(session, "login_refused_disabled", origin, actor_person_id=person.id)
        raise AccountDisabled("This account has been disabled.")
    await audit.record(session, "login", origin, actor_person_id=person.id)
    return await start_session(session, settings, person.id)


async def start_session(
    session: AsyncSession, settings: Settings, person_id: uuid.UUID
) -> TokenPair:
    """A new session (chain) for a person whose identity is established."""
    session_id = uuid.uuid4()
    await session.execute(
        text("INSERT INTO auth_session (id, person_id) VALUES (:id, :person_id)"),
        {"id": session_id, "person_id": person_id},
    )
    return await _issue(session, settings, person_id, session_id)


async def _issue(
    session: AsyncSession, settings: Settings, person_id: uuid.UUID, session_id: uuid.UUID
) -> TokenPair:
    now = _now()
    refresh_id = uuid.uuid4()
    refresh_ttl = timedelta(days=settings.refresh_token_ttl_days)
    await session.execute(
        text(
            """
            INSERT INTO refresh_token (id, session_id, expires_at)
            VALUES (:id, :session_id, :expires_at)
            """
        ),
        {"id": refresh_id, "session_id": session_id, "expires_at": now + refresh_ttl},
    )
    principal = await load_principal(session, person_id, session_id)
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    return TokenPair(
        access_token=tokens.encode(
            settings,
            "access",
            person_id=person_id,
            session_id=session_id,
            token_id=uuid.uuid4(),
            now=now,
            ttl=access_ttl,
        ),
        refresh_token=tokens.encode(
            settings,
            "refresh",
            person_id=person_id,
            session_id=session_id,
            token_id=refresh_id,
            now=now,
            ttl=refresh_ttl,
        ),
        expires_in=settings.access_token_ttl_seconds,
        user=principal.to_user(),
    )


class RefreshReused(tokens.InvalidToken):
    code = "refresh_token_reused"
    keep_changes = True  # the revocation of the chain must stand


async def refresh(
    session: AsyncSession, settings: Settings, refresh_token: str, origin: RequestOrigin
) -> TokenPair:
    claims = tokens.decode(settings, refresh_token, "refresh")
    # The row lock makes this exactly-once: of two requests with one token,
    # the second waits, then finds it used.
    used = (
        await session.execute(
            text(
                """
                UPDATE refresh_token SET used_at = now()
                WHERE id = :id AND session_id = :session_id
                  AND used_at IS NULL AND expires_at > now()
                RETURNING id
                """
            ),
            {"id": claims.token_id, "session_id": claims.session_id},
        )
    ).first()
    if used is None:
        seen = (
            await session.execute(
                text("SELECT used_at FROM refresh_token WHERE id = :id"), {"id": claims.token_id}
            )
        ).first()
        if seen is not None and seen.used_at is not None:
            await revoke_session(session, claims.session_id, "refresh_reuse")
            await audit.record(
                session,
                "refresh_token_reused",
                origin,
                actor_person_id=claims.person_id,
                target_type="session",
                target_id=claims.session_id,
            )
            raise RefreshReused("This refresh token was already used; the session is ended.")
        raise tokens.InvalidToken("The refresh token is not valid.")
    # Raises when the session was revoked or the person disabled meanwhile.
    await load_principal(session, claims.person_id, claims.session_id)
    return await _issue(session, settings, claims.person_id, claims.session_id)


async def revoke_session(session: AsyncSession, session_id: uuid.UUID, reason: str) -> None:
    await session.execute(
        text(
            """
            UPDATE auth_session SET revoked_at = now(), revoke_reason = :reason
            WHERE id = :id AND revoked_at IS NULL
            """
        ),
        {"id": session_id, "reason": reason},
    )


async def logout(session: AsyncSession, principal: PersonPrincipal, origin: RequestOrigin) -> None:
    await revoke_session(session, principal.session_id, "logout")
    await audit.record(session, "logout", origin, actor_person_id=principal.person_id)
