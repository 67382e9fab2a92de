"""Command-line entry of the load test (``hotline loadtest``): options in, report files out."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path

from loadtest.plan import Profile
from loadtest.report import plot, table
from loadtest.runner import Options, asterisk_lock, execute


def options_from(args: argparse.Namespace) -> Options:
    profile = Profile(
        agents=args.agents,
        calls_per_second=args.rate,
        duration=args.duration,
        max_calls=args.max_calls,
        busy_share=args.busy,
        no_answer_share=args.no_answer,
        ring_min=args.ring[0],
        ring_max=args.ring[1],
        talk_mean=args.talk,
        talk_max=args.talk_max,
        patience_mean=args.patience,
        seed=args.seed,
    )
    ami: dict[str, str] = {}
    if args.service_url:
        secret = os.environ.get("HOTLINE_AMI_SECRET") or ""
        if not secret and os.environ.get("HOTLINE_AMI_SECRET_FILE"):
            secret = Path(os.environ["HOTLINE_AMI_SECRET_FILE"]).read_text().strip()
        ami = {
            "host": os.environ.get("HOTLINE_AMI_HOST", "127.0.0.1"),
            "port": os.environ.get("HOTLINE_AMI_PORT", "5038"),
            # an AMI user without the service's event filter: the checks need Bridge* and Dial* events
            "username": os.environ.get("HOTLINE_LOADTEST_AMI_USERNAME")
            or os.environ.get("HOTLINE_AMI_USERNAME", "hotline"),
            "secret": secret,
        }
    out: Path = args.out
    return Options(
        profile=profile,
        workdir=out / "work",
        app_queue_seconds=0.0 if args.service_url else args.app_queue_seconds,
        patience_max=args.patience_max,
        replicas=args.replicas,
        database_url=args.database_url,
        service_url=args.service_url,
        service_log=args.service_log,
        sip_target=args.sip_target,
        ami=ami,
        agents_file=args.agents_file,
        trace_sip=args.trace_sip,
    )


def run(options: Options, out: Path, *, take_lock: bool = True) -> dict[str, object]:
    """Run (holding the local Asterisk's lock in loopback mode) and write report.json/.txt/.png.

    ``take_lock=False`` is for a caller that already holds it (the end-to-end tests' fixture).
    """
    out.mkdir(parents=True, exist_ok=True)
    if options.service_url is None and take_lock:
        from devtools.local_asterisk import state_dir

        lock = asterisk_lock(state_dir())
    else:
        lock = contextlib.nullcontext()
    with lock:
        report = asyncio.run(execute(options))
    text = table(report)
    picture = plot(report, out / "waiting-and-ready.png")
    series = report.pop("_series")
    report["plot"] = str(picture) if picture else None
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (out / "series.json").write_text(json.dumps(series) + "\n")
    (out / "report.txt").write_text(text + "\n")
    report["_table"] = text
    return report


def main(args: argparse.Namespace) -> int:
    report = run(options_from(args), args.out)
    print(report.pop("_table"))
    print(f"\nreport: {args.out / 'report.json'}, {args.out / 'report.txt'}; plot: {report['plot']}")
    return 0 if report["passed"] else 1
