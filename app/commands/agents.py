"""``hotline agents list|set|import|clear-pin``: agent profiles from the console.

Changes are stored in the database and announced to the running service (Redis, see
:mod:`app.services.profile_sync`), which applies them at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.exc import OperationalError, ProgrammingError

from acd.views import AgentProfile, ProfileError
from app.commands.users import _not_ready, _session
from app.db.models import Agent
from app.services.agent_profiles import (
    ProfileImportError,
    ProfileRecord,
    check_pin_format,
    load_profiles,
    parse_import,
    save_profiles,
)
from app.services.profile_sync import announce_change
from app.settings import get_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agents = subparsers.add_parser("agents", help="agent profiles: name, queues, skills, order, PIN")
    actions = agents.add_subparsers(dest="agents_command", required=True)

    listing = actions.add_parser("list", help="list agent profiles")
    listing.set_defaults(handler=_list)

    put = actions.add_parser("set", help="create or update one agent's profile")
    put.add_argument("id")
    put.add_argument("--name", default="")
    put.add_argument("--queue", action="append", default=[], help="a queue served (repeat); none: all")
    put.add_argument("--skill", action="append", default=[], metavar="SKILL=LEVEL", help="level 1-5 (repeat)")
    put.add_argument("--order", type=int, default=0, help="place for top-down and round-robin queues")
    put.add_argument("--pin-stdin", action="store_true", help="read a new phone PIN from stdin")
    put.set_defaults(handler=_set)

    imp = actions.add_parser("import", help="create or update many agents from a CSV or TOML file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--format", choices=["csv", "toml"], help="default: from the file name's ending")
    imp.set_defaults(handler=_import)

    clear = actions.add_parser("clear-pin", help="remove an agent's PIN (no more phone login)")
    clear.add_argument("id")
    clear.set_defaults(handler=_clear_pin)


def _announce() -> None:
    settings = get_settings()
    if not announce_change(settings.redis_url, settings.profiles_channel):
        print(
            "warning: the running service was not told (Redis unreachable); it applies the profiles "
            "at its next start",
            file=sys.stderr,
        )


def _list(_args: argparse.Namespace) -> int:
    try:
        with _session() as session:
            profiles = load_profiles(session)
            pins = {row.id: row.pin_hash is not None for row in session.query(Agent.id, Agent.pin_hash)}
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    print(f"{'ID':<10} {'NAME':<20} {'ORDER':>5} {'PIN':<4} {'QUEUES':<30} SKILLS")
    for p in profiles:
        skills = ";".join(f"{s}:{level}" for s, level in p.skills) or "-"
        queues = ";".join(sorted(p.queues)) or "(all)"
        pin = "yes" if pins.get(p.agent_id) else "no"
        print(f"{p.agent_id:<10} {p.name:<20} {p.order:>5} {pin:<4} {queues:<30} {skills}")
    return 0


def _set(args: argparse.Namespace) -> int:
    try:
        skills = {}
        for item in args.skill:
            skill, sep, level = item.partition("=")
            if not sep or not level.isdigit():
                raise ProfileError(f"--skill {item!r}: SKILL=LEVEL")
            skills[skill] = int(level)
        pin = None
        if args.pin_stdin:
            pin = sys.stdin.readline().strip()
            check_pin_format(pin)
        profile = AgentProfile(args.id, args.name, frozenset(args.queue), skills, args.order)
        with _session() as session:
            [saved] = save_profiles(session, [ProfileRecord(profile, pin)])
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    _announce()
    print(f"agent {saved.agent_id} saved")
    return 0


def _import(args: argparse.Namespace) -> int:
    fmt = args.format or ("toml" if args.file.suffix.lower() == ".toml" else "csv")
    try:
        records = parse_import(args.file.read_text(encoding="utf-8"), fmt)
        with _session() as session:
            saved = save_profiles(session, records)
    except (ProfileImportError, ProfileError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {args.file}: {exc}; nothing imported", file=sys.stderr)
        return 1
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    _announce()
    print(f"{len(saved)} agents imported")
    return 0


def _clear_pin(args: argparse.Namespace) -> int:
    try:
        with _session() as session:
            row = session.get(Agent, args.id)
            if row is None:
                print(f"error: unknown agent {args.id!r}", file=sys.stderr)
                return 1
            row.pin_hash = None
            session.commit()
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    print(f"agent {args.id}: PIN removed")
    return 0
