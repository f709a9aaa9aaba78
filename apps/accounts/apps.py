from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from apps.accounts.roles import ensure_role_groups_after_migrate
        from apps.accounts.scoping import resolve_scope
        from apps.core.scoping import register_scope_resolver

        register_scope_resolver(resolve_scope)
        # Wiring, not domain behaviour: the role groups follow the permissions that
        # exist after each migrate. Django creates each app's permissions on that app's
        # own post_migrate, so the receiver acts on the last app's (every app's
        # permissions exist by then; see ensure_role_groups_after_migrate).
        post_migrate.connect(
            ensure_role_groups_after_migrate,
            dispatch_uid="accounts.ensure_role_groups",
        )
