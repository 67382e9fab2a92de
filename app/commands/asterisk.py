"""``hotline asterisk up | down | status``: the local Asterisk 22 (see :mod:`devtools.local_asterisk`).

The tooling lives outside the service package (the image does not ship it); it is imported only when
one of these commands runs, from a checkout or an install that includes ``devtools``.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType


def tooling() -> ModuleType:
    """``devtools.local_asterisk``, or SystemExit with a clear message where it is not installed."""
    try:
        from devtools import local_asterisk
    except ImportError as exc:
        raise SystemExit(
            "hotline asterisk: the local Asterisk tooling (devtools/) is not installed here; "
            "it is for development and tests: run it from a checkout of the repository"
        ) from exc
    return local_asterisk


def _say(message: str) -> None:
    print(message, flush=True)


def _up(args: argparse.Namespace) -> int:
    local_asterisk = tooling()
    try:
        info = local_asterisk.ensure_running(agents=args.agents, rebuild=args.rebuild, report=_say)
    except local_asterisk.AsteriskError as exc:
        print(f"hotline asterisk up: {exc}", file=sys.stderr)
        return 1
    _say(f"AMI: {info.ami_host}:{info.ami_port} user {info.ami_username}, secret in {info.ami_secret_file}")
    _say(f"    (the service reads it with HOTLINE_AMI_SECRET_FILE={info.ami_secret_file})")
    _say(f"SIP: {info.sip_host}:{info.sip_port}/udp; citizens' trunk from {info.trunk_address}")
    _say(f"agents: {len(info.agents)} endpoints, passwords in {info.state_dir / 'agents.json'}")
    return 0


def _down(args: argparse.Namespace) -> int:
    local_asterisk = tooling()
    try:
        local_asterisk.stop(report=_say)
    except local_asterisk.AsteriskError as exc:
        print(f"hotline asterisk down: {exc}", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    st = tooling().status()
    _say(f"running: {'yes, pid ' + str(st.pid) if st.running else 'no'}")
    _say(f"AMI reachable: {'yes' if st.ami_reachable else 'no'}")
    _say(f"root cached: {'yes' if st.root_cached else 'no'} ({st.root})")
    _say(f"state dir: {st.state_dir}")
    # LSB convention: 3 = not running.
    return 0 if st.running else 3


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "asterisk",
        help="a local Asterisk 22 for development and the end-to-end tests",
        description="Run Asterisk 22 (Debian sid, in a cached chroot) with the hotline configuration.",
    )
    sub = parser.add_subparsers(dest="asterisk_command", required=True)
    up = sub.add_parser("up", help="provision (once), configure and start Asterisk; no-op if running")
    up.add_argument("--agents", type=int, default=10, help="agent endpoints agent1..agentN (default 10)")
    up.add_argument("--rebuild", action="store_true", help="rebuild the cached root from scratch")
    up.set_defaults(handler=_up)
    down = sub.add_parser("down", help="stop the Asterisk started by 'up'")
    down.set_defaults(handler=_down)
    st = sub.add_parser("status", help="running? pid, AMI reachable, root cached (exit 3 if not running)")
    st.set_defaults(handler=_status)
