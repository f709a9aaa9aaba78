from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EarlyWarningsConfig(AppConfig):
    name = "apps.early_warnings"
    label = "early_warnings"
    verbose_name = _("Early warnings")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions

        # Operators and commanders read warnings and keep the roster; administrators
        # also edit the approval rules. Composition and approval run through the
        # services (docs/early-warnings.md).
        command = {
            ("early_warnings", "view_warningchain"),
            ("early_warnings", "view_warningversion"),
            ("early_warnings", "view_warningtimelineentry"),
            ("early_warnings", "view_acknowledgement"),
            ("early_warnings", "view_approvalrule"),
            ("early_warnings", "view_responsibleperson"),
            ("early_warnings", "add_responsibleperson"),
            ("early_warnings", "change_responsibleperson"),
        }
        register_role_permissions(Role.OPERATOR, command)
        register_role_permissions(Role.COMMANDER, command)
        register_role_permissions(
            Role.DEPARTMENT_LIAISON,
            {
                ("early_warnings", "view_warningchain"),
                ("early_warnings", "view_warningversion"),
            },
        )
        register_role_permissions(Role.ADMIN, {("early_warnings", "*")})

        # How the SLA engine times and escalates 叫应 (apps.sla imports nothing of ours).
        from apps.early_warnings import escalation

        escalation.register()
