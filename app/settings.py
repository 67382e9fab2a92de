"""Service configuration, read from the environment (prefix ``HOTLINE_``).

Secrets (the AMI secret, the token signing key) have no defaults in code: they come from the
environment or from a file named by the environment (``*_FILE``), as container platforms mount them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _read_secret_file(path: str | None) -> SecretStr | None:
    if not path:
        return None
    return SecretStr(Path(path).read_text().strip())


#: Settings that have another home now, and where.
MOVED_SETTINGS = {
    "HOTLINE_KPI_SERVICE_LEVEL_SECONDS": "set service_level per queue (or in [defaults]) in the queues file",
    "HOTLINE_KPI_QUEUE_SERVICE_LEVEL_SECONDS": "set service_level per queue in the queues file",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    # AMI link
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "hotline"
    ami_secret: SecretStr | None = None
    ami_secret_file: str | None = None
    ami_ping_interval: float = Field(5.0, gt=0, description="seconds between liveness pings")
    ami_ping_timeout: float = Field(
        3.0, gt=0, description="a ping unanswered this long means the link is dead"
    )
    ami_reconnect_max_delay: float = Field(30.0, gt=0)

    # Storage
    database_url: str = Field(
        "sqlite:///./hotline.sqlite3",
        validation_alias=AliasChoices("HOTLINE_DATABASE_URL", "DATABASE_URL"),
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("HOTLINE_REDIS_URL", "REDIS_URL"),
    )
    write_journal: str = Field(
        "./hotline-writes.journal",
        description="local file keeping the storage writes a stopping service could not make; the next start"
        " makes them first. One per service instance, on a local disk",
    )
    storage_shutdown_grace: float = Field(
        10.0, gt=0, description="at stop, journal what is left once the database took no write for this long"
    )
    storage_stall_seconds: float = Field(
        5.0, gt=0, description="not ready (/readyz) while a storage write has waited this long, or failed"
    )

    # Auth
    jwt_secret: SecretStr | None = None
    jwt_secret_file: str | None = None
    token_minutes: int = Field(480, gt=0, description="access token lifetime (one shift)")

    # Call distribution
    queues: list[str] = Field(
        default_factory=lambda: ["general"], description="queue names, when no queues file is given"
    )
    queues_file: str | None = Field(
        None, description="TOML queue definitions (see queues.example.toml); reloadable at run time"
    )
    repeat_caller_hours: float = Field(24.0, ge=0, description="a caller again within this many hours …")
    repeat_caller_priority: int = Field(1, ge=0, description="… waits with at least this priority")
    ring_timeout: float = Field(
        15.0, gt=0, description="seconds an agent's phone rings before the offer fails"
    )
    agent_context: str = "acd-agent"
    agent_channel_tech: str = "PJSIP"

    # Intake and the agent's desktop (README: "The agent's desk")
    taxonomy_file: str | None = Field(
        None, description="TOML categories and districts (see taxonomy.example.toml); default: that file"
    )
    language: str = Field(
        "zh-CN", pattern=r"^(zh-CN|en)$", description="the pages' default language: zh-CN or en"
    )
    screen_pop_previous_orders: int = Field(
        5, ge=0, le=50, description="how many of the caller's earlier work orders the screen pop lists"
    )

    # KPIs and observability (definitions: README, "KPI definitions")
    timezone: str = Field(
        "Asia/Shanghai", description="the center's time zone: report days and hours, 'today' on the wallboard"
    )
    kpi_short_abandon_seconds: float = Field(
        5.0, ge=0, description="a caller hanging up within this many seconds of queueing is a short abandon"
    )
    kpi_exclude_short_abandons: bool = Field(
        False, description="leave short abandons out of offered and abandoned (they are still counted apart)"
    )
    kpi_target_connection_rate: float = Field(0.95, ge=0, le=1)
    kpi_target_service_level: float = Field(0.90, ge=0, le=1, description="target N-second connection rate")
    kpi_target_abandonment_rate: float = Field(0.05, ge=0, le=1, description="at most")
    kpi_max_oldest_wait_seconds: float = Field(60.0, gt=0, description="alert when a caller waits longer")
    wallboard_busy_limit_seconds: float = Field(
        900.0, gt=0, description="the wallboard highlights agents busy (or not ready) longer than this"
    )
    wallboard_channel: str = Field(
        "hotline:wallboard", description="Redis pub/sub channel (and key prefix) of the wallboard stream"
    )
    profiles_channel: str = Field(
        "hotline:agent-profiles", description="Redis channel announcing agent profile changes"
    )
    metrics_token: SecretStr | None = None
    metrics_token_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_moved_settings(cls, data: object) -> object:
        """A setting that moved must not be ignored silently: the center would measure another N."""
        for name, home in MOVED_SETTINGS.items():
            if name in os.environ:
                raise ValueError(f"{name} is no longer read: {home}")
        return data

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        if self.ami_secret is None:
            self.ami_secret = _read_secret_file(self.ami_secret_file)
        if self.jwt_secret is None:
            self.jwt_secret = _read_secret_file(self.jwt_secret_file)
        if self.metrics_token is None:
            self.metrics_token = _read_secret_file(self.metrics_token_file)
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
