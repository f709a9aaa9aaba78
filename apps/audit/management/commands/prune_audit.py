"""``manage.py prune_audit --older-than-days N``: drop audit entries older than N days."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.services import RETENTION_FLOOR_DAYS, RetentionTooShort, audit_prune


class Command(BaseCommand):
    help = (
        f"Delete audit entries older than N days (default AUDIT_RETENTION_DAYS); "
        f"refuses fewer than {RETENTION_FLOOR_DAYS}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        if days is None:
            days = settings.AUDIT_RETENTION_DAYS
        try:
            deleted = audit_prune(older_than_days=days)
        except RetentionTooShort as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"deleted {deleted} audit entries older than {days} days")
