"""Every hook into firebase-admin's internals, in one place, pinned to 7.7.x.

The rest of the code uses firebase-admin's public API only (``messaging.send_each``,
``messaging.send``, the message classes). Three things need more than that, and they
live here so an upgrade has one file to re-check:

1. **The endpoint override** (tests and dev only, ``FCM_ENDPOINT_URL``): the SDK has no
   emulator support for messaging; ``_MessagingService`` formats its FCM URL once in
   ``__init__`` (``self._fcm_url``), so we replace that attribute on our own App's
   service instance (never the class constant, which every App shares).
2. **No status retries inside the SDK**: 7.7 mounts an HTTP adapter that retries 500/503
   up to four times with backoff before returning. Our outbox retries durably with
   jitter (``apps.notifications.delivery``); SDK retries on top would hold the row in
   ``sending`` for seconds per message and multiply attempts (4 x ours) while hiding them
   from the outbox. One retry of a dropped connection or read stays, as in the SDK.
3. **``Message.token``**: 7.5 deprecated it in favour of ``Message.fid`` (Firebase
   installation IDs). Our app registers FCM registration tokens (``Device.token``),
   which FCM still accepts; the DeprecationWarning is silenced here until the app moves
   to FID registration (then ``Device`` needs to say which kind of id it holds).

Building the App itself is public API (``initialize_app`` with a ``Certificate``), one
named App per configuration so settings changes (tests) never reuse a stale one.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import firebase_admin
import requests.adapters
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from firebase_admin import credentials, messaging
from urllib3.util import retry

SUPPORTED_VERSION = (7, 7)
FCM_HOST = "https://fcm.googleapis.com"

_lock = threading.Lock()
_apps: dict[FcmConfig, firebase_admin.App] = {}


def installed_version() -> tuple[int, ...]:
    return tuple(int(part) for part in firebase_admin.__version__.split(".")[:2])


def check_version() -> None:
    """Refuse to run against a firebase-admin whose internals we have not checked."""
    if installed_version() != SUPPORTED_VERSION:
        raise ImproperlyConfigured(
            f"apps.notifications.backends.firebase_adapter supports firebase-admin "
            f"{SUPPORTED_VERSION[0]}.{SUPPORTED_VERSION[1]}.x, found {firebase_admin.__version__}: "
            "re-check the hooks in this module (FCM URL, retry adapter, Message.token)."
        )


@dataclass(frozen=True)
class FcmConfig:
    credentials_file: str
    project_id: str = ""
    endpoint_url: str = ""  # tests/dev only: a fake FCM HTTP v1 server
    timeout: float = 10.0

    @classmethod
    def from_settings(cls) -> FcmConfig:
        path = settings.FCM_CREDENTIALS_FILE
        if not path:
            raise ImproperlyConfigured(
                "NOTIFICATIONS_PUSH_BACKEND is FCM but FCM_CREDENTIALS_FILE is not set."
            )
        return cls(
            credentials_file=str(path),
            project_id=settings.FCM_PROJECT_ID,
            endpoint_url=settings.FCM_ENDPOINT_URL.rstrip("/"),
            timeout=float(settings.FCM_HTTP_TIMEOUT),
        )


def fcm_app(config: FcmConfig) -> firebase_admin.App:
    """The firebase-admin App of ``config``, built once per process and configuration."""
    with _lock:
        app = _apps.get(config)
        if app is None:
            check_version()
            app = _build_app(config)
            _apps[config] = app
        return app


def forget_apps() -> None:
    """Delete the Apps built so far (tests switching fake servers)."""
    with _lock:
        for app in _apps.values():
            firebase_admin.delete_app(app)
        _apps.clear()


def token_message(**kwargs: Any) -> messaging.Message:
    """``messaging.Message(token=...)`` without the 7.5+ DeprecationWarning (see 3.)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Message.token is deprecated", DeprecationWarning)
        return messaging.Message(**kwargs)


def _build_app(config: FcmConfig) -> firebase_admin.App:
    try:
        credential = credentials.Certificate(config.credentials_file)
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"FCM_CREDENTIALS_FILE is not usable: {exc}") from exc
    options: dict[str, Any] = {"httpTimeout": config.timeout}
    if config.project_id:
        options["projectId"] = config.project_id
    name = "xems-" + hashlib.sha256(repr(config).encode()).hexdigest()[:16]
    app = firebase_admin.initialize_app(credential, options=options, name=name)
    _prepare_messaging(app, config)
    return app


def _prepare_messaging(app: firebase_admin.App, config: FcmConfig) -> None:
    """Hooks 1 and 2 on the App's (cached) messaging service."""
    service = messaging._get_messaging_service(app)
    no_status_retries = requests.adapters.HTTPAdapter(
        pool_connections=10,
        pool_maxsize=100,
        max_retries=retry.Retry(
            connect=1, read=1, status=0, raise_on_status=False, allowed_methods=None
        ),
    )
    session = service._client.session
    session.mount(FCM_HOST, no_status_retries)
    if config.endpoint_url:
        project = app.project_id
        service._fcm_url = f"{config.endpoint_url}/v1/projects/{project}/messages:send"
        session.mount(config.endpoint_url, no_status_retries)
