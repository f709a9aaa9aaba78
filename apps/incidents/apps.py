from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"
    verbose_name = _("Incidents")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions
        from apps.incidents import signals  # noqa: F401 (connects the receivers)

        # Operators and commanders triage and command incidents in the admin; the
        # timeline is read-only for everyone (append-only).
        command = {
            ("incidents", "view_incident"),
            ("incidents", "change_incident"),
            ("incidents", "view_incidentevent"),
            ("incidents", "view_report"),
            ("incidents", "change_report"),
            ("incidents", "view_attachment"),
            ("incidents", "view_category"),
        }
        register_role_permissions(Role.OPERATOR, command)
        register_role_permissions(Role.COMMANDER, command)
        register_role_permissions(
            Role.DEPARTMENT_LIAISON,
            {("incidents", "view_incident"), ("incidents", "view_incidentevent")},
        )
        register_role_permissions(Role.ADMIN, {("incidents", "*")})

        # How the SLA engine locks, records on, supervises and raises incidents and
        # reports (apps.sla imports no app above it).
        from apps.incidents.services import sla as incident_sla

        incident_sla.register()
