"""System checks of the core app, run by ``manage.py check`` (``--deploy`` at rollout)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def trusted_proxies_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Production always runs behind the router: with no trusted proxy every citizen is
    counted as the router's address, one rate-limit bucket (SOS included) for the city."""
    if settings.TRUSTED_PROXIES:
        return []
    return [
        checks.Warning(
            "TRUSTED_PROXIES is empty: behind a reverse proxy every client shares the "
            "proxy's address and so one per-address rate limit.",
            hint="List the router's address (and a TLS load balancer's) in TRUSTED_PROXIES.",
            id="core.W001",
        )
    ]
