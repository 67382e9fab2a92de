"""``hotline loadtest``: real SIP load (sipp) against the service and Asterisk, invariants checked.

The load test lives in its own package (``loadtest/``), outside the service's runtime modules; this
module only parses the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lt = subparsers.add_parser(
        "loadtest",
        help="place Poisson citizen calls to sipp agent phones; check invariants; compare with the simulator",
        description="Loopback by default: starts the local Asterisk (takes the end-to-end tests' lock) and "
        "a service with a database of its own. Against a staging system give --service-url, "
        "--database-url, --sip-target, --agents-file and HOTLINE_AMI_* settings. Exit code 1 if an "
        "invariant broke.",
    )
    lt.add_argument("--agents", type=int, default=20)
    lt.add_argument("--rate", type=float, default=2.0, help="citizen calls per second (Poisson)")
    lt.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals (ACD phase)")
    lt.add_argument("--max-calls", type=int, default=5000, help="at most this many calls per phase")
    lt.add_argument("--busy", type=float, default=0.05, help="share of offers a phone answers 486 Busy")
    lt.add_argument("--no-answer", type=float, default=0.05, help="share of offers a phone never answers")
    lt.add_argument("--ring", type=float, nargs=2, default=(1.0, 4.0), metavar=("MIN", "MAX"),
                    help="an answering phone rings uniformly between MIN and MAX seconds")  # fmt: skip
    lt.add_argument("--talk", type=float, default=30.0, help="mean talk time (exponential), seconds")
    lt.add_argument("--talk-max", type=float, default=300.0)
    lt.add_argument("--patience", type=float, default=60.0, help="mean caller patience (exponential), s")
    lt.add_argument("--patience-max", type=float, default=300.0)
    lt.add_argument("--app-queue-seconds", type=float, default=60.0,
                    help="arrivals of the app_queue comparison phase (0: none; loopback only)")  # fmt: skip
    lt.add_argument("--replicas", type=int, default=200, help="simulator replicas of the run's length")
    lt.add_argument("--seed", type=int, default=1)
    lt.add_argument("--out", type=Path, default=Path("loadtest-report"), help="directory for the report")
    lt.add_argument("--database-url", help="the service's database (default: a SQLite file of the run)")
    lt.add_argument("--service-url", help="staging: the running service's base URL")
    lt.add_argument("--service-log", type=Path, help="staging: the service's log file to scan")
    lt.add_argument("--sip-target", help="staging: Asterisk's SIP address host:port")
    lt.add_argument("--agents-file", type=Path, help="staging: JSON endpoint -> SIP password")
    lt.add_argument("--trace-sip", action="store_true", help="phones log every SIP message (diagnosis)")
    lt.set_defaults(handler=_loadtest)


def _loadtest(args: argparse.Namespace) -> int:
    from loadtest.main import main

    return main(args)
