"""Busy reason codes and the compliance rules' settings, as plain data. No I/O.

The service reads them from a TOML file (see ``busy_reasons.example.toml`` at the repository root);
:func:`parse_config` validates the parsed mapping, so a bad file is refused at start with a message
naming the offending key instead of being half-applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DIGITS = re.compile(r"^[0-9]{1,3}$")


class ConfigError(ValueError):
    """The busy-reasons configuration is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class BusyReason:
    key: str  # what the API and the log use, e.g. "break"
    name: str  # shown to people
    code: str | None = None  # digits dialled after the busy feature code (*22<code>)
    limit_seconds: float | None = None  # per occurrence
    shift_limit_seconds: float | None = None  # summed over a shift
    needs_approval: bool = False
    productive: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    """Timing of the rules that watch the phone."""

    left_post_grace: float = 60.0  # phone gone this long while logged in: "left the post"
    personal_call_grace: float = 5.0  # phone busy this long while ready, outside an ACD call
    # A log out and log in again within this many seconds continues the same shift, so logging
    # out does not reset the per-shift allowances.
    shift_gap: float = 4 * 3600.0


@dataclass(frozen=True, slots=True)
class BusyConfig:
    reasons: Mapping[str, BusyReason] = field(default_factory=dict)
    allow_no_reason: bool = False
    rules: Rules = field(default_factory=Rules)

    def by_code(self, code: str) -> BusyReason | None:
        for reason in self.reasons.values():
            if reason.code == code:
                return reason
        return None

    def check(self, reason: str) -> str | None:
        """Why an agent may not go busy with ``reason``, or ``None`` if it may."""
        if not reason:
            return None if self.allow_no_reason else "a busy reason is required"
        if reason not in self.reasons:
            return f"unknown busy reason {reason!r}; configured: {', '.join(sorted(self.reasons))}"
        return None


def _minutes(table: Mapping[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}.{key} must be a positive number of minutes")
    return float(value) * 60.0


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be true or false")
    return value


def _seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"rules.{key} must be a number of seconds >= 0")
    return float(value)


_REASON_KEYS = {"name", "code", "limit_minutes", "shift_limit_minutes", "needs_approval", "productive"}
_RULE_KEYS = {"left_post_grace_seconds", "personal_call_grace_seconds", "shift_gap_hours"}


def parse_config(data: Mapping[str, Any]) -> BusyConfig:
    """Validate a parsed TOML document into a :class:`BusyConfig`."""
    unknown = set(data) - {"allow_no_reason", "reasons", "rules"}
    if unknown:
        raise ConfigError(f"unknown top-level keys: {sorted(unknown)}")
    reasons: dict[str, BusyReason] = {}
    codes: dict[str, str] = {}
    for key, table in (data.get("reasons") or {}).items():
        where = f"reasons.{key}"
        if not _KEY.match(key):
            raise ConfigError(f"{where}: keys are lower-case letters, digits and _ (max 32)")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        extra = set(table) - _REASON_KEYS
        if extra:
            raise ConfigError(f"{where}: unknown keys {sorted(extra)}")
        code = table.get("code")
        if code is not None:
            code = str(code)
            if not _DIGITS.match(code):
                raise ConfigError(f"{where}.code must be 1 to 3 digits")
            if code in codes:
                raise ConfigError(f"{where}.code {code} is already used by {codes[code]}")
            codes[code] = key
        name = table.get("name", key)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name must be a non-empty string")
        reasons[key] = BusyReason(
            key=key,
            name=name,
            code=code,
            limit_seconds=_minutes(table, "limit_minutes", where),
            shift_limit_seconds=_minutes(table, "shift_limit_minutes", where),
            needs_approval=_bool(table, "needs_approval", where, False),
            productive=_bool(table, "productive", where, False),
        )
    rules_table = data.get("rules") or {}
    extra = set(rules_table) - _RULE_KEYS
    if extra:
        raise ConfigError(f"rules: unknown keys {sorted(extra)}")
    defaults = Rules()
    rules = Rules(
        left_post_grace=_seconds(rules_table, "left_post_grace_seconds", defaults.left_post_grace),
        personal_call_grace=_seconds(
            rules_table, "personal_call_grace_seconds", defaults.personal_call_grace
        ),
        shift_gap=_seconds(rules_table, "shift_gap_hours", defaults.shift_gap / 3600.0) * 3600.0,
    )
    return BusyConfig(
        reasons=reasons,
        allow_no_reason=_bool(data, "allow_no_reason", "", False),
        rules=rules,
    )


#: Used when no file is configured; the same reasons as ``busy_reasons.example.toml``.
DEFAULT_CONFIG = parse_config(
    {
        "reasons": {
            "break": {"name": "Short break", "code": "1", "limit_minutes": 15, "shift_limit_minutes": 45},
            "toilet": {"name": "Toilet", "code": "2", "limit_minutes": 10},
            "meal": {"name": "Meal", "code": "3", "limit_minutes": 45, "needs_approval": True},
            "training": {"name": "Training", "code": "4", "needs_approval": True, "productive": True},
            "paperwork": {
                "name": "Work-order follow-up",
                "code": "5",
                "limit_minutes": 20,
                "productive": True,
            },
        }
    }
)
