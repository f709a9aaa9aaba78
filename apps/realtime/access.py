"""Who may subscribe to which stream. Every check runs on each subscribe, never cached.

- ``user.<id>``: only your own id.
- ``region.<code>``: a region inside your scope (``scope_for``: the subtrees of your
  memberships; a 新城 operator may subscribe to the 新城 and anything below it).
- ``incident.<id>`` and ``report.<id>``: decided by the apps that own incidents, teams
  and reports, which sit *above* realtime in the dependency layers. They plug their rule
  in through ``REALTIME_STREAM_AUTHORIZERS`` (``{kind: "dotted.path"}``), the way
  ``SMS_BACKEND`` or ``DISPATCH_ROUTING_PROVIDER`` are plugged in: realtime never imports
  them. An authorizer is ``(user, key, token) -> key | None``: the key of the stream the
  user may have (for ``report`` it resolves a tracking token to the report id), or
  ``None`` for "no" - unknown and forbidden look the same, so ids cannot be probed.

The scope is re-resolved on every subscribe from a freshly read user row: a socket open
for hours must not keep a region its user lost (or a user who was deactivated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from apps.core.scoping import scope_for
from apps.realtime.streams import StreamKind
from apps.regions.models import Region

StreamAuthorizer = Callable[[Any, str | None, str | None], str | None]

# Kinds an anonymous socket (a citizen following a report by its token) may subscribe to.
ANONYMOUS_KINDS = frozenset({StreamKind.REPORT})


def fresh_user(user_id: int) -> Any | None:
    """The user re-read from the database; ``None`` if gone or deactivated."""
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def _own_user(user: Any, key: str | None, token: str | None) -> str | None:
    if user is None or key is None or token is not None:
        return None
    return key if str(user.pk) == key else None


def _region_in_scope(user: Any, key: str | None, token: str | None) -> str | None:
    if user is None or key is None or token is not None:
        return None
    path = Region.objects.filter(code=key).values_list("path", flat=True).first()
    return key if path is not None and scope_for(user).covers(path) else None


def authorizer(kind: StreamKind) -> StreamAuthorizer | None:
    """The rule of ``kind``: built in for ``user`` and ``region``, plugged in otherwise
    (``None`` if nothing is configured: nobody may subscribe)."""
    if kind == StreamKind.USER:
        return _own_user
    if kind == StreamKind.REGION:
        return _region_in_scope
    path = dict(getattr(settings, "REALTIME_STREAM_AUTHORIZERS", {})).get(str(kind))
    return import_string(path) if path else None


def allowed_key(kind: StreamKind, *, user: Any, key: str | None, token: str | None) -> str | None:
    """The key of the ``kind`` stream ``user`` (``None``: anonymous) may subscribe to."""
    if user is None and kind not in ANONYMOUS_KINDS:
        return None
    rule = authorizer(kind)
    return rule(user, key, token) if rule is not None else None
