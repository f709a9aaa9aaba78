"""Base settings: everything lives here and is driven by the environment (conventions R13).

``local``, ``test`` and ``production`` override a handful of keys. Every variable read
here is listed in ``.env.example``. With no environment at all the project runs on the
embedded default: SQLite, in-memory channel layer, local-memory cache and kombu's
filesystem transport as the Celery broker.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from import_export.formats import base_formats

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("XEMS_VAR_DIR", str(BASE_DIR / "var")))

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        return Path(file_path).read_text(encoding="utf-8").strip()
    return env.str(name, default=default)


# --- Core -----------------------------------------------------------------------------
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "insecure-local-only-key-change-me-0123456789abcdef")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The command centre's admin pages first, then the admin theme (django-unfold), then
    # Django's admin: templates are looked up in this order (docs/admin.md).
    "apps.console",
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "corsheaders",
    "csp",
    "import_export",
    "apps.core",
    "apps.audit",
    "apps.regions",
    "apps.accounts",
    "apps.realtime",
    "apps.notifications",
    "apps.sla",
    "apps.incidents",
    "apps.dispatch",
    "apps.early_warnings",
    "apps.open311",
    "apps.analytics",
]

MIDDLEWARE = [
    # First: refuses NUL in paths and queries; no exception leaves a request unfinished.
    "apps.core.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves admin and API-doc assets from our own process: no CDN at run time.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    # The admin theme needs a wider policy on /admin/ only (apps/console/middleware.py).
    "apps.console.middleware.AdminThemeCspMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Writes and personal-data reads, after the response (apps.audit.recorder).
    "apps.audit.middleware.AuditMiddleware",
    # Admin sessions end when idle and after a shift (apps.accounts.sessions).
    "apps.accounts.sessions.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out password login into its 429 page (apps.accounts.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "xixian_ems.urls"
WSGI_APPLICATION = "xixian_ems.wsgi.application"
ASGI_APPLICATION = "xixian_ems.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Under ASGI a persistent connection is bound to the thread that opened it and leaks
# across the sync_to_async thread pool, so CONN_MAX_AGE stays 0 and PostgreSQL gets a
# psycopg 3 connection pool instead (Django >= 5.1 "pool" option).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'xixian_ems.sqlite3'}")
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["ATOMIC_REQUESTS"] = False  # services own their transactions (R2)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default runs web, worker and beat as separate processes on one file:
    # WAL lets readers run beside the writer, IMMEDIATE avoids upgrade deadlocks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

# --- Redis: cache, channel layer, Celery broker ------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_CACHE_MAX_CONNECTIONS = env.int("REDIS_CACHE_MAX_CONNECTIONS", default=50)
REDIS_CHANNEL_MAX_CONNECTIONS = env.int("REDIS_CHANNEL_MAX_CONNECTIONS", default=200)
# Redis pub/sub channels are server-wide (not per db): deployments sharing one Redis need
# their own prefix.
CHANNEL_LAYER_PREFIX = env.str("CHANNEL_LAYER_PREFIX", default="asgi")
CELERY_BROKER_POOL_LIMIT = env.int("CELERY_BROKER_POOL_LIMIT", default=10)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "xems",
            "OPTIONS": {"max_connections": REDIS_CACHE_MAX_CONNECTIONS},
        }
    }
    # The pub/sub layer: measured far lower tail latency than the list-based core layer
    # for targeted sends (bench/bench_realtime.py); the realtime app's subclass decodes a
    # group message once per process instead of once per socket (apps.realtime.layers).
    # Pool size is explicit, not the asyncio default of 100 that failed handshakes in a
    # reconnect storm.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "apps.realtime.layers.EventPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "max_connections": REDIS_CHANNEL_MAX_CONNECTIONS}],
                "prefix": CHANNEL_LAYER_PREFIX,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker: a folder queue shared by the web, worker and beat processes.
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"max_connections": CELERY_BROKER_POOL_LIMIT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "core-heartbeat": {"task": "apps.core.tasks.heartbeat", "schedule": 60.0},
    "core-purge-idempotency-keys": {
        "task": "apps.core.tasks.purge_idempotency_keys",
        "schedule": 3600.0,
    },
    "audit-prune": {"task": "apps.audit.tasks.audit_prune", "schedule": 86400.0},
    "accounts-otp-failure-counters-purge": {
        "task": "apps.accounts.tasks.otp_failure_counters_purge",
        "schedule": 3600.0,
    },
    "dispatch-tracks-downsample": {
        "task": "apps.dispatch.tasks.tracks_downsample_old",
        "schedule": 900.0,
    },
    "dispatch-tracks-purge": {"task": "apps.dispatch.tasks.tracks_purge_old", "schedule": 3600.0},
    "realtime-events-purge": {"task": "apps.realtime.tasks.events_purge_old", "schedule": 3600.0},
    # The outbox's durability: lost broker messages, killed workers, SMS fallbacks.
    "notifications-requeue": {
        "task": "apps.notifications.tasks.notifications_requeue",
        "schedule": 15.0,
    },
    "notifications-receipts": {
        "task": "apps.notifications.tasks.notifications_receipts_sweep",
        "schedule": 15.0,
    },
}
CELERY_TASK_ALWAYS_EAGER = False
# One queue name per deployment sharing a Redis (and per integration test: a worker
# started by one test must not take another test's tasks).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Password logins (admin form and API auth/token/) pass django-axes first: a username is
# locked from one client address after LOGIN_FAILURE_LIMIT wrong passwords, never from
# every address (apps.accounts.lockout).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "apps.core.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # our own log lines; axes would log every attempt at INFO

# Admin sessions: idle timeout and absolute lifetime (apps.accounts.sessions). The cookie
# lives no longer than the session may.
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=1800)
SESSION_MAX_AGE_SECONDS = env.int("SESSION_MAX_AGE_SECONDS", default=43200)
SESSION_COOKIE_AGE = SESSION_MAX_AGE_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_secret("JWT_SIGNING_KEY", SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
}

# One-time login codes for phone users (citizens, responders). Guessing limits per
# (phone, address) and per phone, with doubling waits instead of a lock: apps.accounts.otp.
OTP_LENGTH = 6
OTP_TTL_SECONDS = env.int("OTP_TTL_SECONDS", default=300)
OTP_MAX_ATTEMPTS = env.int("OTP_MAX_ATTEMPTS", default=5)  # wrong guesses burn one code
OTP_RESEND_SECONDS = env.int("OTP_RESEND_SECONDS", default=60)
OTP_ADDRESS_FREE_FAILURES = env.int("OTP_ADDRESS_FREE_FAILURES", default=5)
OTP_PHONE_FREE_FAILURES = env.int("OTP_PHONE_FREE_FAILURES", default=50)
OTP_BACKOFF_BASE_SECONDS = env.int("OTP_BACKOFF_BASE_SECONDS", default=30)
OTP_BACKOFF_MAX_SECONDS = env.int("OTP_BACKOFF_MAX_SECONDS", default=3600)
OTP_FAILURE_WINDOW_SECONDS = env.int("OTP_FAILURE_WINDOW_SECONDS", default=86400)
if OTP_BACKOFF_MAX_SECONDS >= OTP_FAILURE_WINDOW_SECONDS:
    # A counter must not forget while its holder is still waiting (the bound's premise).
    raise ImproperlyConfigured("OTP_BACKOFF_MAX_SECONDS must be below OTP_FAILURE_WINDOW_SECONDS")
SMS_BACKEND = env.str("SMS_BACKEND", default="apps.core.sms.ConsoleSmsBackend")

# --- Reverse proxies ------------------------------------------------------------------
# Our own proxies (addresses or CIDR networks): the router in front of web and realtime,
# and the TLS load balancer in front of the router, as the next hop sees each. Only they
# may say who the client is (X-Forwarded-For); every per-address rate limit counts the
# address apps.core.client_address derives from this list. Empty: no proxy, the peer is
# the client. A typo stops the process here instead of silently trusting nobody.
TRUSTED_PROXIES = [p.strip() for p in env.list("TRUSTED_PROXIES", default=[]) if p.strip()]
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_exc}") from None

# --- Browser security headers ----------------------------------------------------------
# HSTS and secure cookies are production's (settings/production.py); these hold everywhere.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): the admin runs no inline script or style, so
# everything comes from our own origin; the API docs pages relax it for themselves
# (xixian_ems/urls.py). JSON answers carry it too (harmless, and no page can frame them).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# CORS is closed: the mobile apps are no browsers and the admin is same-origin, so no
# cross-origin page may call the API unless its origin is listed here (e.g. a web board
# on another host). Bearer tokens only: cookies are never allowed cross-origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api|open311)/.*$"
CORS_ALLOW_CREDENTIALS = False
if CORS_ALLOWED_ORIGINS:
    # Only then: closed, the API sends no CORS header at all (not even "Vary: Origin"),
    # exactly like the fast intake path, which answers before any middleware.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("csp.middleware.CSPMiddleware"), "corsheaders.middleware.CorsMiddleware"
    )

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    # Hostile input refused before any view (apps/core/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.SafeJSONParser",
        "apps.core.api.parsers.SafeFormParser",
        "apps.core.api.parsers.SafeMultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "apps.core.api.renderers.SafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "otp_request_ip": env.str("THROTTLE_OTP_REQUEST_IP", default="20/hour"),
        "otp_request_phone": env.str("THROTTLE_OTP_REQUEST_PHONE", default="5/hour"),
        "otp_verify_ip": env.str("THROTTLE_OTP_VERIFY_IP", default="60/hour"),
        "login": env.str("THROTTLE_LOGIN", default="30/hour"),
        "region_lookup": env.str("THROTTLE_REGION_LOOKUP", default="600/minute"),
        # Public intake. Per-IP is loose: carriers put many phones behind one address.
        "report_ip": env.str("THROTTLE_REPORT_IP", default="30/minute"),
        "report_device": env.str("THROTTLE_REPORT_DEVICE", default="10/minute"),
        "report_phone": env.str("THROTTLE_REPORT_PHONE", default="10/minute"),
        "sos_ip": env.str("THROTTLE_SOS_IP", default="120/minute"),
        "sos_device": env.str("THROTTLE_SOS_DEVICE", default="6/minute"),
        # Citizens' warning reads (anonymous allowed): per user, else per address.
        "warnings_public": env.str("THROTTLE_WARNINGS_PUBLIC", default="120/minute"),
    },
    # Never consulted: every throttle's get_ident is apps.core.client_address (see
    # TRUSTED_PROXIES). 0 keeps a DRF throttle that slipped past that from trusting a
    # forged X-Forwarded-For, which DRF's default (None) does.
    "NUM_PROXIES": 0,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "西咸应急通 Xixian Emergency Connect API",
    "DESCRIPTION": (
        "Emergency command-and-dispatch API of 陕西西咸新区. Errors use one envelope "
        "{code, message, extra}; mobile POSTs accept an Idempotency-Key header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # 400/401/404/415 from the layers every view shares (tests/fuzz checks them).
        "apps.core.api.schema.document_framework_errors",
    ],
    # Choice sets that share a field name ("status", "kind") get stable component names.
    "ENUM_NAME_OVERRIDES": {
        "RegionLevelEnum": "apps.regions.models.RegionLevel",
        "RegionKindEnum": "apps.regions.models.RegionKind",
        "RegionManagementEnum": "apps.regions.models.Management",
        "RegionConfidenceEnum": "apps.regions.models.Confidence",
        "RegionLocateMethodEnum": "apps.regions.selectors.LocateMethod",
        "IncidentStatusEnum": "apps.incidents.models.IncidentStatus",
        "IncidentEventKindEnum": "apps.incidents.models.IncidentEventKind",
        "ReportStatusEnum": "apps.incidents.models.ReportStatus",
        "PublicStatusEnum": "apps.incidents.models.PublicStatus",
        "ReportChannelEnum": "apps.incidents.models.Channel",
        "TeamStatusEnum": "apps.dispatch.models.TeamStatus",
        "TeamKindEnum": "apps.dispatch.models.TeamKind",
        "TaskStatusEnum": "apps.dispatch.models.TaskStatus",
        "DepartmentKindEnum": "apps.dispatch.models.DepartmentKind",
        "WarningStatusEnum": "apps.early_warnings.models.WarningStatus",
        "WarningLevelEnum": "apps.early_warnings.models.WarningLevel",
        "WarningTypeEnum": "apps.early_warnings.models.WarningType",
        "WarningMsgTypeEnum": "apps.early_warnings.models.MsgType",
        "WarningPersonRoleEnum": "apps.early_warnings.models.PersonRole",
        "WarningAckChannelEnum": "apps.early_warnings.models.AckChannel",
    },
}

# --- Internationalisation and time --------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"  # never served: uploads are citizens' photos (docs/roles.md, "Media")
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media"))
# Who sends a photo's bytes after attachments/{id}/ allowed it: empty, Django streams them;
# an internal location of the router (docker/nginx.conf: /protected-media/), Django answers
# with X-Accel-Redirect to it and nginx serves the file from MEDIA_ROOT.
MEDIA_ACCEL_REDIRECT = env.str("DJANGO_MEDIA_ACCEL_REDIRECT", default="")
# How long the signed photo links of a tracking answer (an anonymous reporter's) open the
# photo (apps.incidents.policies).
ATTACHMENTS_SIGNED_URL_SECONDS = 15 * 60

# --- Audit trail (apps.audit, SECURITY.md) ----------------------------------------------
# Entries older than this are pruned daily; never fewer than 180 days (等保 level 3, the
# Cybersecurity Law's six months of network logs).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
if AUDIT_RETENTION_DAYS < 180:
    raise ImproperlyConfigured("AUDIT_RETENTION_DAYS must be at least 180")

# --- Idempotency ------------------------------------------------------------------------
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=48)

# --- Regions --------------------------------------------------------------------------
# A point farther than this from every street centre (and outside every boundary) is
# outside the new area. The street centres are estimates (about ±3 km), hence the margin.
REGION_LOOKUP_MAX_DISTANCE_KM = env.float("REGION_LOOKUP_MAX_DISTANCE_KM", default=8.0)

# --- Incidents and citizen reports ------------------------------------------------------
INCIDENTS_SOS_CATEGORY_CODE = env.str("INCIDENTS_SOS_CATEGORY_CODE", default="O99")
INCIDENTS_REOPEN_WINDOW_DAYS = env.int("INCIDENTS_REOPEN_WINDOW_DAYS", default=7)
INCIDENTS_MAX_PHOTOS = env.int("INCIDENTS_MAX_PHOTOS", default=9)
INCIDENTS_MAX_PHOTO_BYTES = env.int("INCIDENTS_MAX_PHOTO_BYTES", default=10 * 1024 * 1024)
INCIDENTS_MAX_PHOTO_PIXELS = env.int("INCIDENTS_MAX_PHOTO_PIXELS", default=100_000_000)
INCIDENTS_PHOTO_MAX_EDGE_PX = env.int("INCIDENTS_PHOTO_MAX_EDGE_PX", default=4096)
INCIDENTS_DUPLICATE_RADIUS_M = env.int("INCIDENTS_DUPLICATE_RADIUS_M", default=500)
INCIDENTS_DUPLICATE_WINDOW_HOURS = env.int("INCIDENTS_DUPLICATE_WINDOW_HOURS", default=24)
# The fast intake path (apps.incidents.intake): PostgreSQL only; group commit per process.
INCIDENTS_FAST_INTAKE = env.bool("INCIDENTS_FAST_INTAKE", default=True)
INCIDENTS_INTAKE_BATCH_MAX = env.int("INCIDENTS_INTAKE_BATCH_MAX", default=64)
INCIDENTS_INTAKE_BATCH_WAIT_MS = env.float("INCIDENTS_INTAKE_BATCH_WAIT_MS", default=5.0)
INCIDENTS_INTAKE_QUEUE_MAX = env.int("INCIDENTS_INTAKE_QUEUE_MAX", default=4096)
# Uploaded files do not count against DATA_UPLOAD_MAX_MEMORY_SIZE (form fields only) and
# stream to temporary files above FILE_UPLOAD_MAX_MEMORY_SIZE, so Django's defaults hold
# for nine 10 MB photos; the reverse proxy needs a body limit of about 100 MB.

# --- Dispatch: recommendation ------------------------------------------------------------
# Great-circle ETA: distance x road factor / speed. Keys are team kinds, optionally
# "kind@region-code" for a region-specific speed; "default" for the rest.
DISPATCH_SPEED_PROFILE_KMH = env.json(
    "DISPATCH_SPEED_PROFILE_KMH",
    default={"default": 30, "fire": 40, "medical": 40, "volunteer": 20},
)
DISPATCH_ROAD_FACTOR = env.float("DISPATCH_ROAD_FACTOR", default=1.3)
DISPATCH_ROUTING_PROVIDER = env.str(
    "DISPATCH_ROUTING_PROVIDER", default="apps.dispatch.routing.GreatCircleProvider"
)
DISPATCH_RECOMMEND_RADII_KM = env.list(
    "DISPATCH_RECOMMEND_RADII_KM", cast=float, default=[2, 4, 8, 16, 32]
)

# --- Dispatch: positions and tracks ------------------------------------------------------
DISPATCH_TRACK_BUCKET_MINUTES = env.int("DISPATCH_TRACK_BUCKET_MINUTES", default=10)
DISPATCH_TRACK_RETENTION_DAYS = env.int("DISPATCH_TRACK_RETENTION_DAYS", default=30)
DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS = env.int("DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS", default=24)
DISPATCH_TRACK_DOWNSAMPLE_SECONDS = env.int("DISPATCH_TRACK_DOWNSAMPLE_SECONDS", default=30)
DISPATCH_TRACK_REPLAY_MAX_HOURS = env.int("DISPATCH_TRACK_REPLAY_MAX_HOURS", default=24)
DISPATCH_PING_MAX_BATCH = env.int("DISPATCH_PING_MAX_BATCH", default=500)
DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS = env.int(
    "DISPATCH_PING_MAX_FUTURE_SKEW_SECONDS", default=120
)

# --- Notifications: push outbox, FCM, SMS fallback --------------------------------------
# console (logs, embedded default) | locmem (tests) | FCM through firebase-admin:
# apps.notifications.backends.fcm.FcmPushBackend
NOTIFICATIONS_PUSH_BACKEND = env.str(
    "NOTIFICATIONS_PUSH_BACKEND", default="apps.notifications.backends.ConsolePushBackend"
)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
# Rows per Celery message when many are delivered as a batch (a warning's persons, a batch
# of SOS alarms): enough to send in parallel, small enough to spread over the workers.
NOTIFICATIONS_DELIVERY_BATCH = env.int("NOTIFICATIONS_DELIVERY_BATCH", default=100)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=10.0)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=600.0)
# A task push not acknowledged by the app within this long → one SMS to the responder.
NOTIFICATIONS_TASK_ACK_SECONDS = env.int("NOTIFICATIONS_TASK_ACK_SECONDS", default=60)
# How long FCM keeps a message for an offline phone: a task is stale sooner than a warning.
NOTIFICATIONS_TASK_TTL_SECONDS = env.int("NOTIFICATIONS_TASK_TTL_SECONDS", default=900)
NOTIFICATIONS_PUSH_TTL_SECONDS = env.int("NOTIFICATIONS_PUSH_TTL_SECONDS", default=86400)
NOTIFICATIONS_TASK_SOUND = env.str("NOTIFICATIONS_TASK_SOUND", default="default")
FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE", default="")  # service-account JSON
FCM_PROJECT_ID = env.str("FCM_PROJECT_ID", default="")  # default: the credentials' project
FCM_HTTP_TIMEOUT = env.float("FCM_HTTP_TIMEOUT", default=10.0)
FCM_ENDPOINT_URL = env.str("FCM_ENDPOINT_URL", default="")  # tests/dev only: a fake FCM server

# --- Realtime: domain events and WebSocket streams (docs/realtime.md) --------------------
EVENTS_RETENTION_HOURS = env.int("EVENTS_RETENTION_HOURS", default=72)
# A client further behind than this many events on a stream reloads it via REST (resync).
EVENTS_REPLAY_MAX = env.int("EVENTS_REPLAY_MAX", default=1000)
EVENTS_MAX_STREAMS_PER_SOCKET = env.int("EVENTS_MAX_STREAMS_PER_SOCKET", default=50)
# Every so often each ASGI process compares its sockets' streams with the committed heads
# (one query) and repairs what pub/sub lost (apps.realtime.heads); 0 turns it off.
EVENTS_HEAD_CHECK_SECONDS = env.float("EVENTS_HEAD_CHECK_SECONDS", default=5.0)
# The sync publisher's Redis pool per process (request threads wait for a connection).
EVENTS_PUBLISH_MAX_CONNECTIONS = env.int("EVENTS_PUBLISH_MAX_CONNECTIONS", default=20)
EVENTS_PUBLISH_TIMEOUT_SECONDS = env.float("EVENTS_PUBLISH_TIMEOUT_SECONDS", default=1.0)
# Refuse event payloads that are not plain JSON (tests); production logs and encodes them.
EVENTS_PAYLOAD_STRICT = env.bool("EVENTS_PAYLOAD_STRICT", default=False)
# Who may subscribe to incident and report streams: decided by the apps above realtime.
REALTIME_STREAM_AUTHORIZERS = {
    "incident": "apps.dispatch.realtime.incident_stream_key",
    "report": "apps.incidents.realtime.report_stream_key",
}

# --- SLA clocks and escalation (apps.sla) --------------------------------------------------
# Beat sends one sweep per interval to a worker: an escalation runs at most this late, plus
# the sweep's own work (bench/bench_sla.py measures it). A sweep queued while no worker ran
# expires (the next one does the same work from the database). SLA_SWEEP_QUEUE lets a
# deployment give the sweeper a worker of its own (celery worker -Q celery,sla).
SLA_SWEEP_INTERVAL_SECONDS = env.float("SLA_SWEEP_INTERVAL_SECONDS", default=0.5)
SLA_SWEEP_QUEUE = env.str("SLA_SWEEP_QUEUE", default="celery")
SLA_SWEEP_BATCH_SIZE = env.int("SLA_SWEEP_BATCH_SIZE", default=200)
SLA_SWEEP_TIME_BUDGET_SECONDS = env.float("SLA_SWEEP_TIME_BUDGET_SECONDS", default=10.0)
SLA_POLICY_CACHE_SECONDS = env.int("SLA_POLICY_CACHE_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["sla-sweep"] = {
    "task": "apps.sla.tasks.sla_sweep",
    "schedule": SLA_SWEEP_INTERVAL_SECONDS,
    "options": {"queue": SLA_SWEEP_QUEUE, "expires": max(2.0, 4 * SLA_SWEEP_INTERVAL_SECONDS)},
}

# --- Early warnings (apps.early_warnings, docs/early-warnings.md) --------------------------
# CAP sender of the warnings issued here, and the prefix of their identifiers
# (CN-XIXIAN-EW-<yyyymmdd>-<chain>-v<n>).
EARLY_WARNINGS_SENDER = env.str("EARLY_WARNINGS_SENDER", default="xixian-ems@xixian.gov.cn")
EARLY_WARNINGS_IDENTIFIER_PREFIX = env.str(
    "EARLY_WARNINGS_IDENTIFIER_PREFIX", default="CN-XIXIAN-EW"
)
# Besides the roster, the active duty officers, team leaders and grid workers of a target
# subtree answer (叫应) its warnings.
EARLY_WARNINGS_ROLE_HOLDERS_ANSWER = env.bool("EARLY_WARNINGS_ROLE_HOLDERS_ANSWER", default=True)
# How far back the citizen's warning history reaches.
EARLY_WARNINGS_HISTORY_DAYS = env.int("EARLY_WARNINGS_HISTORY_DAYS", default=30)
# CAP 1.2 (docs/cap.md): the senderName of the warnings issued here, and how long an
# imported message without <expires> stays in force.
EARLY_WARNINGS_SENDER_NAME = env.str("EARLY_WARNINGS_SENDER_NAME", default="陕西西咸新区应急管理局")
EARLY_WARNINGS_IMPORT_DEFAULT_HOURS = env.int("EARLY_WARNINGS_IMPORT_DEFAULT_HOURS", default=24)
CELERY_BEAT_SCHEDULE["early-warnings-expire"] = {
    "task": "apps.early_warnings.tasks.warnings_expire_due",
    "schedule": env.float("EARLY_WARNINGS_EXPIRE_INTERVAL_SECONDS", default=15.0),
}

# --- Open311 GeoReport v2 ---------------------------------------------------------------
OPEN311_JURISDICTION_ID = env.str("OPEN311_JURISDICTION_ID", default="xixianxinqu.gov.cn")
# Citizens' free text can carry names and addresses: off unless the operator opts in.
OPEN311_PUBLISH_DESCRIPTIONS = env.bool("OPEN311_PUBLISH_DESCRIPTIONS", default=False)
OPEN311_POST_RATE = env.str("OPEN311_POST_RATE", default="60/m")
OPEN311_MAX_REQUESTS = env.int("OPEN311_MAX_REQUESTS", default=1000)
OPEN311_CONTACT = env.str("OPEN311_CONTACT", default="")
OPEN311_KEY_SERVICE = env.str("OPEN311_KEY_SERVICE", default="")
OPEN311_ENDPOINT_TYPE = env.str("OPEN311_ENDPOINT_TYPE", default="")  # test|production

# --- 一张图, the command centre's map (apps/console/map.py, docs/admin.md "Map") ---------
# Base tiles are optional. Without a URL the map draws regions, incidents and teams on a
# plain background and loads nothing from outside; with one, its origins (one per {s}
# subdomain) are allowed in that page's img-src only. CRS "wgs84": tiles without offset
# (Tianditu/CGCS2000, OSM); "gcj02": Amap/Gaode or Tencent tiles, on which the page shifts
# every stored WGS84 coordinate to GCJ-02 for display.
CONSOLE_MAP_TILES_URL = env.str("CONSOLE_MAP_TILES_URL", default="")
CONSOLE_MAP_TILES_LABELS_URL = env.str("CONSOLE_MAP_TILES_LABELS_URL", default="")
CONSOLE_MAP_TILES_ATTRIBUTION = env.str("CONSOLE_MAP_TILES_ATTRIBUTION", default="")
CONSOLE_MAP_TILES_SUBDOMAINS = [
    s.strip() for s in env.list("CONSOLE_MAP_TILES_SUBDOMAINS", default=[]) if s.strip()
]
CONSOLE_MAP_TILES_MAX_ZOOM = env.int("CONSOLE_MAP_TILES_MAX_ZOOM", default=18)
CONSOLE_MAP_TILES_CRS = env.str("CONSOLE_MAP_TILES_CRS", default="wgs84")
if CONSOLE_MAP_TILES_CRS not in ("wgs84", "gcj02"):
    raise ImproperlyConfigured("CONSOLE_MAP_TILES_CRS must be wgs84 or gcj02")
# The site sends no Referer to other origins (SECURE_REFERRER_POLICY); a tile server that
# checks it (a key bound to your domain) needs e.g. "strict-origin-when-cross-origin".
CONSOLE_MAP_TILES_REFERRER_POLICY = env.str("CONSOLE_MAP_TILES_REFERRER_POLICY", default="")

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Admin: the command centre (docs/admin.md) -------------------------------------------
# django-unfold: its templates, fonts and scripts are served from our own static files;
# the sidebar is built per request by apps.console.navigation (each entry behind the
# permission of the page it opens), the index is the dashboard (apps.console.dashboard).
UNFOLD = {
    "SITE_TITLE": _("Xixian Emergency Connect"),
    "SITE_HEADER": _("Xixian Emergency Connect"),
    "SITE_SUBHEADER": _("Command centre"),
    "SITE_SYMBOL": "emergency",
    "SITE_URL": "/admin/",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_LANGUAGES": True,
    "SHOW_BACK_BUTTON": True,
    "DASHBOARD_CALLBACK": "apps.console.dashboard.dashboard_callback",
    "STYLES": ["apps.console.navigation.stylesheet"],
    "SCRIPTS": ["apps.console.navigation.script"],
    "COLORS": {
        # Emergency red (Tailwind's red scale); the greys stay unfold's.
        "primary": {
            "50": "oklch(97.1% .013 17.38)",
            "100": "oklch(93.6% .032 17.717)",
            "200": "oklch(88.5% .062 18.334)",
            "300": "oklch(80.8% .114 19.571)",
            "400": "oklch(70.4% .191 22.216)",
            "500": "oklch(63.7% .237 25.331)",
            "600": "oklch(57.7% .245 27.325)",
            "700": "oklch(50.5% .213 27.518)",
            "800": "oklch(44.4% .177 26.899)",
            "900": "oklch(39.6% .141 25.723)",
            "950": "oklch(25.8% .092 26.042)",
        },
    },
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": "apps.console.navigation.is_admin",
        "navigation": "apps.console.navigation.sidebar",
    },
}
# Exports (django-import-export): CSV and XLSX only, built in the request (lists are
# region-scoped and filtered, so they stay small); nothing is imported through the admin.
EXPORT_FORMATS = [base_formats.CSV, base_formats.XLSX]
IMPORT_FORMATS: list[type] = []
IMPORT_EXPORT_SKIP_ADMIN_LOG = True
# Staff log in through the admin only (the API takes tokens): after a login without a
# "next", land on the dashboard rather than Django's /accounts/profile/.
LOGIN_REDIRECT_URL = "admin:index"
LOGIN_URL = "admin:login"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
