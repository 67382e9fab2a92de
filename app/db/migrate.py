"""Schema migrations from code: the service upgrades the database at start, the CLI on demand."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_INI = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration for the packaged migrations; ``url=None`` means the settings' URL."""
    config = Config(str(_INI))
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: ``settings.database_url``) up to ``revision``."""
    command.upgrade(alembic_config(url), revision)
