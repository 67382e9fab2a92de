"""Erlang B/C/A formulas and staffing."""

from __future__ import annotations

import math

import pytest

from acd.erlang import agents_needed, erlang_b, erlang_c, predict


def test_erlang_b_and_c_match_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    # the classic textbook case: 10 agents, 8 erlangs -> C about 40.9%
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)
    assert erlang_c(3, 3.0) == 1.0


def test_erlang_c_is_stable_for_thousands_of_agents() -> None:
    c = erlang_c(3000, 2950.0)
    assert 0 < c < 1 and math.isfinite(c)
    p = predict(1000, 19000, 180)  # 950 erlangs
    assert 0 < p.service_level < 1 and p.occupancy == pytest.approx(0.95)


def test_service_level_and_asa_formulas() -> None:
    p = predict(10, 160, 180, threshold=15)
    load = 8.0
    assert p.service_level == pytest.approx(1 - p.prob_wait * math.exp(-(10 - load) * 15 / 180))
    assert p.asa == pytest.approx(p.prob_wait * 180 / (10 - load))


def test_erlang_a_tends_to_erlang_c_with_endless_patience() -> None:
    c, a = predict(12, 200, 180), predict(12, 200, 180, patience=1e9)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
    assert a.asa == pytest.approx(c.asa, rel=1e-3)


def test_erlang_a_abandonment_is_consistent() -> None:
    p = predict(10, 180, 180, patience=60)  # overloaded without abandonment, stable with it
    # abandoned = 1 - answered, where answered = occupancy * n / load
    assert p.abandon_rate == pytest.approx(1 - p.occupancy * 10 / 9.0, abs=1e-9)
    assert 0 < p.abandon_rate < 0.5 and 0 < p.service_level < 1


def test_staffing_finds_the_fewest_agents_meeting_the_target() -> None:
    p = agents_needed(600, 240, 0.8)  # 40 erlangs
    assert p.service_level >= 0.8
    assert predict(p.agents - 1, 600, 240).service_level < 0.8
    with pytest.raises(ValueError):
        agents_needed(600, 240, 1.2)
