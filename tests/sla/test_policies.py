"""Policies: which one applies, the process cache, and the default rule set."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from apps.core.errors import ApplicationError
from apps.sla import policies
from apps.sla.models import Anchor, SlaKind, SlaLadderStep, SlaPolicy
from apps.sla.policies import policy_match
from apps.sla.services.seed import default_fixture_path, policies_load_fixture
from tests.factories.sla import LadderStepFactory, SlaPolicyFactory

pytestmark = pytest.mark.django_db

ARRIVAL = SlaKind.TASK_ARRIVAL


# --- Matching order ----------------------------------------------------------------------------


def test_the_category_beats_the_severity_which_beats_the_loop() -> None:
    # given a generic rule, a loop rule, a severity rule and a category rule
    SlaPolicyFactory(code="any", kind=ARRIVAL, duration=timedelta(minutes=30))
    SlaPolicyFactory(code="loop", kind=ARRIVAL, loop="small", duration=timedelta(minutes=25))
    SlaPolicyFactory(code="sev", kind=ARRIVAL, severity="II", duration=timedelta(minutes=22))
    SlaPolicyFactory(code="gas", kind=ARRIVAL, category_code="A02", duration=timedelta(hours=1))

    # when / then
    assert policy_match(kind=ARRIVAL, category="A02", severity="II", loop="small").code == "gas"
    assert policy_match(kind=ARRIVAL, category="A01", severity="II", loop="small").code == "sev"
    assert policy_match(kind=ARRIVAL, category="A01", severity="IV", loop="small").code == "loop"
    assert policy_match(kind=ARRIVAL, category="A01", severity="IV", loop="large").code == "any"


def test_a_category_and_severity_rule_beats_the_category_alone() -> None:
    SlaPolicyFactory(code="gas", kind=ARRIVAL, category_code="A02")
    SlaPolicyFactory(code="gas-i", kind=ARRIVAL, category_code="A02", severity="I")

    assert policy_match(kind=ARRIVAL, category="A02", severity="I").code == "gas-i"
    assert policy_match(kind=ARRIVAL, category="A02", severity="II").code == "gas"


def test_inactive_policies_and_other_kinds_never_match() -> None:
    SlaPolicyFactory(code="off", kind=ARRIVAL, is_active=False)
    SlaPolicyFactory(code="other", kind=SlaKind.TASK_ACCEPT)

    assert policy_match(kind=ARRIVAL, category="A02") is None


def test_two_active_rules_for_the_same_combination_are_refused() -> None:
    SlaPolicyFactory(code="one", kind=ARRIVAL, category_code="A02")

    with pytest.raises(IntegrityError), transaction.atomic():
        SlaPolicyFactory(code="two", kind=ARRIVAL, category_code="A02")


def test_a_target_must_lie_within_the_deadline() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        SlaPolicyFactory(target=timedelta(hours=5), duration=timedelta(hours=4))


def test_the_ladder_is_ordered_by_when_each_step_runs() -> None:
    # given a 20 min target / 60 min limit, steps entered out of order
    policy = SlaPolicyFactory(
        kind=ARRIVAL, target=timedelta(minutes=20), duration=timedelta(hours=1)
    )
    late = LadderStepFactory(policy=policy, anchor=Anchor.LIMIT, after=timedelta(minutes=30))
    at_limit = LadderStepFactory(policy=policy, anchor=Anchor.LIMIT, after=timedelta(0))
    at_target = LadderStepFactory(policy=policy, anchor=Anchor.TARGET, after=timedelta(0))

    # when
    rule = policy_match(kind=ARRIVAL)

    # then: target+0 (20 min), limit+0 (60 min), limit+30 (90 min)
    assert [(s.anchor, s.after) for s in rule.ladder] == [
        (at_target.anchor, at_target.after),
        (at_limit.anchor, at_limit.after),
        (late.anchor, late.after),
    ]
    assert [s.number for s in rule.ladder] == [1, 2, 3]


# --- The process cache -------------------------------------------------------------------------


def test_an_edited_policy_is_seen_at_once_by_this_process(
    django_assert_num_queries: object,
) -> None:
    # given a warm cache
    policy = SlaPolicyFactory(kind=ARRIVAL, duration=timedelta(minutes=30))
    assert policy_match(kind=ARRIVAL).duration == timedelta(minutes=30)

    # when an administrator edits it
    policy.duration = timedelta(minutes=45)
    policy.save()

    # then
    assert policy_match(kind=ARRIVAL).duration == timedelta(minutes=45)


def test_a_warm_cache_costs_no_query(django_assert_num_queries: object) -> None:
    SlaPolicyFactory(kind=ARRIVAL)
    policy_match(kind=ARRIVAL)

    with django_assert_num_queries(0):  # type: ignore[operator]
        assert policy_match(kind=ARRIVAL) is not None


def test_a_new_ladder_step_reaches_the_cache() -> None:
    policy = SlaPolicyFactory(kind=ARRIVAL)
    assert policy_match(kind=ARRIVAL).ladder == ()

    LadderStepFactory(policy=policy, notify_street_duty=True)

    assert len(policy_match(kind=ARRIVAL).ladder) == 1


def test_an_old_copy_is_rebuilt_after_the_max_age(settings: object) -> None:
    # given a copy built, then the table changed behind the cache's back (another process
    # with its own local-memory cache)
    SlaPolicyFactory(code="p", kind=ARRIVAL, duration=timedelta(minutes=30))
    policy_match(kind=ARRIVAL)
    SlaPolicy.objects.filter(code="p").update(duration=timedelta(minutes=50))
    assert policy_match(kind=ARRIVAL).duration == timedelta(minutes=30)

    # when the copy is older than SLA_POLICY_CACHE_SECONDS
    settings.SLA_POLICY_CACHE_SECONDS = 0  # type: ignore[attr-defined]

    # then
    assert policy_match(kind=ARRIVAL).duration == timedelta(minutes=50)
    assert policies._table is not None


# --- The default rule set ----------------------------------------------------------------------


def test_the_defaults_cover_every_kind_with_the_issue_figures() -> None:
    # when
    counts = policies_load_fixture()

    # then
    assert counts["created"] == counts["total"] == SlaPolicy.objects.count()
    assert set(SlaPolicy.objects.values_list("kind", flat=True)) == set(SlaKind.values)
    minutes = {p.code: p.duration for p in SlaPolicy.objects.all()}
    assert minutes["report-triage"] == timedelta(minutes=5)
    assert minutes["task-accept"] == timedelta(minutes=3)
    assert minutes["task-arrival-a01-fire"] == timedelta(minutes=15)
    assert minutes["task-arrival-n02-waterlogging"] == timedelta(minutes=30)
    assert minutes["resolution-small"] == timedelta(hours=4)
    assert minutes["resolution-medium"] == timedelta(hours=24)
    assert minutes["verification"] == timedelta(hours=24)
    assert minutes["warning-ack-red"] == timedelta(minutes=10)
    assert minutes["warning-ack-orange"] == timedelta(minutes=30)
    assert minutes["hidden-danger-rectification"] is None  # by the subject's own deadline
    gas = SlaPolicy.objects.get(code="task-arrival-a02-gas")
    assert (gas.target, gas.duration) == (timedelta(minutes=20), timedelta(minutes=60))


def test_estimated_figures_are_flagged_as_estimates() -> None:
    policies_load_fixture()

    estimates = set(SlaPolicy.objects.filter(is_estimate=True).values_list("code", flat=True))

    assert {"resolution-large", "dispatch-default", "task-arrival-default"} <= estimates
    assert "resolution-small" not in estimates
    assert all("estimate" in p.source.lower() for p in SlaPolicy.objects.filter(is_estimate=True))


def test_loading_twice_changes_nothing_and_keeps_an_administrators_edit() -> None:
    # given the defaults, then an administrator's edit
    policies_load_fixture()
    SlaPolicy.objects.filter(code="task-accept").update(duration=timedelta(minutes=5))
    steps = SlaLadderStep.objects.count()

    # when
    counts = policies_load_fixture()

    # then
    assert counts["created"] == 0
    assert counts["unchanged"] == counts["total"]
    assert SlaPolicy.objects.get(code="task-accept").duration == timedelta(minutes=5)
    assert SlaLadderStep.objects.count() == steps


def test_reset_puts_the_fixture_figures_and_ladder_back() -> None:
    policies_load_fixture()
    policy = SlaPolicy.objects.get(code="task-accept")
    policy.duration = timedelta(minutes=9)
    policy.save()
    policy.steps.all().delete()

    counts = policies_load_fixture(reset=True)

    policy.refresh_from_db()
    assert counts["reset"] == counts["total"]
    assert policy.duration == timedelta(minutes=3)
    assert policy.steps.count() == 1


def test_a_broken_fixture_is_refused_whole(tmp_path: Path) -> None:
    # given a file with one good and one broken policy
    data = json.loads(default_fixture_path().read_text(encoding="utf-8"))
    broken = {
        "code": "broken",
        "name": "坏的",
        "kind": "no_such_kind",
        "duration_minutes": -1,
        "ladder": [{"anchor": "target", "notify": ["nobody"], "next_team": "dispatch"}],
    }
    data["policies"] = [*data["policies"][:1], broken]
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    # when
    with pytest.raises(ApplicationError) as caught:
        policies_load_fixture(path)

    # then
    problems = caught.value.extra["problems"]
    assert any("unknown kind" in p for p in problems)
    assert any("positive number" in p for p in problems)
    assert any("target the policy does not have" in p for p in problems)
    assert any("unknown audience" in p for p in problems)
    assert any("next_team needs expire_task" in p for p in problems)
    assert not SlaPolicy.objects.exists()


def test_the_command_loads_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("load_sla_policies")
    call_command("load_sla_policies")

    out = capsys.readouterr().out
    assert "0 created" in out
    assert SlaPolicy.objects.filter(code="resolution-small").exists()
