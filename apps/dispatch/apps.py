from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DispatchConfig(AppConfig):
    name = "apps.dispatch"
    label = "dispatch"
    verbose_name = _("Dispatch")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions

        # Operators and commanders run teams and dispatch in the admin: they edit teams
        # (equipment, capabilities, out of service) and dispatch tasks, and look members,
        # shifts and departments up. Administrators manage everything of dispatch.
        command = {
            ("dispatch", "view_team"),
            ("dispatch", "change_team"),
            ("dispatch", "view_teammember"),
            ("dispatch", "view_shift"),
            ("dispatch", "view_department"),
            ("dispatch", "view_dispatchtask"),
            ("dispatch", "add_dispatchtask"),
            ("dispatch", "change_dispatchtask"),
        }
        register_role_permissions(Role.OPERATOR, command)
        register_role_permissions(Role.COMMANDER, command)
        register_role_permissions(Role.ADMIN, {("dispatch", "*")})

        # Registers the incident resolve guard (no resolving while tasks are live); it
        # must not depend on the admin module happening to import the services.
        from apps.dispatch.services import sla, tasks  # noqa: F401 (tasks: the guard)

        # How the SLA engine locks, records on and expires tasks, and who their (and
        # their incidents') assignees and team leaders are (apps.sla imports no app above).
        sla.sla_register()

        # Notifications ask whether a responder is on duty before muting a push; only
        # dispatch knows, and notifications must not import it (layers).
        from apps.dispatch.push import members_on_duty
        from apps.notifications.duty import register_on_duty_provider

        register_on_duty_provider(members_on_duty)

        # The reporter's contact and photos go to the incident's assigned team and its
        # command post too (apps.incidents.policies); only dispatch knows who they are.
        from apps.dispatch.policies import on_incident_assignment
        from apps.incidents.policies import register_assignment_check

        register_assignment_check(on_incident_assignment)
