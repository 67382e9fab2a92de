"""Agent profiles in the database: name, queues served, skills with levels, order, phone PIN.

The database is the home of the profiles; the running core gets them at start and after every
change (API, CLI, file import), see :class:`ProfileSync`. An import file holds many agents at once,
as CSV or TOML (README, *Agent profiles*)::

    id,name,queues,skills,order,pin
    1001,张三,general;complaints,mandarin:5;cantonese:3,1,4711

    [[agent]]
    id = "1001"
    name = "张三"
    queues = ["general", "complaints"]   # empty or absent: every queue
    skills = { mandarin = 5, cantonese = 3 }
    order = 1
    pin = "4711"                         # optional; absent or empty: the PIN is left as it is

An import is all or nothing: one bad row refuses the whole file, naming the row. PINs are 4 to 8
digits and stored only as salted PBKDF2 hashes.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from acd.views import AgentProfile, ProfileError
from app.db.models import Agent

PIN_DIGITS = (4, 8)
_PBKDF2_ITERATIONS = 60_000
#: Upper bound for an import (a center has hundreds of agents; this leaves room for thousands).
MAX_IMPORT_AGENTS = 20_000
CSV_COLUMNS = ("id", "name", "queues", "skills", "order", "pin")


class ProfileImportError(ValueError):
    """An import file that cannot be applied; the message names the row and the field."""


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """A profile with what to do with the PIN: ``None`` leaves it, ``""`` clears it, else sets it."""

    profile: AgentProfile
    pin: str | None = None


# -- PINs ----------------------------------------------------------------------------------------


def check_pin_format(pin: str) -> None:
    low, high = PIN_DIGITS
    if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        raise ProfileError(f"a PIN is {low} to {high} digits")


def hash_pin(pin: str) -> str:
    check_pin_format(pin)
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, _PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${_PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, pin_hash: str | None) -> bool:
    if not pin_hash or not pin:
        return False
    try:
        _, iterations, salt, digest = pin_hash.split("$")
        computed = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


# -- storage ---------------------------------------------------------------------------------------


def to_profile(row: Agent) -> AgentProfile:
    return AgentProfile(row.id, row.name, frozenset(row.queues or ()), dict(row.skills or {}), row.sort_order)


def load_profiles(session: Session) -> list[AgentProfile]:
    return [to_profile(row) for row in session.scalars(select(Agent).order_by(Agent.id))]


def save_profiles(session: Session, records: Iterable[ProfileRecord]) -> list[AgentProfile]:
    """Create or update agents (one transaction, committed); returns the stored profiles."""
    records = list(records)
    ids = [r.profile.agent_id for r in records]
    if len(set(ids)) != len(ids):
        raise ProfileError("an agent id is listed twice")
    existing = {row.id: row for row in session.scalars(select(Agent).where(Agent.id.in_(ids)))}
    saved = []
    for record in records:
        p = record.profile
        row = existing.get(p.agent_id)
        if row is None:
            row = Agent(id=p.agent_id, name=p.name or p.agent_id)
            session.add(row)
        row.name = p.name or row.name
        row.queues = sorted(p.queues)
        row.skills = dict(p.skills)
        row.sort_order = p.order
        if record.pin is not None:
            row.pin_hash = hash_pin(record.pin) if record.pin else None
        saved.append(p)
    session.commit()
    return [to_profile(session.get(Agent, p.agent_id)) for p in saved]  # type: ignore[arg-type]


class PinCheck:
    """Checks a feature-code login: ``"ok"``, ``"unknown_agent"``, ``"no_pin"`` or ``"wrong_pin"``.

    An agent without a PIN cannot log in from a phone (only through the API, with its password).
    Blocking (a database read and a deliberately slow hash): call it in a worker thread.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def __call__(self, agent_id: str, pin: str) -> str:
        with self._sessions() as session:
            row = session.execute(select(Agent.id, Agent.pin_hash).where(Agent.id == agent_id)).first()
        if row is None:
            return "unknown_agent"
        if row.pin_hash is None:
            return "no_pin"
        return "ok" if verify_pin(pin, row.pin_hash) else "wrong_pin"


# -- import files ----------------------------------------------------------------------------------


def parse_import(text: str, fmt: str) -> list[ProfileRecord]:
    """Profiles from a CSV (header ``id,name,queues,skills,order,pin``) or TOML (``[[agent]]``) text."""
    if fmt == "csv":
        raws = _csv_rows(text)
    elif fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileImportError(f"not valid TOML: {exc}") from None
        unknown = set(data) - {"agent"}
        if unknown:
            raise ProfileImportError(f"unknown sections {sorted(unknown)}: agents are [[agent]] tables")
        raws = [(f"agent {i}", raw) for i, raw in enumerate(data.get("agent", []), 1)]
    else:
        raise ProfileImportError(f"unknown format {fmt!r}: csv or toml")
    if len(raws) > MAX_IMPORT_AGENTS:
        raise ProfileImportError(f"more than {MAX_IMPORT_AGENTS} agents in one file")
    records = []
    for where, raw in raws:
        try:
            records.append(record_from(raw))
        except (ProfileError, TypeError, ValueError) as exc:
            raise ProfileImportError(f"{where}: {exc}") from None
    ids = [r.profile.agent_id for r in records]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if duplicates:
        raise ProfileImportError(f"agent ids listed more than once: {duplicates}")
    return records


def record_from(raw: Mapping[str, Any]) -> ProfileRecord:
    """One profile from a mapping with the import file's keys (``id`` required)."""
    if not isinstance(raw, Mapping):
        raise ProfileError("an agent is a table of keys")
    unknown = set(raw) - set(CSV_COLUMNS)
    if unknown:
        raise ProfileError(f"unknown keys {sorted(unknown)}")
    agent_id = str(raw.get("id") or "").strip()
    queues = raw.get("queues") or []
    skills = raw.get("skills") or {}
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        raise ProfileError("queues: a list of queue names")
    if not isinstance(skills, Mapping):
        raise ProfileError("skills: a table of skill = level")
    order = raw.get("order", 0)
    pin = str(raw["pin"]).strip() if raw.get("pin") not in (None, "") else None
    if pin is not None:
        check_pin_format(pin)
    name = str(raw.get("name") or "").strip()
    profile = AgentProfile(agent_id, name, frozenset(q.strip() for q in queues), dict(skills), order)
    return ProfileRecord(profile, pin)


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if "id" not in header or set(header) - set(CSV_COLUMNS):
        raise ProfileImportError(f"the CSV header must be some of {','.join(CSV_COLUMNS)} with id")
    rows = []
    for line_no, row in enumerate(reader, 2):
        if None in row:
            raise ProfileImportError(f"line {line_no}: more fields than the header")
        values = {k.strip(): (v or "").strip() for k, v in row.items()}
        try:
            raw: dict[str, Any] = {"id": values.get("id", ""), "name": values.get("name", "")}
            raw["queues"] = [q for q in values.get("queues", "").split(";") if q.strip()]
            raw["skills"] = _csv_skills(values.get("skills", ""))
            raw["order"] = int(values["order"]) if values.get("order") else 0
        except ValueError as exc:
            raise ProfileImportError(f"line {line_no}: {exc}") from None
        if values.get("pin"):
            raw["pin"] = values["pin"]
        rows.append((f"line {line_no}", raw))
    return rows


def _csv_skills(text: str) -> dict[str, int]:
    skills: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        skill, sep, level = item.partition(":")
        if not sep or not level.strip().isdigit():
            raise ValueError(f"skills: {item!r} is not skill:level")
        skills[skill.strip()] = int(level)
    return skills
