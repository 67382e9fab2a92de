"""The load run's report: KPIs (the service's own definitions, app/services/kpi.py), dispatch latency of
the ACD and of app_queue, CPU, the simulator's prediction for the same load, and the invariants.

JSON for machines, a table for people, and a PNG of waiting calls and ready agents over the run.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from acd.simulation import Scenario, replicate

if TYPE_CHECKING:
    from app.services.kpi import KpiTotals
    from loadtest.invariants import CallRow, Check
    from loadtest.runner import Options, PhaseResult, Run


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p90, p99, max (nearest rank), in milliseconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ms = sorted(v * 1000 for v in values)

    def rank(q: float) -> float:
        return round(ms[min(len(ms) - 1, max(0, math.ceil(q * len(ms)) - 1))], 2)

    return {
        "n": len(ms),
        "p50_ms": rank(0.5),
        "p90_ms": rank(0.9),
        "p99_ms": rank(0.99),
        "max_ms": round(ms[-1], 2),
    }


def spread(values: list[float]) -> dict[str, float]:
    """p5 / median / p95 of replicas."""
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {"p5": q(0.05), "p50": statistics.median(ordered), "p95": q(0.95)}


def simulated(
    agents: int,
    rate: float,
    duration: float,
    talk: float,
    ring: float,
    patience: float,
    replicas: int,
    *,
    busy_share: float = 0.0,
    no_answer_share: float = 0.0,
    ready_again_after: float = 0.0,
) -> dict[str, object]:
    """``hotline simulate`` for the run's load: replicas of the run's own length, from empty, with the
    phones' busy and no-answer shares and the time a missed agent takes to be ready again."""
    scenario = Scenario(
        busy_share=busy_share,
        no_answer_share=no_answer_share,
        ready_again_after=ready_again_after,
        agents=agents,
        calls_per_hour=rate * 3600,
        handle_time=max(talk, 0.1),
        hours=duration / 3600,
        warmup=0.0,
        patience=patience,
        ring_delay=ring,
    )
    outcomes = replicate(scenario, replicas)
    return {
        "inputs": {
            "agents": agents,
            "calls_per_second": rate,
            "seconds": duration,
            "talk_mean": talk,
            "ring_mean": ring,
            "patience_mean": patience,
            "replicas": replicas,
            "busy_share": busy_share,
            "no_answer_share": no_answer_share,
            "ready_again_after": ready_again_after,
        },
        "service_level": spread([o.service_level for o in outcomes]),
        "asa": spread([o.asa for o in outcomes]),
        "abandon_rate": spread([o.abandon_rate for o in outcomes]),
    }


def build(
    *,
    options: Options,
    run: Run,
    acd: PhaseResult,
    app_queue: PhaseResult | None,
    rows: dict[str, CallRow],
    totals: KpiTotals,
    checks: list[Check],
    acd_latency: list[float],
    app_latency: list[float],
) -> dict[str, object]:
    p = options.profile
    answered_legs = [leg for leg in acd.obs.legs.values() if leg.bridged_at is not None]
    ring = (
        statistics.fmean([leg.bridged_at - leg.created_at for leg in answered_legs]) if answered_legs else 0.0
    )  # type: ignore[operator]
    talk = totals.aht_seconds or 0.0
    kpis = totals.as_dict()
    failed_legs = {"busy_486": 0, "not_answered": 0}
    for leg in acd.obs.legs.values():
        if leg.bridged_at is None:
            failed_legs["busy_486" if leg.cause == 17 else "not_answered"] += 1
    report: dict[str, object] = {
        "profile": p.as_dict(),
        "run_id": run.run_id,
        "passed": all(c.passed for c in checks),
        "invariants": [c.as_dict() for c in checks],
        "acd": {
            "placed": acd.placed,
            "queued": len(acd.obs.callers),
            "sipp": acd.sipp,
            "kpi": kpis,
            "agent_legs": len(acd.obs.legs),
            "unanswered_legs": failed_legs,
            "patience_hangups": acd.patience_hangups,
            "left_up_at_end": acd.left_up,
            "made_ready_again": acd.made_ready_again,
            "ring_mean_seconds": round(ring, 3),
            "dispatch_latency": percentiles(acd_latency),
            "cpu_share_of_one_core": acd.cpu,
            "seconds": round(acd.ended - acd.started, 1),
        },
        "simulated": simulated(
            p.agents,
            p.calls_per_second,
            p.duration,
            talk,
            ring,
            p.patience_mean,
            options.replicas,
            busy_share=p.busy_share,
            no_answer_share=p.no_answer_share,
            # the load test polls the agents every second, then waits reready_after
            ready_again_after=options.reready_after + 0.5,
        ),
    }
    if app_queue is not None:
        bridged = [c for c in app_queue.obs.callers.values() if c.bridged_at is not None]
        report["app_queue"] = {
            "placed": app_queue.placed,
            "queued": len(app_queue.obs.callers),
            "answered": len(bridged),
            "left_up_at_end": app_queue.left_up,
            "agent_legs": len(app_queue.obs.legs),
            "dispatch_latency": percentiles(app_latency),
            "cpu_share_of_one_core": {"asterisk": app_queue.cpu.get("asterisk")},
            "seconds": round(app_queue.ended - app_queue.started, 1),
        }
    report["_series"] = {
        "waiting": acd.obs.waiting_series(),
        "ready": acd.ready_series,
        "start": acd.started,
    }
    return report


