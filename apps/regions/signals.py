"""Signals: cache invalidation only (conventions, Layers)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.regions import geo
from apps.regions.models import Region


@receiver(post_save, sender=Region, dispatch_uid="regions_street_index_saved")
@receiver(post_delete, sender=Region, dispatch_uid="regions_street_index_deleted")
def region_changed(sender: type[Region], instance: Region, **kwargs: Any) -> None:
    """A saved or deleted region may move a street, its centre or the area boundary."""
    geo.street_index_invalidate()
