"""The deployment files agree with the service: docker-compose.yml, the
Dockerfile, .dockerignore and .env.example name only real settings. No
database is needed."""

from __future__ import annotations

import re
import subprocess
from enum import Enum
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]

# The settings the product's API.md lists under "Command line and settings".
DOCUMENTED_SETTINGS = frozenset(
    {
        "DATABASE_URL",
        "APP_ENV",
        "SECRET_KEY",
        "SMS_BACKEND",
        "PUSH_BACKEND",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SEARCH_RADIUS_M",
        "OFFER_TIMEOUT_SECONDS",
        "MAX_OFFER_ROUNDS",
        "COMMUNITY_ESCALATION_SECONDS",
        "OTP_PER_PHONE_PER_HOUR",
        "OTP_PER_IP_PER_HOUR",
    }
)

# `NAME=value` or `# NAME=value` (a setting left at its default).
_ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")
# `${NAME:-default}` in compose values.
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def _mapping(value: object, where: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{where} should be a mapping, not {value!r}"
    return cast(dict[str, Any], value)


def _compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open(encoding="utf-8") as f:
        return _mapping(yaml.safe_load(f), "docker-compose.yml")


def _service(name: str) -> dict[str, Any]:
    services = _mapping(_compose().get("services"), "services")
    return _mapping(services.get(name), f"services.{name}")


def _api_environment() -> dict[str, str | None]:
    environment = _service("api").get("environment")
    if isinstance(environment, list):  # the `- NAME=value` form
        pairs = (str(item).partition("=") for item in environment)
        return {name: (value if sep else None) for name, sep, value in pairs}
    return {
        str(name): None if value is None else str(value)
        for name, value in _mapping(environment, "services.api.environment").items()
    }


def _resolve_defaults(value: str) -> str:
    """A compose value with every `${NAME:-default}` replaced by its default."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def _env_example() -> list[tuple[str, str]]:
    """(NAME, value) of each setting line of .env.example, commented or not."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return [
        (m.group(1), line[m.end() :].strip())
        for line in text.splitlines()
        if (m := _ENV_LINE.match(line))
    ]


def _env_example_names() -> list[str]:
    return [name for name, _ in _env_example()]


def test_compose_has_the_db_and_the_api() -> None:
    services = _mapping(_compose().get("services"), "services")
    assert {"db", "api"} <= set(services)


def test_db_is_postgis_with_a_healthcheck_a_volume_and_a_loopback_port() -> None:
    db = _service("db")
    assert str(db["image"]).startswith("postgis/postgis:15-")
    environment = _mapping(db.get("environment"), "services.db.environment")
    assert environment.get("POSTGRES_PASSWORD")

    healthcheck = _mapping(db.get("healthcheck"), "services.db.healthcheck")
    test = healthcheck["test"]
    command = " ".join(test) if isinstance(test, list) else str(test)
    assert "pg_isready" in command

    volumes = [str(volume) for volume in db.get("volumes", [])]
    named = {volume.split(":", 1)[0] for volume in volumes}
    declared = set(_mapping(_compose().get("volumes"), "volumes"))
    assert named & declared, f"db should keep its data in a named volume: {volumes}"

    ports = [str(port) for port in db.get("ports", [])]
    assert ports, "db should publish 5432 for the host's tools"
    for port in ports:
        assert port.startswith("127.0.0.1:"), f"db port {port} should be bound to loopback"
        assert port.endswith(":5432")


def test_api_waits_for_a_healthy_db() -> None:
    depends_on = _mapping(_service("api").get("depends_on"), "services.api.depends_on")
    db = _mapping(depends_on.get("db"), "services.api.depends_on.db")
    assert db.get("condition") == "service_healthy"


def test_api_is_built_here_migrates_then_serves_on_8000() -> None:
    api = _service("api")
    build = api["build"]
    if isinstance(build, dict):
        assert build.get("context", ".") == "."
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    else:
        assert build == "."

    command = api["command"]
    text = " ".join(command) if isinstance(command, list) else str(command)
    migrate, serve = text.find("python -m app migrate"), text.find("python -m app serve")
    assert 0 <= migrate < serve, text
    assert "--host 0.0.0.0" in text
    assert "--port 8000" in text
    assert any(str(port).endswith("8000:8000") for port in api.get("ports", []))


def test_api_database_url_is_asyncpg_on_the_db_service() -> None:
    url = _api_environment()["DATABASE_URL"]
    assert url is not None
    parts = urlsplit(_resolve_defaults(url))
    assert parts.scheme == "postgresql+asyncpg"
    assert parts.hostname == "db"
    assert parts.port == 5432
    assert parts.path == "/hulian"


def test_api_sets_only_settings_and_the_dev_defaults_are_valid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment = _api_environment()
    unknown = set(environment) - _settings_names()
    assert not unknown, f"api sets variables that are not Settings fields: {sorted(unknown)}"
    assert {"DATABASE_URL", "APP_ENV", "SECRET_KEY"} <= set(environment)

    # With nothing set on the host, the values compose passes make valid
    # Settings: read them alone, without this process's environment or .env.
    for name in _settings_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    values = {
        name.lower(): _resolve_defaults(value)
        for name, value in environment.items()
        if value is not None
    }
    settings = Settings.model_validate(values)
    assert settings.app_env.value == "dev"


def test_env_example_names_only_settings_and_every_documented_one() -> None:
    names = _env_example_names()
    settings = _settings_names()
    assert len(names) == len(set(names)), f"names repeated in .env.example: {names}"
    unknown = set(names) - settings
    assert not unknown, f".env.example names variables that are not Settings fields: {unknown}"
    missing = DOCUMENTED_SETTINGS - set(names)
    assert not missing, f".env.example lacks documented settings: {sorted(missing)}"


def test_env_example_shows_the_real_defaults() -> None:
    fields = Settings.model_fields
    for name, value in _env_example():
        default = fields[name.lower()].get_default(call_default_factory=True)
        if default is None:  # computed or optional: the example shows a sample value
            continue
        shown = str(default.value if isinstance(default, Enum) else default)
        assert value == shown, f".env.example shows {name}={value}, the default is {shown}"


def test_the_documented_settings_are_settings_fields() -> None:
    assert _settings_names() >= DOCUMENTED_SETTINGS


def test_dockerfile_runs_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = text.splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the Dockerfile should switch to a non-root USER"
    assert users[-1] not in {"root", "0"}
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    assert "pip install -c requirements.lock" in text


def test_dockerignore_keeps_the_venv_caches_and_git_out() -> None:
    entries = set((ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines())
    assert {".venv", ".git", ".env", "**/__pycache__", ".mypy_cache"} <= entries


@pytest.mark.processes
@pytest.mark.parametrize("name", ["", "a;b", "hulian test", "1abc"])
def test_local_db_script_refuses_a_bad_database_name(name: str) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "local-db.sh"), name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "local-db: error:" in result.stderr
