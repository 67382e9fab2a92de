"""KPI definitions and the report arithmetic (no database: calls are given as facts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.models import CallOutcome, Disposition
from app.services.kpi import CallFacts, Interval, KpiDefinitions, KpiTotals, kpi_report, report_csv

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def answered(
    wait: float,
    talk: float | None = 60,
    at: datetime = T0,
    ticket: bool = True,
    disposition: Disposition | None = Disposition.accepted,
) -> CallFacts:
    answer = at + timedelta(seconds=wait)
    end = None if talk is None else answer + timedelta(seconds=talk)
    return CallFacts("general", CallOutcome.answered, at, answer, end, ticket, disposition)


def abandoned(wait: float, at: datetime = T0) -> CallFacts:
    return CallFacts("general", CallOutcome.abandoned, at, None, at + timedelta(seconds=wait), False)


def totals(calls: list[CallFacts], **definitions: object) -> KpiTotals:
    report = kpi_report(
        calls, KpiDefinitions(**definitions), T0, T0 + timedelta(hours=1), Interval.HOUR, "Asia/Shanghai"
    )
    return report.total


def test_the_issue_mix_with_short_abandons_counted() -> None:
    mix = [answered(2), answered(20), abandoned(4), abandoned(30)]
    t = totals(mix, short_abandon_seconds=5)
    assert (t.offered, t.answered, t.abandoned, t.short_abandoned) == (4, 2, 2, 1)
    assert (t.connection_rate, t.service_level_rate, t.abandonment_rate) == (0.5, 0.25, 0.5)
    assert t.asa_seconds == 11 and t.aht_seconds == 60 and t.acceptance_rate == 1


def test_acceptance_rate_counts_appeals_taken_in_and_leaves_out_non_appeals() -> None:
    mix = [
        answered(2, disposition=Disposition.accepted),
        answered(3, disposition=Disposition.answered_directly),
        answered(4, disposition=Disposition.not_an_appeal),  # a prank: out of numerator and denominator
        answered(5, disposition=None),  # intake never submitted: not accepted
        abandoned(30),  # never reached a person: not in the acceptance rate at all
    ]
    t = totals(mix)
    assert (t.answered, t.accepted, t.answered_directly, t.not_an_appeal) == (4, 1, 1, 1)
    assert t.acceptance_rate == 2 / 3
    only_pranks = totals([answered(2, disposition=Disposition.not_an_appeal)])
    assert only_pranks.acceptance_rate is None  # no appeal answered: no rate, not 0 % or 100 %


def test_the_issue_mix_with_short_abandons_excluded() -> None:
    mix = [answered(2), answered(20), abandoned(4), abandoned(30)]
    t = totals(mix, short_abandon_seconds=5, exclude_short_abandons=True)
    assert (t.offered, t.answered, t.abandoned, t.short_abandoned) == (3, 2, 1, 1)
    assert t.connection_rate == 2 / 3 and t.service_level_rate == 1 / 3 and t.abandonment_rate == 1 / 3


def test_service_level_is_inclusive_and_per_queue() -> None:
    defs = KpiDefinitions(service_level_seconds=15, queue_service_level_seconds={"vip": 5})
    assert defs.in_service_level("general", 15) and not defs.in_service_level("general", 15.001)
    assert not defs.in_service_level("vip", 6)


def test_rates_are_undefined_without_calls_and_aht_waits_for_the_end() -> None:
    empty = KpiTotals()
    assert empty.connection_rate is None and empty.asa_seconds is None
    t = totals([answered(3, talk=None)])
    assert t.answered == 1 and t.aht_seconds is None


def test_rows_are_local_hours_or_days_and_empty_periods_are_listed() -> None:
    defs = KpiDefinitions()
    calls = [answered(1, at=T0 + timedelta(minutes=10)), abandoned(40, at=T0 + timedelta(hours=2))]
    report = kpi_report(calls, defs, T0, T0 + timedelta(hours=3), Interval.HOUR, "Asia/Shanghai")
    assert [r.start.hour for r in report.rows] == [9, 10, 11]
    assert [r.totals.offered for r in report.rows] == [1, 0, 1]
    # a local day: 16:00 UTC is already tomorrow in Shanghai
    late = answered(1, at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    days = kpi_report(
        [late],
        defs,
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
        Interval.DAY,
        "Asia/Shanghai",
    )
    assert [(r.start.day, r.totals.answered) for r in days.rows] == [(1, 0), (2, 1), (3, 0)]
    assert days.rows[0].start == datetime(2026, 3, 1, tzinfo=UTC)  # clipped to the asked period


def test_csv_has_a_header_a_row_per_period_and_the_total_last() -> None:
    report = kpi_report(
        [answered(2), abandoned(30)], KpiDefinitions(), T0, T0 + timedelta(hours=2), Interval.HOUR, "UTC"
    )
    lines = report_csv(report).splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["start", "end", "offered", "answered"]
    assert len(lines) == 1 + 2 + 1
    total = dict(zip(header, lines[-1].split(","), strict=True))
    assert (total["offered"], total["connection_rate"], total["asa_seconds"]) == ("2", "0.5", "2")
    assert dict(zip(header, lines[2].split(","), strict=True))["connection_rate"] == ""  # no calls: no rate


def test_overflowed_calls_are_offered_and_not_connected() -> None:
    overflowed = CallFacts("general", CallOutcome.overflowed, T0, None, T0 + timedelta(seconds=300), False)
    t = totals([answered(2), overflowed])
    assert (t.offered, t.answered, t.overflowed, t.abandoned) == (2, 1, 1, 0)
    assert t.connection_rate == 0.5 and t.service_level_rate == 0.5
