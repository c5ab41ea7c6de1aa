"""Settings: validated once; production refuses unsafe defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import DEFAULT_SECRET_KEY, AppEnv, PushBackend, Settings

STRONG = "x" * 48


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is the default"):
        settings(app_env="production", secret_key=DEFAULT_SECRET_KEY)


def test_production_refuses_the_console_sms_backend() -> None:
    with pytest.raises(ValidationError, match="SMS_BACKEND is console"):
        settings(app_env="production", secret_key=STRONG)


def test_one_address_may_not_try_a_code_as_often_as_it_lives() -> None:
    """Else one address alone could use up the code the owner received."""
    with pytest.raises(ValidationError, match="OTP_TRIES_PER_PHONE_PER_IP must be below"):
        settings(otp_tries_per_phone_per_ip=5, otp_max_attempts=5)
    assert settings(otp_tries_per_phone_per_ip=4, otp_max_attempts=5).otp_live_codes == 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pairing_min": 6, "pairing_max": 5}, "PAIRING_MIN must not be above PAIRING_MAX"),
        (
            {"team_min_full_time": 4, "team_min_members": 3},
            "TEAM_MIN_FULL_TIME must not be above TEAM_MIN_MEMBERS",
        ),
        (
            {"stars_freeze_after_hours": 47, "activity_late_days": 2},
            "STARS_FREEZE_AFTER_HOURS must be at least",
        ),
    ],
)
def test_the_organisation_s_settings_must_agree(values: dict[str, int], message: str) -> None:
    """Rules read by different parts must not contradict each other."""
    with pytest.raises(ValidationError, match=message):
        settings(**values)
    assert settings(stars_freeze_after_hours=48, activity_late_days=2).activity_late_days == 2


def test_development_runs_with_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    dev = settings()
    assert dev.app_env is AppEnv.dev
    assert dev.effective_push_backend is PushBackend.log
    assert dev.search_radius_m == 3000
    assert dev.offer_timeout_seconds == 45
    assert dev.max_offer_rounds == 5
    assert dev.community_escalation_seconds == 600
    assert dev.otp_per_phone_per_hour == 5
    assert dev.otp_per_ip_per_hour == 100


@pytest.mark.parametrize(
    "values",
    [
        {"secret_key": "short"},
        {"database_url": "mysql://root@localhost/hulian"},
        {"database_url": "postgresql://postgres@127.0.0.1/hulian"},
        {"search_radius_m": 0},
        {"app_env": "staging"},
        {"push_backend": "carrier-pigeon"},
        {"otp_challenge": "captcha-nobody-wrote"},
        {"otp_live_codes": 0},
    ],
)
def test_bad_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


def test_the_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_RADIUS_M", "1500")
    monkeypatch.setenv("PUSH_BACKEND", "fcm")
    read = settings()
    assert read.search_radius_m == 1500
    assert read.effective_push_backend is PushBackend.fcm
