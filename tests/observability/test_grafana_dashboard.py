"""The Grafana dashboard and its provisioning: every query parses and names only metrics the service
exports or rules record, and the seed figures a center reports are on it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.observability.conftest import ROOT, recorded_names
from tests.observability.promql import exported_names, metric_names

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
# Grafana variables, replaced as Grafana would before the query reaches Prometheus.
VARIABLES = {"$queue": ".*", "${queue}": ".*", "$__rate_interval": "5m", "$__interval": "1m"}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows
    return panels


def _queries() -> list[tuple[str, str]]:
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in VARIABLES.items():
                    expr = expr.replace(name, value)
                queries.append((f"{path.name}: {panel['title']}", expr))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                queries.append((f"{path.name}: ${variable['name']}", variable["definition"]))
    return queries


def test_every_query_names_only_exported_metrics_or_recording_rules() -> None:
    known = exported_names() | recorded_names()
    queries = _queries()
    assert len(queries) > 20
    for where, expr in queries:
        if expr.startswith("label_values("):
            expr = expr.removeprefix("label_values(").split(",")[0]
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= known, f"{where}: unknown {names - known} in {expr!r}"


def test_every_query_parses(promtool: str, tmp_path: Path) -> None:
    # promtool has no bare query checker in Debian 12's 2.42: check the queries as recording rules.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(_queries())
        if not expr.startswith("label_values(")
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_seed_figures_are_on_the_dashboard() -> None:
    [path] = DASHBOARDS
    text = path.read_text()
    for needle in (
        "hotline_calls_answered:increase1d",  # connection rate
        "hotline_calls_answered_within_15s:increase1d",  # 15-second rate
        "hotline_calls_offered", "hotline_calls_abandoned", "hotline_queue_calls_waiting",
        "hotline_agents", "hotline_agent_incidents",
    ):  # fmt: skip
        assert needle in text, needle
    dashboard = json.loads(text)
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "hotline-kpis"


def test_provisioning_points_at_the_dashboards_and_a_prometheus() -> None:
    provisioning = ROOT / "grafana" / "provisioning"
    [source] = yaml.safe_load((provisioning / "datasources" / "hotline.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    [provider] = yaml.safe_load((provisioning / "dashboards" / "hotline.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    for path in DASHBOARDS:
        for panel in _panels(json.loads(path.read_text())):
            assert panel["datasource"]["type"] == "prometheus", panel["title"]
