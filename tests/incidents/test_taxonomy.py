"""The category taxonomy: fixture, loader, per-category fields and auto-grading."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.core.errors import ApplicationError
from apps.incidents.models import Category, IncidentClass, Severity
from apps.incidents.taxonomy import (
    categories_load_fixture,
    category_fields_validate,
    declaration_problems,
    default_fixture_path,
    severity_suggestion,
    waterlogging_grade,
)
from tests.factories.incidents import CategoryFactory, WaterloggingCategoryFactory

REQUIRED_CODES = {
    *(f"N{i:02d}" for i in range(1, 12)),
    *(f"A{i:02d}" for i in range(1, 16)),
    *(f"H{i:02d}" for i in range(1, 6)),
    *(f"S{i:02d}" for i in range(1, 5)),
}
OPTIONAL_CODES = {"N12", "S05", "O99"}


def _fixture() -> dict[str, Any]:
    return json.loads(default_fixture_path().read_text(encoding="utf-8"))


# --- The fixture file ----------------------------------------------------------------------


def test_fixture_has_the_35_categories_and_the_three_optional_ones() -> None:
    codes = [entry["code"] for entry in _fixture()["categories"]]

    assert len(REQUIRED_CODES) == 35
    assert set(codes) == REQUIRED_CODES | OPTIONAL_CODES
    assert len(codes) == len(set(codes))


def test_fixture_classes_follow_the_code_letter() -> None:
    letter_class = {
        "N": IncidentClass.NATURAL,
        "A": IncidentClass.ACCIDENT,
        "H": IncidentClass.PUBLIC_HEALTH,
        "S": IncidentClass.SOCIAL_SECURITY,
        "O": IncidentClass.OTHER,
    }
    for entry in _fixture()["categories"]:
        assert entry["class"] == letter_class[entry["code"][0]], entry["code"]
        assert entry["name_zh"]
        assert entry["name_en"]
        assert entry["lead_department"]
        assert entry["gbt35561_code"] == ""


def test_fixture_related_codes_exist_and_are_symmetric() -> None:
    entries = {entry["code"]: entry for entry in _fixture()["categories"]}
    for code, entry in entries.items():
        for related in entry["related_codes"]:
            assert related in entries, (code, related)
            assert code in entries[related]["related_codes"], (code, related)
    assert {"N01", "N03"} <= set(entries["N02"]["related_codes"])
    assert "A03" in entries["A02"]["related_codes"]
    assert "A02" in entries["A01"]["related_codes"]


def test_fixture_field_declarations_are_valid() -> None:
    entries = {entry["code"]: entry for entry in _fixture()["categories"]}
    for code, entry in entries.items():
        assert declaration_problems(entry["extra_fields"]) == [], code
    names = {code: {f["name"] for f in e["extra_fields"]} for code, e in entries.items()}
    assert "waterlogging_depth_cm" in names["N02"]
    assert "smell_of_gas" in names["A02"]
    assert "people_trapped" in names["A01"]
    assert "people_trapped" in names["A04"]


# --- Loading -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loading_the_fixture_creates_every_category() -> None:
    # when
    counts = categories_load_fixture()

    # then
    assert counts == {"created": 38, "updated": 0, "unchanged": 0, "total": 38}
    n02 = Category.objects.get(code="N02")
    assert n02.name_zh == "城市内涝 / 积水"
    assert n02.name_en == "Urban waterlogging"
    assert n02.incident_class == IncidentClass.NATURAL
    assert n02.lead_department == "城管 / 水务"
    assert n02.extra_fields[0]["name"] == "waterlogging_depth_cm"
    assert not Category.objects.get(code="N12").citizen_reportable


@pytest.mark.django_db
def test_loading_twice_writes_nothing_the_second_time(
    django_assert_max_num_queries: Any,
) -> None:
    # given
    categories_load_fixture()
    stamps = dict(Category.objects.values_list("code", "updated_at"))

    # when
    # savepoint, known codes (related check), existing rows, release: no writes
    with django_assert_max_num_queries(4):
        counts = categories_load_fixture()

    # then
    assert counts == {"created": 0, "updated": 0, "unchanged": 38, "total": 38}
    assert dict(Category.objects.values_list("code", "updated_at")) == stamps


@pytest.mark.django_db
def test_loading_updates_changed_names_and_keeps_a_filled_in_national_code(
    tmp_path: Path,
) -> None:
    # given an administrator filled in a GB/T 35561 code, and the fixture renames N02
    categories_load_fixture()
    Category.objects.filter(code="N02").update(gbt35561_code="11B01")
    data = _fixture()
    for entry in data["categories"]:
        if entry["code"] == "N02":
            entry["name_en"] = "Urban flooding"
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    # when
    counts = categories_load_fixture(path)

    # then
    assert counts["updated"] == 1
    n02 = Category.objects.get(code="N02")
    assert n02.name_en == "Urban flooding"
    assert n02.gbt35561_code == "11B01"


@pytest.mark.django_db
def test_a_broken_fixture_is_refused_whole(tmp_path: Path) -> None:
    # given one good entry and two broken ones
    data = {
        "categories": [
            {"code": "X01", "class": "natural", "name_zh": "甲", "name_en": "A"},
            {"code": "X02", "class": "weather", "name_zh": "乙", "name_en": "B"},
            {
                "code": "X03",
                "class": "natural",
                "name_zh": "丙",
                "name_en": "C",
                "extra_fields": [{"name": "depth", "type": "colour"}],
                "related_codes": ["ZZZ"],
            },
        ]
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    # when
    with pytest.raises(ApplicationError) as caught:
        categories_load_fixture(path)

    # then nothing was written and every problem is listed
    assert Category.objects.count() == 0
    problems = {p["code"] for p in caught.value.extra["problems"]}
    assert problems == {"X02", "X03"}


@pytest.mark.django_db
def test_load_categories_command_reports_the_counts() -> None:
    out = StringIO()

    call_command("load_categories", stdout=out)
    call_command("load_categories", stdout=out)

    assert "38 created" in out.getvalue()
    assert "38 unchanged" in out.getvalue()


@pytest.mark.django_db
def test_load_categories_command_fails_cleanly_on_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command("load_categories", str(tmp_path / "missing.json"))


# --- Per-category fields -------------------------------------------------------------------


def _category_with_fields() -> Category:
    return Category(
        code="Z01",
        extra_fields=[
            {"name": "depth_cm", "type": "integer", "min": 0, "max": 1000},
            {"name": "smell", "type": "boolean"},
            {"name": "diameter_m", "type": "number", "min": 0, "max": 100},
            {"name": "substance", "type": "string", "max_length": 5},
            {"name": "utility", "type": "choice", "choices": [{"value": "water"}]},
            {"name": "floor", "type": "integer", "required": True},
        ],
    )


def test_valid_fields_are_normalised() -> None:
    cleaned = category_fields_validate(
        _category_with_fields(),
        {
            "depth_cm": "35",
            "smell": "true",
            "diameter_m": "2.5",
            "substance": " 氯气 ",
            "utility": "water",
            "floor": 3.0,
        },
    )

    assert cleaned == {
        "depth_cm": 35,
        "smell": True,
        "diameter_m": 2.5,
        "substance": "氯气",
        "utility": "water",
        "floor": 3,
    }


def test_empty_optional_fields_are_dropped() -> None:
    cleaned = category_fields_validate(
        _category_with_fields(), {"depth_cm": "", "smell": None, "floor": 1}
    )

    assert cleaned == {"floor": 1}


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ApplicationError) as caught:
        category_fields_validate(
            _category_with_fields(),
            {
                "depth_cm": 2000,
                "smell": "perhaps",
                "diameter_m": "wide",
                "substance": "too long text",
                "utility": "gas",
                "colour": "red",
            },
        )

    error = caught.value
    assert error.code == "category_field_invalid"
    assert error.status == 400
    fields = error.extra["fields"]
    assert {name: [e["code"] for e in errs] for name, errs in fields.items()} == {
        "depth_cm": ["max_value"],
        "smell": ["invalid"],
        "diameter_m": ["invalid"],
        "substance": ["max_length"],
        "utility": ["invalid_choice"],
        "colour": ["unknown"],
        "floor": ["required"],
    }


@pytest.mark.parametrize("value", [True, 2.5, "2.5", "nan", float("inf"), [1]])
def test_an_integer_field_refuses_non_integers(value: Any) -> None:
    category = Category(code="Z02", extra_fields=[{"name": "n", "type": "integer"}])

    with pytest.raises(ApplicationError) as caught:
        category_fields_validate(category, {"n": value})

    assert caught.value.extra["fields"]["n"][0]["code"] == "invalid"


def test_a_category_without_fields_accepts_nothing_extra() -> None:
    category = Category(code="Z03", extra_fields=[])

    assert category_fields_validate(category, None) == {}
    with pytest.raises(ApplicationError):
        category_fields_validate(category, {"anything": 1})


# --- Auto-grading --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "grade"),
    [
        (0, "light"),
        (14.9, "light"),
        (15, "low"),
        (24, "low"),
        (25, "medium"),
        (39, "medium"),
        (40, "high"),
        (120, "high"),
    ],
)
def test_waterlogging_grade_uses_the_15_25_40_thresholds(depth: float, grade: str) -> None:
    assert waterlogging_grade(depth) == grade


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("depth", "severity"),
    [
        (10, Severity.UNCLASSIFIED),
        (20, Severity.IV),
        (30, Severity.IV),
        (45, Severity.III),
    ],
)
def test_waterlogging_depth_suggests_a_severity(depth: int, severity: str) -> None:
    category = WaterloggingCategoryFactory()

    assert severity_suggestion(category, {"waterlogging_depth_cm": depth}) == severity


@pytest.mark.django_db
def test_other_categories_and_missing_depths_suggest_nothing() -> None:
    waterlogging = WaterloggingCategoryFactory()
    fire = CategoryFactory(code="A01")

    assert severity_suggestion(waterlogging, {}) == Severity.UNCLASSIFIED
    assert severity_suggestion(waterlogging, {"waterlogging_depth_cm": True}) == (
        Severity.UNCLASSIFIED
    )
    assert severity_suggestion(fire, {"waterlogging_depth_cm": 80}) == Severity.UNCLASSIFIED
