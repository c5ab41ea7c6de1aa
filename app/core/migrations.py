"""Running Alembic from the app (the `migrate` command, the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from geoalchemy2 import alembic_helpers

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Tables PostGIS creates and owns; autogenerate must not try to drop them.
_EXTENSION_TABLES = {"spatial_ref_sys", "geometry_columns", "geography_columns"}


def include_object(
    obj: Any, name: str | None, obj_type: str, reflected: bool, compare_to: Any
) -> bool:
    if obj_type == "table" and name in _EXTENSION_TABLES:
        return False
    keep = alembic_helpers.include_object(obj, name, obj_type, reflected, compare_to)  # type: ignore[no-untyped-call]
    return bool(keep)


def alembic_config(database_url: str | None = None, *, configure_logging: bool = True) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if database_url:
        cfg.attributes["database_url"] = database_url
    cfg.attributes["configure_logging"] = configure_logging
    return cfg


def upgrade(
    database_url: str | None = None, revision: str = "head", *, configure_logging: bool = True
) -> None:
    command.upgrade(alembic_config(database_url, configure_logging=configure_logging), revision)


def downgrade(
    database_url: str | None = None, revision: str = "base", *, configure_logging: bool = True
) -> None:
    command.downgrade(alembic_config(database_url, configure_logging=configure_logging), revision)
