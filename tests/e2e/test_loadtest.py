"""CI's load run: ``hotline loadtest`` for a minute on the real Asterisk, every invariant must hold.

20 agent phones (5 % answer 486 Busy, 5 % never answer), 2 citizen calls per second for 60 s, then a
short app_queue phase. The test fails on a broken invariant, never on a timing or a KPI; it also
fails if a check had nothing to look at (a load run that placed no calls proves nothing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.local_asterisk import LocalAsterisk
from loadtest.main import run
from loadtest.plan import Profile
from loadtest.runner import Options
from tests.e2e.service import database

pytestmark = pytest.mark.e2e


def test_short_load_run_keeps_every_invariant(local_asterisk: LocalAsterisk, tmp_path: Path) -> None:
    profile = Profile(
        agents=20,
        calls_per_second=2.0,
        duration=60.0,
        busy_share=0.05,
        no_answer_share=0.05,
        ring_min=1.0,
        ring_max=3.0,
        talk_mean=5.0,
        talk_max=20.0,
        patience_mean=30.0,
        seed=11,
    )
    with database("postgresql", tmp_path) as url:
        options = Options(
            profile=profile,
            workdir=tmp_path / "work",
            app_queue_seconds=15.0,
            patience_max=60.0,
            replicas=50,
            database_url=url,
        )
        # The local_asterisk fixture holds the shared Asterisk's lock already.
        report = run(options, tmp_path / "report", take_lock=False)
    text = report["_table"]
    acd = report["acd"]
    assert acd["queued"] >= 60, text  # about 120 arrivals; nearly all reach the queue
    assert acd["kpi"]["answered"] > 0 and acd["agent_legs"] >= acd["kpi"]["answered"], text
    assert (tmp_path / "report" / "report.json").exists() and report["plot"], text
    assert report["app_queue"]["queued"] > 0, text
    empty = [c["name"] for c in report["invariants"] if c["checked"] == 0]
    assert not empty, f"checks with nothing to check: {empty}\n{text}"
    broken = [c["name"] for c in report["invariants"] if not c["passed"]]
    assert not broken, f"broken invariants: {broken}\n{text}"
