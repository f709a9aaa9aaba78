"""Signals: cache invalidation only (conventions, Layers)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.incidents import catalogue
from apps.incidents.models import Category


@receiver(post_save, sender=Category, dispatch_uid="incidents_catalogue_saved")
@receiver(post_delete, sender=Category, dispatch_uid="incidents_catalogue_deleted")
def category_changed(sender: type[Category], instance: Category, **kwargs: Any) -> None:
    """A saved or deleted category changes what intake accepts and how it checks fields."""
    catalogue.catalogue_invalidate()
