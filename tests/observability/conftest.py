"""Shared helpers for the Prometheus rule and Grafana dashboard checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2] / "observability"
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool (package ``prometheus``, installed by scripts/bootstrap.sh)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: apt-get install prometheus (scripts/bootstrap.sh does it)")
    return found


def recorded_names() -> set[str]:
    names = set()
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names
