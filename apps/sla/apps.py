from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlaConfig(AppConfig):
    name = "apps.sla"
    label = "sla"
    verbose_name = _("SLA and escalation")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions
        from apps.sla import signals  # noqa: F401 (connects the cache invalidation)

        # Operators and commanders follow the overdue board, pause and resume clocks
        # (admin actions need "change") and read policies and the escalation log;
        # administrators edit the policies.
        command = {
            ("sla", "view_slaclock"),
            ("sla", "change_slaclock"),
            ("sla", "view_slapause"),
            ("sla", "view_escalation"),
            ("sla", "view_slapolicy"),
            ("sla", "view_slaladderstep"),
        }
        register_role_permissions(Role.OPERATOR, command)
        register_role_permissions(Role.COMMANDER, command)
        register_role_permissions(Role.ADMIN, {("sla", "*")})
