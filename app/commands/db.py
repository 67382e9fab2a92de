"""``hotline db upgrade``: apply the schema migrations to the configured database."""

from __future__ import annotations

import argparse

from app.db.migrate import upgrade


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="database maintenance")
    actions = db.add_subparsers(dest="db_command", required=True)
    up = actions.add_parser(
        "upgrade", help="migrate the schema (HOTLINE_DATABASE_URL) to the latest revision"
    )
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    up.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    upgrade(revision=args.revision)
    print(f"database upgraded to {args.revision}")
    return 0
