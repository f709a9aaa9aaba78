"""Default policies from ``fixtures/sla/policies.json`` (``manage.py load_sla_policies``).

Idempotent and safe in production: a policy is identified by its ``code``; missing ones
are created with their ladder, existing ones are left exactly as an administrator may
have edited them — unless ``reset=True``, which puts the fixture's figures and ladder back
(for a policy whose code is in the file; admin-made policies are never touched).
The whole file is checked first and refused on any problem: a half-loaded rule set would
leave obligations without clocks.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.sla.models import Anchor, Audience, NextTeam, SlaKind, SlaLadderStep, SlaPolicy

FORMAT = "xems-sla-policies/1"
AUDIENCE_FLAGS = {
    Audience.ASSIGNEE: "notify_assignee",
    Audience.TEAM_LEADER: "notify_team_leader",
    Audience.STREET_DUTY: "notify_street_duty",
    Audience.NEW_TOWN_COMMAND: "notify_new_town_command",
    Audience.NEW_AREA_COMMAND: "notify_new_area_command",
}


def default_fixture_path() -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "sla" / "policies.json"


def policies_load_fixture(path: Path | str | None = None, *, reset: bool = False) -> dict[str, int]:
    """Load the policies of a fixture; returns ``{"created", "reset", "unchanged", "total"}``."""
    file = Path(path) if path is not None else default_fixture_path()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _invalid([f"{file}: {exc}"]) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _invalid([f"{file}: not a {FORMAT} file"])
    entries = data.get("policies")
    if not isinstance(entries, list):
        raise _invalid([f"{file}: no list of policies"])
    problems = [problem for entry in entries for problem in _problems(entry)]
    codes = [entry.get("code") for entry in entries if isinstance(entry, dict)]
    problems += [
        f"{code}: listed twice" for code in sorted({c for c in codes if codes.count(c) > 1})
    ]
    if problems:
        raise _invalid(problems)
    return _upsert(entries, reset=reset)


@transaction.atomic
def _upsert(entries: list[dict[str, Any]], *, reset: bool) -> dict[str, int]:
    existing = {p.code: p for p in SlaPolicy.objects.filter(code__in=[e["code"] for e in entries])}
    counts = {"created": 0, "reset": 0, "unchanged": 0, "total": len(entries)}
    for entry in entries:
        policy = existing.get(entry["code"])
        if policy is not None and not reset:
            counts["unchanged"] += 1
            continue
        values = _policy_values(entry)
        if policy is None:
            policy = SlaPolicy.objects.create(code=entry["code"], **values)
            counts["created"] += 1
        else:
            for name, value in values.items():
                setattr(policy, name, value)
            policy.save()
            policy.steps.all().delete()
            counts["reset"] += 1
        SlaLadderStep.objects.bulk_create(
            [SlaLadderStep(policy=policy, **_step_values(step)) for step in entry["ladder"]]
        )
    return counts


def _policy_values(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": entry["name"],
        "kind": entry["kind"],
        "category_code": entry.get("category") or "",
        "severity": entry.get("severity") or "",
        "loop": entry.get("loop") or "",
        "target": _minutes(entry.get("target_minutes")),
        "duration": _minutes(entry.get("duration_minutes")),
        "is_estimate": bool(entry.get("estimate")),
        "source": entry.get("source") or "",
        "is_active": True,
    }


def _step_values(step: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "anchor": step.get("anchor", Anchor.LIMIT),
        "after": _minutes(step.get("after_minutes", 0)) or timedelta(0),
        "mark_supervised": bool(step.get("supervise")),
        "raise_loop": bool(step.get("raise_loop")),
        "expire_task": bool(step.get("expire_task")),
        "next_team": step.get("next_team", NextTeam.NONE),
        "note": step.get("note", ""),
    }
    for audience in step.get("notify", []):
        values[AUDIENCE_FLAGS[audience]] = True
    return values


def _minutes(value: Any) -> timedelta | None:
    return None if value is None else timedelta(minutes=value)


def _problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict) or not entry.get("code") or not entry.get("name"):
        return [f"{entry!r}: every policy needs a code and a name"]
    code = entry["code"]
    problems = []
    if entry.get("kind") not in SlaKind.values:
        problems.append(f"{code}: unknown kind {entry.get('kind')!r}")
    duration, target = entry.get("duration_minutes"), entry.get("target_minutes")
    for name, value in (("duration_minutes", duration), ("target_minutes", target)):
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            problems.append(f"{code}: {name} must be a positive number of minutes or null")
    if target is not None and (duration is None or target >= duration):
        problems.append(f"{code}: the target must lie within the deadline")
    ladder = entry.get("ladder")
    if not isinstance(ladder, list):
        return [*problems, f"{code}: ladder must be a list"]
    for index, step in enumerate(ladder, start=1):
        where = f"{code} step {index}"
        if not isinstance(step, dict):
            problems.append(f"{where}: not an object")
            continue
        if step.get("anchor", Anchor.LIMIT) not in Anchor.values:
            problems.append(f"{where}: unknown anchor")
        if step.get("anchor") == Anchor.TARGET and target is None:
            problems.append(f"{where}: counts from a target the policy does not have")
        after = step.get("after_minutes", 0)
        if not isinstance(after, int | float) or after < 0:
            problems.append(f"{where}: after_minutes must be 0 or more")
        if any(audience not in AUDIENCE_FLAGS for audience in step.get("notify", [])):
            problems.append(f"{where}: unknown audience in notify")
        next_team = step.get("next_team", NextTeam.NONE)
        if next_team not in NextTeam.values:
            problems.append(f"{where}: unknown next_team")
        elif next_team != NextTeam.NONE and not step.get("expire_task"):
            problems.append(f"{where}: next_team needs expire_task")
    return problems


def _invalid(problems: list[str]) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        _("The SLA policy fixture is invalid; nothing was loaded."),
        extra={"problems": problems},
    )
