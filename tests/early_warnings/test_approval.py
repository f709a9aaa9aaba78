"""The approval rule: one table, one function, every path (services here; the admin and
API call the same services)."""

from __future__ import annotations

import pytest

from apps.core.errors import ApplicationError
from apps.early_warnings import approval, services
from apps.early_warnings.models import ApprovalRule, WarningStatus, WarningTimelineEntry
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import draft

pytestmark = pytest.mark.django_db


def _pending(cast: Cast, *, level: str, targets: list[object]):
    version = draft(by=cast.town_operator, targets=targets, level=level)
    return services.warning_submit(version_id=version.pk, by=cast.town_operator)


def test_the_rule_table_is_seeded_with_a_row_per_level_and_target_tier(cast: Cast) -> None:
    assert ApprovalRule.objects.count() == 16
    rule = ApprovalRule.objects.get(level="red", target_level="new_area")
    assert (rule.approver_role, rule.approver_level) == ("commander", "new_area")
    assert not ApprovalRule.objects.filter(allow_self_approval=True).exists()
    assert len(approval.DEFAULT_RULES) == 16


def test_an_orange_street_warning_is_refused_to_an_operator_and_approved_by_the_town_commander(
    cast: Cast,
) -> None:
    # given an orange warning for 三桥 awaiting approval
    version = _pending(cast, level="orange", targets=[cast.sanqiao.pk])
    # when the town's other operator approves: the rule wants a commander
    with pytest.raises(ApplicationError) as refused:
        services.warning_approve(version_id=version.pk, by=cast.town_operator2)
    # then 403 with the rule in the answer, and nothing changed
    assert refused.value.status == 403
    assert refused.value.code == "warning_approval_not_allowed"
    assert refused.value.extra["rule"]["approver_role"] == "commander"
    version.refresh_from_db()
    assert version.status == WarningStatus.PENDING_APPROVAL
    # when the commander of 沣东 approves
    published = services.warning_approve(version_id=version.pk, by=cast.town_commander)
    # then it is published, with its CAP identity
    assert published.status == WarningStatus.PUBLISHED
    assert published.identifier.startswith("CN-XIXIAN-EW-")
    assert published.identifier.endswith(f"-{published.chain_id}-v1")
    assert published.sender == "xixian-ems@xixian.gov.cn"
    assert published.approved_by == cast.town_commander
    assert list(
        WarningTimelineEntry.objects.filter(chain=published.chain).values_list("kind", flat=True)
    ) == ["created", "submitted", "approved"]


def test_an_approver_of_another_town_gets_404_the_warning_does_not_exist_for_them(
    cast: Cast,
) -> None:
    version = _pending(cast, level="blue", targets=[cast.sanqiao.pk])
    with pytest.raises(ApplicationError) as refused:
        services.warning_approve(version_id=version.pk, by=cast.outsider)
    assert refused.value.status == 404


def test_a_street_level_blue_warning_is_approved_by_an_operator_of_its_new_town(
    cast: Cast,
) -> None:
    version = _pending(cast, level="blue", targets=[cast.sanqiao.pk])
    # the street's own operator sits below the rule's tier (the new town)
    assert not approval.can_approve(cast.street_operator, version)
    assert approval.can_approve(cast.town_operator2, version)
    published = services.warning_approve(version_id=version.pk, by=cast.town_operator2)
    assert published.status == WarningStatus.PUBLISHED


def test_the_author_may_not_approve_their_own_warning_unless_the_rule_says_so(cast: Cast) -> None:
    version = _pending(cast, level="blue", targets=[cast.sanqiao.pk])
    assert not approval.can_approve(cast.town_operator, version)
    ApprovalRule.objects.filter(level="blue", target_level="street").update(
        allow_self_approval=True
    )
    assert approval.can_approve(cast.town_operator, version)


def test_a_red_warning_for_the_whole_new_area_needs_the_new_area_commander(cast: Cast) -> None:
    version = draft(by=cast.area_commander, targets=[cast.tree.root.pk], level="red")
    services.warning_submit(version_id=version.pk, by=cast.area_commander)
    assert not approval.can_approve(cast.town_commander, version)
    assert not approval.can_approve(cast.area_commander, version)  # the author
    other = type(cast.area_commander).objects.create(username="cmd-2")
    from apps.accounts.services import membership_grant

    membership_grant(user=other, region=cast.tree.root, role="commander")
    assert approval.can_approve(other, version)


def test_a_refusal_sends_the_warning_back_to_draft_with_its_reason(cast: Cast) -> None:
    version = _pending(cast, level="blue", targets=[cast.sanqiao.pk])
    with pytest.raises(ApplicationError) as refused:
        services.warning_reject(version_id=version.pk, by=cast.street_operator, reason="措辞")
    assert refused.value.status == 403
    rejected = services.warning_reject(version_id=version.pk, by=cast.town_operator2, reason="措辞")
    assert rejected.status == WarningStatus.DRAFT
    assert rejected.rejection_reason == "措辞"
    entry = WarningTimelineEntry.objects.filter(chain=rejected.chain).latest("id")
    assert (entry.kind, entry.reason, entry.actor) == ("rejected", "措辞", cast.town_operator2)
    # and it can be edited and submitted again
    services.warning_update_draft(
        version_id=version.pk, by=cast.town_operator, title="暴雨蓝色预警"
    )
    again = services.warning_submit(version_id=version.pk, by=cast.town_operator)
    assert again.status == WarningStatus.PENDING_APPROVAL
    assert again.rejection_reason == ""


def test_an_author_cannot_target_regions_outside_their_compose_scope(cast: Cast) -> None:
    with pytest.raises(ApplicationError) as refused:
        draft(by=cast.town_operator, targets=[cast.tree.diaotai.pk])
    assert refused.value.status == 403
