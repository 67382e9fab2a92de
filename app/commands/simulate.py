"""``hotline simulate``: run the routing core in a discrete-event simulation, beside Erlang's prediction."""

from __future__ import annotations

import argparse
import math
import statistics
import time

from acd.erlang import predict
from acd.queues_config import Strategy
from acd.simulation import HandleTimes, Scenario, replicate, run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser(
        "simulate",
        help="simulate one queue with the real routing core and compare with Erlang C / Erlang A",
        description="Poisson arrivals, exponential or log-normal handle times, optional exponential "
        "patience; the same engine as the service decides every offer.",
    )
    sim.add_argument("--agents", type=int, required=True, help="agents logged in and ready")
    sim.add_argument("--calls-per-hour", type=float, required=True)
    sim.add_argument("--aht", type=float, required=True, help="mean talk time, seconds")
    sim.add_argument("--hours", type=float, default=8.0, help="measured simulated hours (default 8)")
    sim.add_argument("--warmup", type=float, default=1800.0, help="simulated seconds before measuring")
    sim.add_argument(
        "--handle-times", choices=[d.value for d in HandleTimes], default=HandleTimes.EXPONENTIAL.value
    )
    sim.add_argument("--cv", type=float, default=1.0, help="log-normal: standard deviation / mean")
    sim.add_argument("--patience", type=float, help="mean seconds a caller waits before hanging up")
    sim.add_argument("--ring-delay", type=float, default=0.0, help="seconds an agent takes to answer")
    sim.add_argument("--wrap-up", type=float, default=0.0)
    sim.add_argument("--busy-share", type=float, default=0.0, help="share of offers a phone answers busy")
    sim.add_argument("--no-answer-share", type=float, default=0.0, help="share of offers nobody answers")
    sim.add_argument(
        "--ready-again-after", type=float, default=0.0, help="seconds a missed agent takes to be ready again"
    )
    sim.add_argument("--threshold", type=float, default=15.0, help="service-level seconds (default 15)")
    sim.add_argument("--strategy", choices=[s.value for s in Strategy], default=Strategy.LONGEST_IDLE.value)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="independent runs (seeds seed, seed+1, ...): shows each rate's mean and 95 %% interval",
    )
    sim.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    scenario = Scenario(
        agents=args.agents,
        calls_per_hour=args.calls_per_hour,
        handle_time=args.aht,
        hours=args.hours,
        warmup=args.warmup,
        distribution=HandleTimes(args.handle_times),
        lognormal_cv=args.cv,
        patience=args.patience,
        ring_delay=args.ring_delay,
        wrap_up=args.wrap_up,
        threshold=args.threshold,
        strategy=Strategy(args.strategy),
        seed=args.seed,
        busy_share=args.busy_share,
        no_answer_share=args.no_answer_share,
        ready_again_after=args.ready_again_after,
    )
    started = time.process_time()
    if args.replicas > 1:
        return _replicated(args, scenario, started)
    outcome = run(scenario)
    spent = time.process_time() - started
    model = "Erlang A" if args.patience is not None else "Erlang C"
    expected = predict(args.agents, args.calls_per_hour, scenario.work_time, args.threshold, args.patience)
    sl = f"{args.threshold:g}-second connection rate"
    rows = [
        ("offered", f"{outcome.offered}", ""),
        ("answered", f"{outcome.answered}", ""),
        ("abandoned", f"{outcome.abandoned}", ""),
        (sl, f"{outcome.service_level:.2%}", f"{expected.service_level:.2%}"),
        ("abandonment rate", f"{outcome.abandon_rate:.2%}", f"{expected.abandon_rate:.2%}"),
        ("ASA (s)", f"{outcome.asa:.1f}", f"{expected.asa:.1f}"),
        ("occupancy", f"{outcome.occupancy:.2%}", f"{expected.occupancy:.2%}"),
    ]
    print(f"{'':32}{'simulated':>12}{model:>12}")
    for name, simulated, theory in rows:
        print(f"{name:32}{simulated:>12}{theory:>12}")
    if args.handle_times != HandleTimes.EXPONENTIAL or args.ring_delay or args.wrap_up:
        print(f"note: {model} assumes exponential handle times of {scenario.work_time:g} s (talk+wrap+ring)")
    if args.busy_share or args.no_answer_share:
        print(f"note: {model} knows no busy or unanswered phones")
    print(f"({outcome.events} events through the core in {spent:.1f} s CPU)")
    return 0


def _replicated(args: argparse.Namespace, scenario: Scenario, started: float) -> int:
    """Mean and 95 % interval (1.96 standard errors of the mean) of independent replicas."""
    outcomes = replicate(scenario, args.replicas)
    spent = time.process_time() - started
    model = "Erlang A" if args.patience is not None else "Erlang C"
    expected = predict(args.agents, args.calls_per_hour, scenario.work_time, args.threshold, args.patience)
    rows = [
        (f"{args.threshold:g}-second connection rate", [o.service_level * 100 for o in outcomes],
         expected.service_level * 100, "%"),
        ("abandonment rate", [o.abandon_rate * 100 for o in outcomes], expected.abandon_rate * 100, "%"),
        ("ASA (s)", [o.asa for o in outcomes], expected.asa, ""),
        ("occupancy", [o.occupancy * 100 for o in outcomes], expected.occupancy * 100, "%"),
    ]  # fmt: skip
    print(f"{args.replicas} replicas of {args.hours:g} h: mean +- 95 % interval")
    print(f"{'':32}{'simulated':>22}{model:>12}")
    for name, values, theory, unit in rows:
        half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
        cell = f"{statistics.fmean(values):.2f} +- {half:.2f}{unit}"
        print(f"{name:32}{cell:>22}{f'{theory:.2f}{unit}':>12}")
    print(f"({sum(o.events for o in outcomes)} events through the core in {spent:.1f} s CPU)")
    return 0
