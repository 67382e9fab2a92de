"""The shipped Prometheus rules: valid (``promtool check``), tested (``promtool test rules``), and
built only on metrics the service exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from agents.compliance import UNAUTHORIZED_BUSY
from app.observability.metrics import HotlineMetrics
from app.services.kpi import KpiDefinitions
from app.settings import Settings
from tests.observability.conftest import ROOT, RULES, recorded_names
from tests.observability.promql import exported_names, metric_names


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_rules_are_valid(promtool: str) -> None:
    done = _run(promtool, "check", "rules", *map(str, RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(RULES) == 2


def test_rule_unit_tests_pass(promtool: str) -> None:
    tests = ROOT / "prometheus" / "tests"
    files = sorted(p.name for p in tests.glob("*.test.yml"))
    assert files
    done = _run(promtool, "test", "rules", *files, cwd=tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_prometheus_config_is_valid(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    token = tmp_path / "token"
    token.write_text("not-a-secret")
    config["scrape_configs"][0]["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(p) for p in RULES]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_use_only_exported_metrics_and_recorded_names() -> None:
    known = exported_names() | recorded_names() | {"up"}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                missing = metric_names(rule["expr"]) - known
                assert not missing, f"{path.name} {rule.get('record') or rule.get('alert')}: {missing}"


def test_the_15_second_bucket_label_is_what_the_exporter_writes() -> None:
    text = HotlineMetrics(KpiDefinitions(), Settings(), ["general"]).render().decode()
    assert 'hotline_call_wait_seconds_bucket{le="15.0",outcome="answered",queue="general"}' in text
    assert 'le="15.0"' in (ROOT / "prometheus" / "rules" / "hotline-recording.yml").read_text()


def test_the_burst_alert_counts_exactly_the_unauthorized_busy_kinds() -> None:
    text = (ROOT / "prometheus" / "rules" / "hotline-recording.yml").read_text()
    [kinds] = re.findall(r'kind=~"([^"]+)"', text)
    assert set(kinds.split("|")) == {k.value for k in UNAUTHORIZED_BUSY}
