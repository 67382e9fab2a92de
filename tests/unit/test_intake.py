"""The intake rules of a work order and the taxonomy file (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.db.models import Disposition, NonAppealKind, WorkOrderStatus
from app.main import create_app
from app.services import intake
from app.services.taxonomy import TaxonomyError, load, parse
from app.settings import Settings

TAX = load()  # taxonomy.example.toml
TZ = "Asia/Shanghai"


def fields(errors: list[intake.FieldError]) -> list[str]:
    return [e.field for e in errors]


def test_example_taxonomy_inherits_department_and_deadline() -> None:
    air = TAX.category("ENV-AIR")
    assert air is not None and (air.parent, air.department, air.deadline_days) == ("ENV", "区生态环境局", 15)
    noise = TAX.category("ENV-NOISE")
    assert noise is not None and noise.deadline_days == 10
    water = TAX.category("CITY-WATER")
    assert water is not None and (water.deadline_hours, water.deadline_days) == (4.0, None)
    assert "xuhui" in TAX.district_codes and TAX.urgent_deadline_hours == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"categories": []}, "no categories"),
        ({"categories": [{"code": "A", "zh": "甲", "en": "A"}]}, "no deadline"),
        ({"categories": [{"code": "A", "zh": "甲", "en": "A", "deadline_days": 0}]}, "deadline_days"),
        (
            {"categories": [{"code": "A", "zh": "甲", "en": "A", "deadline_days": 1, "deadline_hours": 2}]},
            "not both",
        ),
        (
            {
                "categories": [
                    {
                        "code": "A",
                        "zh": "甲",
                        "en": "A",
                        "deadline_days": 1,
                        "children": [{"code": "A", "zh": "乙", "en": "B"}],
                    }
                ]
            },
            "code used twice",
        ),
        (
            {"categories": [{"code": "A", "zh": "甲", "en": "A", "deadline_days": 1, "colour": "red"}]},
            "unknown keys",
        ),
        ({"categories": [{"code": "A", "en": "A", "deadline_days": 1}]}, "'zh'"),
        ({"cats": []}, "unknown top-level"),
    ],
)
def test_malformed_taxonomies_are_refused_naming_the_entry(data: dict[str, object], message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        parse(data)


def test_a_draft_may_be_incomplete_but_not_unknown() -> None:
    assert intake.check_draft({"description": "楼下施工噪音"}, TAX) == []
    errors = intake.check_draft({"category": "NOPE", "district": "atlantis"}, TAX)
    assert fields(errors) == ["category", "district"]
    assert "NOPE" in errors[0].message


def test_article_only_with_a_direct_answer_and_kind_only_with_a_non_appeal() -> None:
    errors = intake.check_draft(
        {
            "disposition": Disposition.accepted,
            "knowledge_article_id": 3,
            "non_appeal_kind": NonAppealKind.prank,
        },
        TAX,
    )
    assert fields(errors) == ["knowledge_article_id", "non_appeal_kind"]
    assert (
        intake.check_draft({"disposition": Disposition.answered_directly, "knowledge_article_id": 3}, TAX)
        == []
    )


def test_submission_needs_a_disposition_and_what_it_implies() -> None:
    assert fields(intake.check_submission({}, TAX)) == ["disposition"]
    accepted = {"disposition": Disposition.accepted, "description": "  ", "contact_number": ""}
    assert fields(intake.check_submission(accepted, TAX)) == ["category", "description", "contact_number"]
    direct = {
        "disposition": Disposition.answered_directly,
        "category": "CONSULT",
        "description": "公积金提取",
    }
    assert intake.check_submission(direct, TAX) == []
    assert fields(intake.check_submission({"disposition": Disposition.not_an_appeal}, TAX)) == [
        "non_appeal_kind"
    ]
    prank = {"disposition": Disposition.not_an_appeal, "non_appeal_kind": NonAppealKind.prank}
    assert intake.check_submission(prank, TAX) == []


def test_errors_read_like_fastapi_validation_errors() -> None:
    [error] = intake.check_draft({"district": "x"}, TAX)
    assert error.as_detail() == {
        "loc": ["body", "district"],
        "msg": "unknown district 'x'",
        "type": "unknown",
    }


def test_status_after_submission() -> None:
    assert intake.status_after(Disposition.accepted) is WorkOrderStatus.accepted
    assert intake.status_after(Disposition.answered_directly) is WorkOrderStatus.closed
    assert intake.status_after(Disposition.not_an_appeal) is WorkOrderStatus.closed


def test_working_day_deadlines_skip_the_weekend_in_the_centers_time_zone() -> None:
    # Friday 2026-03-06 16:30 in Shanghai (08:30 UTC); 2 working days later is Tuesday 16:30.
    friday = datetime(2026, 3, 6, 8, 30, tzinfo=UTC)
    consult = TAX.category("CONSULT")
    assert consult is not None
    due = intake.deadline(consult, False, friday, TZ, TAX.urgent_deadline_hours)
    assert due == datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
    # Saturday 23:30 local is still Saturday: Monday and Tuesday are the two working days.
    saturday_night = datetime(2026, 3, 7, 15, 30, tzinfo=UTC)
    assert intake.deadline(consult, False, saturday_night, TZ, None) == datetime(
        2026, 3, 10, 15, 30, tzinfo=UTC
    )


def test_hour_deadlines_and_urgent_orders() -> None:
    at = datetime(2026, 3, 6, 8, 30, tzinfo=UTC)
    water, noise = TAX.category("CITY-WATER"), TAX.category("ENV-NOISE")
    assert water is not None and noise is not None
    assert intake.deadline(water, False, at, TZ, 2) == datetime(2026, 3, 6, 12, 30, tzinfo=UTC)
    assert intake.deadline(water, True, at, TZ, 2) == datetime(2026, 3, 6, 10, 30, tzinfo=UTC)
    assert intake.deadline(noise, True, at, TZ, 2) == datetime(2026, 3, 6, 10, 30, tzinfo=UTC)
    assert intake.deadline(noise, True, at, TZ, None) == datetime(2026, 3, 20, 8, 30, tzinfo=UTC)


def test_the_service_refuses_to_start_with_a_bad_taxonomy(tmp_path: Path) -> None:
    bad = tmp_path / "taxonomy.toml"
    bad.write_text('[[categories]]\ncode = "A"\nzh = "甲"\nen = "A"\n', encoding="utf-8")
    settings = Settings(jwt_secret=SecretStr("k" * 40), taxonomy_file=str(bad))
    with pytest.raises(TaxonomyError, match="no deadline"):
        create_app(settings)
