"""Cache invalidation only (conventions, Layers): a policy or ladder edit reaches every process."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.sla.models import SlaLadderStep, SlaPolicy
from apps.sla.policies import policies_invalidate


@receiver(post_save, sender=SlaPolicy, dispatch_uid="sla_policy_saved")
@receiver(post_delete, sender=SlaPolicy, dispatch_uid="sla_policy_deleted")
@receiver(post_save, sender=SlaLadderStep, dispatch_uid="sla_step_saved")
@receiver(post_delete, sender=SlaLadderStep, dispatch_uid="sla_step_deleted")
def policy_changed(**kwargs: Any) -> None:
    policies_invalidate()
