"""Settings: one validated object, read from the environment and `.env`."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    HttpUrl,
    PostgresDsn,
    SecretStr,
    UrlConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# The secret a fresh checkout runs with. Production refuses it.
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me-in-production"  # noqa: S105 - a known default, refused in production

# Shorter metrics tokens are refused in production.
MIN_METRICS_TOKEN_LENGTH = 32

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

AsyncpgDsn = Annotated[
    PostgresDsn, UrlConstraints(allowed_schemes=["postgresql+asyncpg"], host_required=True)
]


class AppEnv(StrEnum):
    dev = "dev"
    test = "test"
    production = "production"


class SmsBackend(StrEnum):
    console = "console"
    http = "http"


class PushBackend(StrEnum):
    log = "log"
    fcm = "fcm"


class OtpChallenge(StrEnum):
    none = "none"


class Settings(BaseSettings):
    """Every setting of the service; names are the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: AsyncpgDsn = Field(
        default=PostgresDsn("postgresql+asyncpg://postgres@127.0.0.1:5432/hulian"),
        description="PostgreSQL with PostGIS, as postgresql+asyncpg://…",
    )
    app_env: AppEnv = AppEnv.dev
    secret_key: str = Field(default=DEFAULT_SECRET_KEY, min_length=32)
    sms_backend: SmsBackend = SmsBackend.console
    sms_http_url: HttpUrl | None = Field(
        default=None, description="the SMS gateway the http backend posts to"
    )
    sms_http_token: SecretStr | None = Field(
        default=None, description="bearer token for the SMS gateway (never logged)"
    )
    sms_template: str = Field(
        default="【党群户联】您的登录验证码是{code}，{minutes}分钟内有效，请勿告诉他人。",
        description="the text of a login code; {code} and {minutes} are filled in",
    )
    push_backend: PushBackend | None = Field(
        default=None, description="log or fcm; log unless production"
    )
    google_application_credentials: str | None = None
    fcm_project_id: str | None = None

    search_radius_m: int = Field(default=3000, gt=0, le=50_000)
    offer_timeout_seconds: int = Field(default=45, gt=0, le=3600)
    max_offer_rounds: int = Field(default=5, gt=0, le=50)
    community_escalation_seconds: int = Field(default=600, gt=0)
    offer_fanout: int = Field(
        default=1, gt=0, le=10, description="teams offered a call in each round"
    )
    paired_first: bool = Field(
        default=True,
        description="a call of a paired household's resident goes first to its paired members",
    )
    pairing_max: int = Field(
        default=5, gt=0, le=50, description="households a party member may look after at most"
    )
    pairing_min: int = Field(
        default=3, ge=0, le=50, description="households each party member should look after"
    )
    duty_position_max_age_seconds: int = Field(
        default=600, gt=0, description="older positions of on-duty members do not count"
    )
    team_min_members: int = Field(
        default=3,
        ge=1,
        le=100,
        description="a team with fewer members (not disabled) is incomplete and offered no calls",
    )
    team_min_full_time: int = Field(
        default=1,
        ge=0,
        le=100,
        description="a team with fewer full-time members (not disabled) is incomplete",
    )
    max_open_calls_per_resident: int = Field(default=3, gt=0)
    double_tap_seconds: int = Field(
        default=10, ge=0, description="a second call this soon at the same spot is the first one"
    )
    double_tap_meters: float = Field(default=150.0, ge=0)
    idempotency_ttl_hours: int = Field(default=24, gt=0)
    sweep_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="how often each process looks for due offers"
    )
    run_sweeper: bool = Field(default=True, description="run the offer sweeper in this process")
    timezone: str = Field(
        default="Asia/Shanghai",
        description="the district's time zone (IANA name): months and days of the "
        "organisation's rules and reports are counted in it",
    )
    monthly_activity_quota: int = Field(
        default=3,
        gt=0,
        le=100,
        description="service activities a full-time member takes part in each month "
        "(GET /dispatch/quota lists who is short)",
    )
    quota_reminder_day: int = Field(
        default=20,
        ge=1,
        le=28,
        description="the day of the month (district time) from which each full-time member "
        "still short of the quota is reminded, once a month",
    )
    run_quota_reminders: bool = Field(
        default=True, description="run the monthly quota reminder job in this process"
    )
    quota_reminder_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="how often each process looks whether quota reminders are due",
    )
    activity_late_days: int = Field(
        default=3,
        ge=0,
        le=28,
        description="the first days of a month in which an activity of the previous month "
        "may still be logged; after them only the current month's",
    )
    responder_access_hours: int = Field(
        default=24,
        ge=0,
        le=24 * 30,
        description="hours after a call closed that its responder still sees its exact point "
        "and note",
    )
    retention_days: int = Field(
        default=180,
        gt=0,
        le=3650,
        description="days after a call closed that its exact point and notes are kept",
    )
    dispute_window_hours: int = Field(
        default=72,
        gt=0,
        le=24 * 30,
        description="hours after a call was resolved that the resident who called may dispute "
        "it (POST /calls/{id}/dispute)",
    )
    kpi_max_days: int = Field(
        default=366,
        gt=0,
        le=3660,
        description="the longest range (in days, both ends counted) GET /dispatch/kpis "
        "answers in one request",
    )
    stars_top_n: int = Field(
        default=10, gt=0, le=1000, description="the monthly stars list at most this many people"
    )
    stars_freeze_after_hours: int = Field(
        default=72,
        ge=0,
        le=24 * 62,
        description="hours after a month ends that its stars are computed once and frozen "
        "(late logs and disputes until then still count)",
    )
    star_fast_response_seconds: int = Field(
        default=60,
        gt=0,
        description="an offer accepted within this many seconds is a fast response (Service Star)",
    )
    star_weight_resolved_call: int = Field(
        default=10, description="Service Star points per resolved call not disputed"
    )
    star_weight_rating: int = Field(
        default=2,
        description="Service Star points per rating star above 3 (below 3 they subtract)",
    )
    star_weight_fast_response: int = Field(
        default=3, description="Service Star points per fast response"
    )
    star_weight_service_activity: int = Field(
        default=4, description="Service Star points per logged visit or hardship activity"
    )
    star_weight_governance_activity: int = Field(
        default=5,
        description="Governance Star points per logged mediation, safety or affairs activity",
    )
    star_weight_governance_call: int = Field(
        default=5,
        description="Governance Star points per resolved mediation, safety or affairs call "
        "not disputed",
    )
    star_weight_event: int = Field(
        default=3, description="Governance Star points per logged community event"
    )
    star_weight_dispute: int = Field(
        default=-15, description="points of either star per disputed call (negative: subtracts)"
    )
    screen_delay_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="a public screen lists a call among its recent ones only this long after "
        "it was pressed",
    )
    screen_cache_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="each process computes an area's public screen feed at most once this often, "
        "however many screens ask",
    )
    screen_stream_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="how often an open screen stream looks at the feed (sent when it changed, "
        "else a keep-alive comment)",
    )
    screen_stream_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="a screen stream ends after this long; the screen's EventSource reconnects "
        "(to any process) after the `retry:` it was sent",
    )
    screen_requests_per_minute: int = Field(
        default=60,
        gt=0,
        description="public screen requests (feeds and streams opened) per client address "
        "per minute, in each process; more → 429",
    )
    app_origins: list[str] = Field(
        default_factory=list,
        description="origins the web app is served from, as scheme://host[:port] (JSON list)",
    )
    ws_allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins allowed to open the WebSocket (JSON list); "
        "empty: APP_ORIGINS in production, any elsewhere",
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins whose pages may call the API (CORS), as "
        "scheme://host[:port] (JSON list); empty: no CORS",
    )
    ws_heartbeat_seconds: float = Field(default=25.0, gt=0)
    duty_event_throttle_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="a member's moves reach dispatchers' sockets at most this often "
        "(the latest at the window's end); going on or off duty is never held back",
    )
    ws_auth_recheck_seconds: float = Field(
        default=15.0,
        gt=0,
        description="how often each process checks its sockets' sessions (one query for all)",
    )
    ws_max_message_bytes: int = Field(default=64 * 1024, gt=0)
    principal_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="longest a process uses a principal it loaded (who is behind a token or "
        "an API key); a change of it is heard at once by NOTIFY, this is the safety net. "
        "0: a query per request",
    )
    ws_protocol: Literal["websockets-sansio", "wsproto", "websockets"] = Field(
        default="websockets-sansio",
        description="uvicorn's WebSocket implementation (memory per socket: docs/benchmarks.md)",
    )
    run_push_worker: bool = Field(default=True, description="send pushes from this process")
    push_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="how often the push worker looks for deliveries"
    )
    push_max_attempts: int = Field(default=8, gt=0, le=50)
    run_sms_worker: bool = Field(
        default=True, description="send the texts to walk-up callers at screens from this process"
    )
    sms_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="how often the SMS worker looks for texts to send"
    )
    sms_max_attempts: int = Field(
        default=5, gt=0, le=50, description="tries of one text before it is given up"
    )
    sms_call_accepted_text: str = Field(
        default="【党群户联】您在服务屏发起的呼叫已有党员接单，正在赶来，请稍候。",
        description="the text to a walk-up caller's phone when a member takes the call",
    )
    sms_call_resolved_text: str = Field(
        default="【党群户联】您在服务屏发起的呼叫已办结。感谢您的信任，用此手机号登录可查看和评价。",
        description="the text to a walk-up caller's phone when the call is resolved",
    )
    screen_calls_per_hour: int = Field(
        default=30, gt=0, description="calls one public screen may open in an hour"
    )
    screen_call_follow_seconds: int = Field(
        default=900,
        gt=0,
        le=86_400,
        description="a screen may follow a call pressed at it (its status and the team's name) "
        "for this long after the press",
    )
    otp_per_phone_per_hour: int = Field(default=5, gt=0)
    otp_per_ip_per_hour: int = Field(default=100, gt=0)

    access_token_ttl_seconds: int = Field(default=15 * 60, gt=0, le=24 * 3600)
    refresh_token_ttl_days: int = Field(default=30, gt=0, le=365)
    otp_ttl_seconds: int = Field(default=300, gt=0, le=3600)
    otp_resend_seconds: int = Field(default=60, ge=0, le=3600)
    otp_max_attempts: int = Field(
        default=5, gt=0, le=20, description="wrong tries a code is exposed to before it dies"
    )
    otp_live_codes: int = Field(
        default=3,
        gt=0,
        le=10,
        description="a phone's newest codes that are all accepted: a new one cancels no other",
    )
    otp_tries_per_phone_per_ip: int = Field(
        default=3,
        gt=0,
        description="tries of a phone's codes from one address within OTP_TTL_SECONDS",
    )
    otp_challenge: OtpChallenge = Field(
        default=OtpChallenge.none,
        description="the check (CAPTCHA, proof of work) run before a code is sent; none: no check",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="larger request bodies get 413"
    )

    nearby_max_radius_m: int = Field(
        default=20_000, gt=0, description="largest radius_m /teams/nearby accepts"
    )
    nearby_max_limit: int = Field(
        default=100, gt=0, description="largest limit /teams/nearby accepts"
    )
    # Connections a process keeps, and none beyond them by default. Past
    # the knee the overflow opened and closed connections all along (a
    # 30 s run: 178-199 connections against 62-83), each a new backend
    # with cold caches (the nearest teams' first executions on a new
    # connection ~12 ms against 0.3), costing PostgreSQL when it had least
    # to spare; without it the same runs spent less of PostgreSQL and
    # delivered offers twice as fast (docs/benchmarks.md, "Connections
    # kept"). A request that finds every connection busy waits
    # DB_POOL_TIMEOUT_SECONDS, then 503 `overloaded`.
    db_pool_size: int = Field(default=10, gt=0)
    db_max_overflow: int = Field(default=0, ge=0)
    # How long a request waits for a free connection before it is answered
    # 503 `overloaded` (with Retry-After) instead of queueing without bound.
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0)
    log_level: str = "INFO"
    forwarded_allow_ips: str = Field(
        default="",
        description="trusted reverse proxies, comma-separated addresses or networks; "
        "their X-Forwarded-For is believed. Empty: none",
    )
    web_dist_dir: Path = Field(
        default=Path(__file__).resolve().parents[2] / "web" / "dist",
        description="the built web app served at /app/ (`make web` builds it)",
    )
    web_tile_style_url: str | None = Field(
        default=None,
        description="a MapLibre style URL for the web app's maps (street tiles); "
        "unset: the district's own polygons on a plain background",
    )
    docs_enabled: bool | None = Field(
        default=None, description="serve /docs and /redoc; unset: on except in production"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="GET /metrics needs `Authorization: Bearer` with it; required in production",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)"
            ) from exc
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        _parse_networks(value)
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        # Origins only: "*" would let every site's pages read the answers
        # their visitors' tokens fetch.
        for origin in value:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"CORS_ALLOWED_ORIGINS: {origin!r} is not scheme://host[:port]")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        problems = []
        if self.sms_backend is SmsBackend.http and self.sms_http_url is None:
            problems.append("SMS_BACKEND is http but SMS_HTTP_URL is not set")
        if "{code}" not in self.sms_template:
            problems.append("SMS_TEMPLATE must contain {code}")
        if self.otp_tries_per_phone_per_ip >= self.otp_max_attempts:
            # Else one address alone could use up the code its owner received.
            problems.append("OTP_TRIES_PER_PHONE_PER_IP must be below OTP_MAX_ATTEMPTS")
        if self.pairing_min > self.pairing_max:
            problems.append("PAIRING_MIN must not be above PAIRING_MAX")
        if self.team_min_full_time > self.team_min_members:
            problems.append("TEAM_MIN_FULL_TIME must not be above TEAM_MIN_MEMBERS")
        if self.stars_freeze_after_hours < 24 * self.activity_late_days:
            # Else a month's stars would be frozen while its activities may
            # still be logged, and the late ones would never count.
            problems.append("STARS_FREEZE_AFTER_HOURS must be at least 24 × ACTIVITY_LATE_DAYS")
        if self.app_env is AppEnv.production:
            if self.secret_key == DEFAULT_SECRET_KEY:
                problems.append("SECRET_KEY is the default; set a long random secret")
            if self.sms_backend is SmsBackend.console:
                problems.append("SMS_BACKEND is console; configure a real SMS provider")
            token = self.metrics_token.get_secret_value() if self.metrics_token else ""
            if len(token) < MIN_METRICS_TOKEN_LENGTH:
                problems.append(
                    f"METRICS_TOKEN is unset or shorter than {MIN_METRICS_TOKEN_LENGTH} "
                    "characters; /metrics would be open to anyone"
                )
        if problems:
            raise ValueError("refusing to start: " + "; ".join(problems))
        return self

    @property
    def effective_push_backend(self) -> PushBackend:
        if self.push_backend is not None:
            return self.push_backend
        return PushBackend.fcm if self.app_env is AppEnv.production else PushBackend.log

    @property
    def zone(self) -> ZoneInfo:
        """`TIMEZONE` as a zone: months and days of the organisation's rules."""
        return ZoneInfo(self.timezone)

    @property
    def database_url_str(self) -> str:
        return str(self.database_url)

    @property
    def trusted_proxies(self) -> tuple[IPNetwork, ...]:
        return _parse_networks(self.forwarded_allow_ips)

    @property
    def serve_docs(self) -> bool:
        if self.docs_enabled is not None:
            return self.docs_enabled
        return self.app_env is not AppEnv.production

    @property
    def ws_origins(self) -> frozenset[str] | None:
        """Browser origins that may open the WebSocket; None: any. In
        production an empty list lets no browser page in (a page of another
        site would ride on its visitor's token)."""
        if self.ws_allowed_origins:
            return frozenset(self.ws_allowed_origins)
        if self.app_env is AppEnv.production:
            return frozenset(self.app_origins)
        return None


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def _parse_networks(value: str) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            # "*" is no network: trusting every peer lets any client pick its address.
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


@lru_cache
def get_settings() -> Settings:
    return Settings()
