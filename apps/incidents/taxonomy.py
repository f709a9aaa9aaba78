"""The incident category taxonomy: fixture loading, per-category fields, auto-grading.

Categories are data (``fixtures/incidents/categories.json``, from xixian-data.md §4.2).
Each may declare extra report fields in ``Category.extra_fields``::

    {"name": "waterlogging_depth_cm", "type": "integer", "unit": "cm", "min": 0,
     "max": 1000, "label_zh": "积水深度", "label_en": "Water depth", "required": false}

Types: ``integer``, ``number``, ``boolean``, ``string`` (``max_length``) and ``choice``
(``choices: [{"value", "label_zh", "label_en"}]``). :func:`category_fields_validate`
checks submitted values against these declarations; :func:`severity_suggestion` turns
them into a suggested severity (waterlogging depth, for now).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.models import Category, IncidentClass, Severity

FIELD_TYPES = frozenset({"integer", "number", "boolean", "string", "choice"})
CODE_MAX_LENGTH = 8
STRING_DEFAULT_MAX_LENGTH = 200
WATERLOGGING_CATEGORY = "N02"
WATERLOGGING_FIELD = "waterlogging_depth_cm"

# Category columns a fixture entry sets (besides ``code``); fixture key → model field.
_FIXTURE_FIELDS: dict[str, str] = {
    "class": "incident_class",
    "name_zh": "name_zh",
    "name_en": "name_en",
    "lead_department": "lead_department",
    "gbt35561_code": "gbt35561_code",
    "extra_fields": "extra_fields",
    "related_codes": "related_codes",
    "citizen_reportable": "citizen_reportable",
    "sort_order": "sort_order",
    "is_active": "is_active",
}


class FieldError(TypedDict):
    code: str
    message: str


def default_fixture_path() -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "incidents" / "categories.json"


# --- Loading -------------------------------------------------------------------------------


def categories_load_fixture(path: Path | str | None = None) -> dict[str, int]:
    """Upsert the categories of a fixture file by code; returns counts
    ``{"created", "updated", "unchanged", "total"}``.

    1. Read and validate every entry; refuse the whole file on any problem (a half
       loaded taxonomy would offer citizens categories with broken fields).
    2. Create missing codes; update a category only when a value differs, so a second
       run writes nothing.
    3. An empty ``gbt35561_code`` in the fixture never blanks a code an administrator
       has filled in since: the national codes are entered by hand once verified.
    Categories in the database but not in the file are left alone (admin-made ones).
    """
    entries = _read_fixture(Path(path) if path is not None else default_fixture_path())
    return _categories_upsert(entries)


def _read_fixture(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fixture_invalid([{"code": None, "problem": f"{path}: {exc}"}]) from exc
    entries = data.get("categories") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise _fixture_invalid([{"code": None, "problem": "no list of categories"}])
    return entries


@transaction.atomic
def _categories_upsert(entries: list[dict[str, Any]]) -> dict[str, int]:
    problems = _fixture_problems(entries)
    if problems:
        raise _fixture_invalid(problems)
    existing = {c.code: c for c in Category.objects.filter(code__in=[e["code"] for e in entries])}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "total": len(entries)}
    for entry in entries:
        values = _model_values(entry)
        category = existing.get(entry["code"])
        if category is None:
            Category.objects.create(code=entry["code"], **values)
            counts["created"] += 1
            continue
        if not values["gbt35561_code"]:
            values.pop("gbt35561_code")
        changed = [name for name, value in values.items() if getattr(category, name) != value]
        if not changed:
            counts["unchanged"] += 1
            continue
        for name in changed:
            setattr(category, name, values[name])
        category.save(update_fields=[*changed, "updated_at"])
        counts["updated"] += 1
    return counts


def _model_values(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "incident_class": entry["class"],
        "name_zh": entry["name_zh"],
        "name_en": entry.get("name_en") or "",
        "lead_department": entry.get("lead_department") or "",
        "gbt35561_code": entry.get("gbt35561_code") or "",
        "extra_fields": list(entry.get("extra_fields") or []),
        "related_codes": list(entry.get("related_codes") or []),
        "citizen_reportable": bool(entry.get("citizen_reportable", True)),
        "sort_order": int(entry.get("sort_order") or 0),
        "is_active": bool(entry.get("is_active", True)),
    }


def _fixture_problems(entries: list[Any]) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    codes: set[str] = set()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append({"code": None, "problem": f"entry {position} is not an object"})
            continue
        code = entry.get("code")
        if not isinstance(code, str) or not 0 < len(code) <= CODE_MAX_LENGTH:
            problems.append({"code": code, "problem": f"entry {position}: bad code"})
            continue
        if code in codes:
            problems.append({"code": code, "problem": "duplicate code"})
        codes.add(code)
        if entry.get("class") not in IncidentClass.values:
            problems.append({"code": code, "problem": f"unknown class {entry.get('class')!r}"})
        for key in ("name_zh", "name_en"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                problems.append({"code": code, "problem": f"{key} must be 1-100 characters"})
        extra_fields = entry.get("extra_fields") or []
        if not isinstance(extra_fields, list):
            problems.append({"code": code, "problem": "extra_fields must be a list"})
        else:
            problems.extend(
                {"code": code, "problem": text} for text in declaration_problems(extra_fields)
            )
        if not isinstance(entry.get("related_codes") or [], list):
            problems.append({"code": code, "problem": "related_codes must be a list"})
    known = codes | set(Category.objects.values_list("code", flat=True))
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("related_codes"), list):
            continue
        for related in entry["related_codes"]:
            if related not in known or related == entry.get("code"):
                problems.append(
                    {"code": entry.get("code"), "problem": f"bad related code {related!r}"}
                )
    return problems


def declaration_problems(declarations: list[Any]) -> list[str]:
    """What is wrong with a category's ``extra_fields`` declarations (empty: fine)."""
    problems: list[str] = []
    names: set[str] = set()
    for declaration in declarations:
        if not isinstance(declaration, dict):
            problems.append("a field declaration is not an object")
            continue
        name = declaration.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(f"bad field name {name!r}")
            continue
        if name in names:
            problems.append(f"field {name} declared twice")
        names.add(name)
        kind = declaration.get("type")
        if kind not in FIELD_TYPES:
            problems.append(f"field {name}: unknown type {kind!r}")
        if kind == "choice":
            choices = declaration.get("choices")
            if not isinstance(choices, list) or not choices:
                problems.append(f"field {name}: a choice field needs choices")
            elif not all(isinstance(c, dict) and "value" in c for c in choices):
                problems.append(f"field {name}: every choice needs a value")
        for bound in ("min", "max"):
            value = declaration.get(bound)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                problems.append(f"field {name}: {bound} must be a number")
    return problems


