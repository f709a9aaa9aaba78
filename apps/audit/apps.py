from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = _("Audit trail")

    def ready(self) -> None:
        from django.contrib.admin.models import LogEntry
        from django.db.models.signals import post_save

        from apps.audit.recorder import note_admin_log_entry

        # Wiring: the admin's own log entry names the object an admin write touched
        # (its id is known only after an add), so the request's audit row can carry it.
        post_save.connect(note_admin_log_entry, sender=LogEntry, dispatch_uid="audit.admin_log")
