"""Just enough PromQL reading to list the metric names an expression uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from acd.center import ContactCenter
from acd.views import CenterSnapshot
from app.observability.metrics import HotlineMetrics
from app.services.kpi import KpiDefinitions
from app.services.writer import StorageWriter
from app.settings import Settings

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric and recording-rule names in ``expr`` (functions, keywords and labels left out)."""
    text = _GROUPING.sub(" ", _RANGE.sub(" ", _BRACES.sub(" ", _STRING.sub('""', expr))))
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in KEYWORDS:
            names.add(name)
    return names


@dataclass
class _Link:
    up: bool = True
    reconnects: int = 0


@dataclass
class _Service:
    center: ContactCenter
    link: _Link
    writer: StorageWriter = field(default_factory=StorageWriter)

    def clock(self) -> float:
        return 0.0

    def snapshot(self) -> CenterSnapshot:
        return self.center.snapshot(0.0)


def exported_names() -> set[str]:
    """Every sample name the exporter writes (``_total``, ``_bucket``... included)."""
    settings = Settings()
    metrics = HotlineMetrics(KpiDefinitions.from_settings(settings), settings, ["general"])
    metrics.attach(_Service(ContactCenter([]), _Link()))
    families = text_string_to_metric_families(metrics.render().decode())
    return {sample.name for family in families for sample in family.samples}
