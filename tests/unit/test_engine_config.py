"""The queue definition file: parsing, validation, and the sample shipped with the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from acd import queues_config as qc
from acd.queues_config import ConfigError, Destination, DestinationKind, NoAgents, Strategy, Tier

SAMPLE = Path(__file__).resolve().parents[2] / "queues.example.toml"


def test_the_sample_file_parses_with_defaults_applied() -> None:
    routing = qc.load(SAMPLE)
    queues = {q.name: q for q in routing.queues}
    assert routing.priority_step == 60
    general, complaints, night = queues["general"], queues["complaints"], queues["night"]
    assert (general.strategy, general.wrap_up, general.max_wait) == (Strategy.LONGEST_IDLE, 10, 300)
    assert general.overflow == Destination(DestinationKind.CALLBACK)
    assert complaints.tiers == (Tier(5, 0), Tier(3, 20), Tier(1, 60))
    assert complaints.overflow == Destination(DestinationKind.QUEUE, "general")
    assert (night.when_no_agents, str(night.overflow)) == (NoAgents.OVERFLOW, "voicemail:12345")
    assert general.service_level == 15 and night.announce_every == 0


def test_defaults_without_any_settings() -> None:
    [q] = qc.loads('[[queue]]\nname = "q"').queues
    assert (q.strategy, q.service_level, q.ring_timeout, q.max_wait, q.overflow) == (
        Strategy.LONGEST_IDLE,
        15.0,
        15.0,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[[queue]]\nname = "q"\nstrategy = "ringall"', "ringall"),
        ('[[queue]]\nname = "q"\ncolour = "red"', "unknown keys"),
        ('[[queue]]\nname = "q"\nmax_wait = 30', "overflow destination"),
        ('[[queue]]\nname = "q"\noverflow = "queue:nowhere"', "unknown queue"),
        ('[[queue]]\nname = "q"\noverflow = "queue:q"', "itself"),
        ('[[queue]]\nname = "q"\noverflow = "fax:1"', "unknown overflow destination"),
        ('[[queue]]\nname = "q"\noverflow = "voicemail"', "needs a target"),
        ('[[queue]]\nname = "q"\ntiers = [{level = 5}]', "tiers need a skill"),
        ('[[queue]]\nname = "q"\nskill = "s"\ntiers = [{level = 5, after = 5}]', "after = 0"),
        ('[[queue]]\nname = "q"\nskill = "s"\ntiers = [{level = 3}, {level = 4, after = 9}]', "lower level"),
        ('[[queue]]\nname = "q"\n[[queue]]\nname = "q"', "unique"),
        ("[[queue]]\nring_timeout = 3", "needs a name"),
        ('[queues]\nname = "q"', "unknown sections"),
    ],
)
def test_invalid_files_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        qc.loads(text)
