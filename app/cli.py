"""The ``hotline`` console command.

Each subcommand lives in its own module, which exposes ``register(subparsers)``; this file only
assembles them, so the modules do not step on each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module path -> registers one or more subcommands
_COMMAND_MODULES = (
    "app.commands.run",
    "app.commands.asterisk",
    "app.commands.users",
    "app.commands.agents",
    "app.commands.db",
    "app.commands.simulate",
    "app.commands.staffing",
    "app.commands.loadtest",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 hotline call-center service")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