def _pct(value: object) -> str:
    return "—" if value is None else f"{float(value):.1%}"  # type: ignore[arg-type]


def _num(value: object, unit: str = "") -> str:
    return "—" if value is None else f"{float(value):.1f}{unit}"  # type: ignore[arg-type]


def table(report: dict[str, object]) -> str:
    """A readable summary of the report."""
    acd: dict = report["acd"]  # type: ignore[assignment]
    kpi, sim, p = acd["kpi"], report["simulated"], report["profile"]
    lines = [
        f"load: {p['agents']} agents, {p['calls_per_second']:g} calls/s for {p['duration']:g} s, "  # type: ignore[index]
        f"{p['busy_share']:.0%} busy, {p['no_answer_share']:.0%} no answer, talk {p['talk_mean']:g} s, "  # type: ignore[index]
        f"patience {p['patience_mean']:g} s, seed {p['seed']}",  # type: ignore[index]
        "",
        f"{'':34}{'measured':>12}{'simulated p5 / p50 / p95':>30}",
    ]

    def sim_cell(key: str, fmt: str) -> str:
        s = sim[key]  # type: ignore[index]
        if fmt == "pct":
            return f"{s['p5']:.1%} / {s['p50']:.1%} / {s['p95']:.1%}"
        return f"{s['p5']:.1f} / {s['p50']:.1f} / {s['p95']:.1f}"

    rows = [
        ("offered / answered / abandoned", f"{kpi['offered']}/{kpi['answered']}/{kpi['abandoned']}", ""),
        ("15-second connection rate", _pct(kpi["service_level_rate"]), sim_cell("service_level", "pct")),
        ("ASA (s)", _num(kpi["asa_seconds"]), sim_cell("asa", "num")),
        ("abandonment rate", _pct(kpi["abandonment_rate"]), sim_cell("abandon_rate", "pct")),
        ("talk time (s)", _num(kpi["aht_seconds"]), ""),
        ("ring time, answered offers (s)", _num(acd["ring_mean_seconds"]), ""),
    ]
    lines += [f"{name:34}{measured:>12}{simulated:>30}" for name, measured, simulated in rows]
    lines += ["", f"{'dispatch latency (ms)':34}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"]
    for name, key in (("service ACD (AMI)", "acd"), ("app_queue (in Asterisk)", "app_queue")):
        part = report.get(key)
        if part is None:
            continue
        lat = part["dispatch_latency"]  # type: ignore[index]
        cells = [
            f"{lat[k]:>9.1f}" if lat[k] is not None else f"{'—':>9}"
            for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
        ]
        lines.append(f"{name:34}{lat['n']:>7}" + "".join(cells))
    cpu = acd["cpu_share_of_one_core"]
    lines += [
        "",
        f"CPU (share of one core, ACD phase): service {_pct(cpu.get('service'))}, "
        f"Asterisk {_pct(cpu.get('asterisk'))}",
        f"agent legs {acd['agent_legs']} (unanswered: {acd['unanswered_legs']}), callers hung up at their "
        f"patience {acd['patience_hangups']}, agents made ready again {acd['made_ready_again']}",
        "",
        "invariants:",
    ]
    for check in report["invariants"]:  # type: ignore[union-attr]
        mark = "PASS" if check["passed"] else "FAIL"
        lines.append(f"  {mark}  {check['name']}: {check['detail']}")
        lines += [f"          {example}" for example in check["examples"]]
    return "\n".join(lines)


def plot(report: dict[str, object], path: Path) -> Path | None:
    """Waiting calls and ready agents over the ACD phase (PNG); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = report["_series"]
    start = series["start"]  # type: ignore[index]
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    waiting = series["waiting"]  # type: ignore[index]
    if waiting:
        ax.step(
            [t - start for t, _ in waiting],
            [n for _, n in waiting],
            where="post",
            label="callers waiting (incl. while a phone rings)",
        )
    ready = [(t, n) for t, n in series["ready"] if n >= 0]  # type: ignore[index]
    if ready:
        ax.step([t - start for t, _ in ready], [n for _, n in ready], where="post", label="agents ready")
    p = report["profile"]
    ax.set_title(f"{p['agents']} agents, {p['calls_per_second']:g} calls/s (ACD phase)")  # type: ignore[index]
    ax.set_xlabel("seconds since the phase started")
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
