"""``hotline users create|list``: manage API accounts from the console."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from app.db.engine import make_engine, session_factory
from app.db.models import Role
from app.services.users import (
    UserError,
    create_user,
    delete_user,
    list_users,
    revoke_tokens,
    set_active,
    set_role,
)
from app.settings import get_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = subparsers.add_parser("users", help="manage API users")
    actions = users.add_subparsers(dest="users_command", required=True)

    create = actions.add_parser("create", help="create a user")
    create.add_argument("name", help="login name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--agent", metavar="ID", help="agent id (required for --role agent; created if new)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="list users")
    listing.set_defaults(handler=_list)

    # Each of these ends the user's tokens at once (see app/security.py).
    for name, help_ in (
        ("disable", "disable a user and end its tokens"),
        ("enable", "re-enable a disabled user (its old tokens stay revoked)"),
        ("delete", "delete a user and end its tokens"),
        ("revoke", "end every token issued to a user so far"),
    ):
        action = actions.add_parser(name, help=help_)
        action.add_argument("name", help="login name")
        action.set_defaults(handler=_change)
    role = actions.add_parser("set-role", help="change a user's role and end its tokens")
    role.add_argument("name", help="login name")
    role.add_argument("--role", required=True, choices=[r.value for r in Role])
    role.add_argument("--agent", metavar="ID", help="agent id (for --role agent; created if new)")
    role.set_defaults(handler=_change)


class _Abort(Exception):
    """Stop the command with a message for the operator."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise _Abort("passwords do not match")
    return first


def _create(args: argparse.Namespace) -> int:
    try:
        # Check what can be checked before asking for a password.
        if args.role == Role.agent and not args.agent:
            raise _Abort("--role agent requires --agent ID")
        password = _read_password(args.password_stdin)
        with _session() as session:
            user = create_user(session, args.name, password, args.role, args.agent)
    except (_Abort, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    agent = f", agent {user.agent_id}" if user.agent_id else ""
    print(f"created user {user.username} ({user.role.value}{agent})")
    return 0


def _change(args: argparse.Namespace) -> int:
    try:
        with _session() as session:
            match args.users_command:
                case "disable" | "enable":
                    set_active(session, args.name, args.users_command == "enable")
                case "delete":
                    delete_user(session, args.name)
                case "revoke":
                    revoke_tokens(session, args.name)
                case "set-role":
                    set_role(session, args.name, args.role, args.agent)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    print(f"{args.users_command}: {args.name} (its earlier tokens no longer work)")
    return 0


def _list(_args: argparse.Namespace) -> int:
    try:
        with _session() as session:
            users = list_users(session)
    except (OperationalError, ProgrammingError) as exc:
        return _not_ready(exc)
    print(f"{'USERNAME':<24} {'ROLE':<11} {'AGENT':<10} ACTIVE")
    for u in users:
        print(f"{u.username:<24} {u.role.value:<11} {u.agent_id or '-':<10} {'yes' if u.active else 'no'}")
    return 0


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(get_settings().database_url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _not_ready(exc: OperationalError | ProgrammingError) -> int:
    reason = str(exc.orig).splitlines()[0]
    print(f"error: database not ready ({reason}); run 'hotline db upgrade' first", file=sys.stderr)
    return 1