def _fixture_invalid(problems: list[dict[str, Any]]) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        _("The category fixture is invalid."),
        extra={"problems": problems},
    )


# --- Per-category fields -----------------------------------------------------------------


def category_fields_validate(category: Category, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The category fields of a report or incident, checked and normalised.

    Values are checked against ``category.extra_fields``; numbers and booleans sent as
    text (multipart forms from the app) are converted. Unknown names, wrong types,
    values out of range and missing required fields are all collected and refused at
    once: ``category_field_invalid`` (400) with ``extra = {"fields": {name: [{code,
    message}]}}``, the same shape as serializer errors.
    """
    data = dict(data or {})
    declarations = {d["name"]: d for d in category.extra_fields if isinstance(d, dict)}
    errors: dict[str, list[FieldError]] = {}
    cleaned: dict[str, Any] = {}

    for name in data:
        if name not in declarations:
            errors[str(name)] = [_error("unknown", _("This category has no such field."))]
    for name, declaration in declarations.items():
        value = data.get(name)
        if value is None or value == "":
            if declaration.get("required"):
                errors[name] = [_error("required", _("This field is required."))]
            continue
        try:
            cleaned[name] = _clean_value(declaration, value)
        except _FieldInvalid as exc:
            errors[name] = [exc.error]
    if errors:
        raise ApplicationError(
            IncidentErrorCode.CATEGORY_FIELD_INVALID,
            _("Some category fields are invalid."),
            extra={"fields": errors},
            status=400,
        )
    return cleaned


class _FieldInvalid(Exception):
    def __init__(self, code: str, message: Any) -> None:
        super().__init__(code)
        self.error = _error(code, message)


def _error(code: str, message: Any) -> FieldError:
    return {"code": code, "message": str(message)}


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _clean_value(declaration: Mapping[str, Any], value: Any) -> Any:
    kind = declaration.get("type")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _FieldInvalid("invalid", _("Must be true or false."))
    if kind in ("integer", "number"):
        number = _to_number(value, integer=kind == "integer")
        low, high = declaration.get("min"), declaration.get("max")
        if low is not None and number < low:
            raise _FieldInvalid("min_value", _("Must be at least %(min)s.") % {"min": low})
        if high is not None and number > high:
            raise _FieldInvalid("max_value", _("Must be at most %(max)s.") % {"max": high})
        return number
    if kind == "string":
        if not isinstance(value, str):
            raise _FieldInvalid("invalid", _("Must be text."))
        limit = declaration.get("max_length") or STRING_DEFAULT_MAX_LENGTH
        text = value.strip()
        if len(text) > limit:
            raise _FieldInvalid("max_length", _("At most %(limit)s characters.") % {"limit": limit})
        return text
    if kind == "choice":
        allowed = [c["value"] for c in declaration.get("choices") or []]
        if value not in allowed:
            raise _FieldInvalid("invalid_choice", _("Not one of the allowed values."))
        return value
    raise _FieldInvalid("invalid", _("This field cannot be set."))  # unknown type


def _to_number(value: Any, *, integer: bool) -> int | float:
    if isinstance(value, bool):  # True is an int in Python, never a depth
        raise _FieldInvalid("invalid", _("Must be a number."))
    if isinstance(value, str):
        try:
            value = float(value.strip()) if not integer else _int_from_text(value.strip())
        except ValueError:
            raise _FieldInvalid("invalid", _("Must be a number.")) from None
    if isinstance(value, float) and integer:
        if not value.is_integer():
            raise _FieldInvalid("invalid", _("Must be a whole number."))
        value = int(value)
    if not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise _FieldInvalid("invalid", _("Must be a number."))
    return value


def _int_from_text(text: str) -> int:
    number = float(text)
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError(text)
    return int(number)


# --- Auto-grading --------------------------------------------------------------------------


class WaterloggingGrade(StrEnum):
    """咸阳's waterlogging-point risk grades (after GB 51222-2017), xixian-data.md §2.2."""

    LIGHT = "light"  # < 15 cm   轻微积水点
    LOW = "low"  # 15–25 cm      较低风险
    MEDIUM = "medium"  # 25–40 cm 中等风险
    HIGH = "high"  # ≥ 40 cm     高风险


WATERLOGGING_GRADE_LABELS: dict[str, Any] = {
    WaterloggingGrade.LIGHT: _("Light ponding"),
    WaterloggingGrade.LOW: _("Low risk"),
    WaterloggingGrade.MEDIUM: _("Medium risk"),
    WaterloggingGrade.HIGH: _("High risk"),
}


def waterlogging_grade(depth_cm: float) -> str:
    """The grade of a water depth: <15 light, 15–25 low, 25–40 medium, ≥40 high.

    Boundaries belong to the higher grade (15 cm is ``low``, 40 cm is ``high``), as in
    the source's "≥40 cm".
    """
    if depth_cm < 15:
        return WaterloggingGrade.LIGHT
    if depth_cm < 25:
        return WaterloggingGrade.LOW
    if depth_cm < 40:
        return WaterloggingGrade.MEDIUM
    return WaterloggingGrade.HIGH


# Waterlogging grade → suggested incident severity. The depth grades rate a *point's*
# risk; the incident grades Ⅰ–Ⅳ of the national plan rate an *event's* consequences
# (deaths, losses, affected area), which one depth reading cannot show. So:
# - light (<15 cm) ponding is a nuisance, not yet a graded emergency → unclassified;
# - low and medium (15–40 cm: pedestrians and small cars at risk) → Ⅳ 一般, the local,
#   street-level grade;
# - high (≥40 cm: vehicles stall, people get trapped, cf. Zhengzhou 7·20) → Ⅲ 较大, so
#   the duty officer looks at raising the loop.
# Ⅱ/Ⅰ are never suggested from depth alone: they need casualty or loss figures and a
# commander's decision. The operator always confirms; this only pre-fills the form.
WATERLOGGING_SEVERITY: dict[str, str] = {
    WaterloggingGrade.LIGHT: Severity.UNCLASSIFIED,
    WaterloggingGrade.LOW: Severity.IV,
    WaterloggingGrade.MEDIUM: Severity.IV,
    WaterloggingGrade.HIGH: Severity.III,
}


def severity_suggestion(category: Category, extra: Mapping[str, Any] | None) -> str:
    """A suggested severity from the category fields (``unclassified``: no suggestion).

    Only 城市内涝 (N02) is graded for now, by ``waterlogging_depth_cm``.
    """
    if category.code != WATERLOGGING_CATEGORY or not extra:
        return Severity.UNCLASSIFIED
    depth = extra.get(WATERLOGGING_FIELD)
    if isinstance(depth, bool) or not isinstance(depth, int | float):
        return Severity.UNCLASSIFIED
    return WATERLOGGING_SEVERITY[waterlogging_grade(depth)]
