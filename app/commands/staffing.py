"""``hotline staffing``: how many agents a call volume needs for a target N-second connection rate."""

from __future__ import annotations

import argparse

from acd.erlang import agents_needed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staffing = subparsers.add_parser(
        "staffing",
        help="agents needed for a target 15-second connection rate (Erlang C, or Erlang A with patience)",
    )
    staffing.add_argument("--calls-per-hour", type=float, required=True)
    staffing.add_argument("--aht", type=float, required=True, help="mean handle time (talk + wrap-up), s")
    staffing.add_argument(
        "--target", type=float, default=80.0, help="target connection rate within the threshold, percent"
    )
    staffing.add_argument("--threshold", type=float, default=15.0, help="seconds (default 15)")
    staffing.add_argument("--patience", type=float, help="mean seconds before a waiting caller hangs up")
    staffing.set_defaults(handler=_staffing)


def _staffing(args: argparse.Namespace) -> int:
    if not 0 < args.target < 100:
        print("--target is a percentage between 0 and 100")
        return 2
    p = agents_needed(args.calls_per_hour, args.aht, args.target / 100, args.threshold, args.patience)
    model = "Erlang A" if args.patience is not None else "Erlang C"
    rows = [
        ("offered load", f"{p.load:.1f} erlangs"),
        (f"{args.threshold:g}-second connection rate", f"{p.service_level:.2%}"),
        ("probability of waiting", f"{p.prob_wait:.2%}"),
        ("ASA", f"{p.asa:.1f} s"),
    ]
    if args.patience is not None:
        rows.append(("abandonment", f"{p.abandon_rate:.2%}"))
    rows.append(("occupancy", f"{p.occupancy:.2%}"))
    print(f"agents needed ({model}): {p.agents}")
    for name, value in rows:
        print(f"  {name:30}{value:>14}")
    return 0
