"""Who may approve a warning: the one place every path asks (services, admin, API).

The rule table is :class:`~apps.early_warnings.models.ApprovalRule` (admin data, seeded
by migration ``0002_approval_rules``): a row per (level, level of the highest target)
names the approver's role and the tier they must sit at. The *highest target* is the
shallowest target region (a warning for 沣东新城 and 三桥街道 is a new-town warning).

:func:`can_approve` says yes when all hold:

1. the user holds ``warning.approve`` (``apps.accounts.permissions``) over every target;
2. one of their active memberships has the rule's role — ``operator`` accepts operators,
   commanders and administrators; ``commander`` accepts commanders and administrators —
   at a region of the rule's tier *or above* whose subtree holds every target (the
   commander of the new area may approve anything, an operator of 沣东 a street-level
   blue warning of 沣东 but not one of 沣西);
3. they are not the version's author, unless the rule allows self-approval (the seed
   allows it nowhere: four eyes on every warning), or the caller passes
   ``author_may_approve`` (an update or cancel composed by the approver of the live
   version: ``services.warning_update``).

Superusers pass 1 and 2, never 3 unless allowed: a superuser's own warning waits too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Membership, Role
from apps.accounts.permissions import Capability, can
from apps.core.errors import ApplicationError
from apps.early_warnings.errors import WarningErrorCode
from apps.early_warnings.models import ApprovalRule, ApproverRole, WarningVersion
from apps.regions.models import LEVEL_DEPTH, Region

ROLES_FOR: dict[str, frozenset[str]] = {
    ApproverRole.OPERATOR: frozenset({Role.OPERATOR, Role.COMMANDER, Role.ADMIN}),
    ApproverRole.COMMANDER: frozenset({Role.COMMANDER, Role.ADMIN}),
}

# The seed of the rule table (data migration 0002; docs/early-warnings.md):
# (level, target level) → (approver role, approver tier).
DEFAULT_RULES: dict[tuple[str, str], tuple[str, str]] = {
    ("red", "new_area"): ("commander", "new_area"),
    ("red", "new_town"): ("commander", "new_area"),
    ("red", "street"): ("commander", "new_area"),
    ("red", "unit"): ("commander", "new_area"),
    ("orange", "new_area"): ("commander", "new_area"),
    ("orange", "new_town"): ("commander", "new_town"),
    ("orange", "street"): ("commander", "new_town"),
    ("orange", "unit"): ("commander", "new_town"),
    ("yellow", "new_area"): ("commander", "new_area"),
    ("yellow", "new_town"): ("commander", "new_town"),
    ("yellow", "street"): ("operator", "new_town"),
    ("yellow", "unit"): ("operator", "new_town"),
    ("blue", "new_area"): ("operator", "new_area"),
    ("blue", "new_town"): ("operator", "new_town"),
    ("blue", "street"): ("operator", "new_town"),
    ("blue", "unit"): ("operator", "street"),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    message: Any = ""
    rule: ApprovalRule | None = None

    def raise_if_refused(self) -> None:
        if not self.allowed:
            raise ApplicationError(
                self.code,
                self.message,
                extra=rule_extra(self.rule),
                status=403,
            )


def target_regions(version: WarningVersion) -> list[Region]:
    """The version's target regions (prefetched ``targets__region`` is reused)."""
    return [target.region for target in version.targets.all()]


def highest_target(regions: list[Region]) -> Region:
    return min(regions, key=lambda region: (region.depth, region.path))


def approver_rule_for(version: WarningVersion) -> ApprovalRule | None:
    """The rule row for the version's level and the level of its highest target."""
    regions = target_regions(version)
    if not regions:
        return None
    top = highest_target(regions)
    return ApprovalRule.objects.filter(level=version.level, target_level=top.level).first()


def rule_extra(rule: ApprovalRule | None) -> dict[str, Any]:
    if rule is None:
        return {}
    return {
        "rule": {
            "level": rule.level,
            "target_level": rule.target_level,
            "approver_role": rule.approver_role,
            "approver_level": rule.approver_level,
            "allow_self_approval": rule.allow_self_approval,
        }
    }


def decide(user: Any, version: WarningVersion, *, author_may_approve: bool = False) -> Decision:
    """May ``user`` approve (or refuse) ``version``? See the module docstring."""
    regions = target_regions(version)
    rule = approver_rule_for(version)
    if rule is None:
        return Decision(
            False,
            WarningErrorCode.NO_APPROVAL_RULE,
            _("No approval rule covers this level and target; ask an administrator."),
        )
    refused = Decision(
        False,
        WarningErrorCode.APPROVAL_NOT_ALLOWED,
        _("The approval rule does not let you approve this warning."),
        rule,
    )
    if user is None or not getattr(user, "is_authenticated", False):
        return refused
    if version.created_by_id == user.pk and not rule.allow_self_approval and not author_may_approve:
        return Decision(
            False,
            WarningErrorCode.APPROVAL_NOT_ALLOWED,
            _("The author of a warning may not approve it."),
            rule,
        )
    if user.is_superuser:
        return Decision(True, rule=rule)
    if not all(can(user, Capability.WARNING_APPROVE, region.path) for region in regions):
        return refused
    max_depth = LEVEL_DEPTH[rule.approver_level]
    holders = Membership.objects.filter(
        user=user,
        is_active=True,
        region__is_active=True,
        role__in=ROLES_FOR[rule.approver_role],
        region__depth__lte=max_depth,
    ).values_list("region__path", flat=True)
    for path in holders:
        if all(region.path.startswith(path) for region in regions):
            return Decision(True, rule=rule)
    return refused


def can_approve(user: Any, version: WarningVersion, *, author_may_approve: bool = False) -> bool:
    return decide(user, version, author_may_approve=author_may_approve).allowed


def approval_rules_seed() -> int:
    """Create the rows of :data:`DEFAULT_RULES` that are missing (existing rows, maybe
    edited by an administrator, are kept); returns how many were created. Migration
    ``0002`` seeds the same rows; this is for a database emptied since (tests)."""
    created = 0
    for (level, target_level), (role, approver_level) in DEFAULT_RULES.items():
        _rule, made = ApprovalRule.objects.get_or_create(
            level=level,
            target_level=target_level,
            defaults={"approver_role": role, "approver_level": approver_level},
        )
        created += int(made)
    return created
