"""Database work of the socket layer, off the process's one thread-sensitive thread.

``database_sync_to_async`` is thread-sensitive: every such call of an ASGI process
queues for ONE thread. Each socket of a reconnect storm authenticates (one read) and
subscribes (a few primary-key reads), so thousands of phones coming back at once would
re-subscribe one query at a time. :func:`in_pool` runs the call in the event loop's
thread pool instead and closes the thread's connection (back to the psycopg pool) after
every call, so no pool thread keeps one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def in_pool(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)
