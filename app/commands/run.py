"""``hotline run``: serve the API and run call distribution in this process."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from app import logs


def _state_dir() -> Path:
    return Path(os.environ.get("HOTLINE_STATE_DIR", "/var/lib/hotline"))


def _ensure_local_secret(name: str, env: str) -> None:
    """For a local run only: keep a generated secret in the state dir (mode 0600) and point to it."""
    if os.environ.get(env) or os.environ.get(f"{env}_FILE"):
        return
    path = _state_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    os.environ[f"{env}_FILE"] = str(path)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    logs.configure(args.log_level, args.log_format)
    if args.with_asterisk:
        from app.commands.asterisk import tooling

        tooling().ensure_running(agents=args.agents)
        _ensure_local_secret("ami-secret", "HOTLINE_AMI_SECRET")
        _ensure_local_secret("jwt-secret", "HOTLINE_JWT_SECRET")
    from app.main import create_app

    app = create_app()
    print(
        f"hotline API on http://{args.host}:{args.port}  (docs: http://{args.host}:{args.port}/docs)",
        flush=True,
    )
    # Open wallboard streams must not hold a shutdown for long.
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, access_log=False, timeout_graceful_shutdown=5
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="serve the API and run call distribution")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="auto",
        help="JSON lines, readable console lines, or auto: console on a terminal, JSON otherwise",
    )
    parser.add_argument(
        "--with-asterisk",
        action="store_true",
        help="provision and start the local Asterisk first (development), with generated local secrets",
    )
    parser.add_argument(
        "--agents", type=int, default=10, help="agent endpoints to configure on the local Asterisk"
    )
    parser.set_defaults(handler=run)
