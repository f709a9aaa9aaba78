from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The command centre in the admin: the incident page and every operator action
    (through the services, like the API), the navigation, the dashboard and exports."""

    name = "apps.console"
    label = "console"
    verbose_name = _("Command centre")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions

        # The pages of the duty desk (board, map) are for every command-centre role;
        # what each shows is region-scoped, and acting stays the services' and roles'.
        view = {("console", "view_dutydesk")}
        for role in (Role.OPERATOR, Role.COMMANDER, Role.DEPARTMENT_LIAISON, Role.ADMIN):
            register_role_permissions(role, view)

        # 一张图: the console's own layers, through the registry later apps use too.
        from apps.console.map_layers import register_console_layers

        register_console_layers()

        # Early warnings in force, coloured by level (apps/console/warning_layer.py).
        from apps.console.warning_layer import WARNING_LAYER
        from apps.regions import map_layers

        map_layers.register(WARNING_LAYER)
