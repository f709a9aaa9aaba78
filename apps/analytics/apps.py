from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "apps.analytics"
    label = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions

        # The KPI page of the admin is read-only and region-scoped: every command-centre
        # role may open it and sees the figures of its own subtrees only.
        view = {("analytics", "view_kpireport")}
        for role in (Role.OPERATOR, Role.COMMANDER, Role.DEPARTMENT_LIAISON, Role.ADMIN):
            register_role_permissions(role, view)
