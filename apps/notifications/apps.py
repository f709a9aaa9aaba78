from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from apps.accounts.models import Role
        from apps.accounts.roles import register_role_permissions
        from apps.notifications import checks  # noqa: F401 - registers the FCM settings check

        # The command centre reads the outbox (was the task pushed? did the SMS go?);
        # administrators also tune people's preferences.
        read = {
            ("notifications", "view_notification"),
            ("notifications", "view_notificationpreference"),
        }
        register_role_permissions(Role.OPERATOR, read)
        register_role_permissions(Role.COMMANDER, read)
        register_role_permissions(Role.ADMIN, {("notifications", "*")})
