from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from apps.accounts.scoping import resolve_scope
        from apps.core.scoping import register_scope_resolver

        register_scope_resolver(resolve_scope)
