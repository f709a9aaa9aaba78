"""Production: secrets are required, HTTPS enforced. Passes ``manage.py check --deploy``."""

from django.core.exceptions import ImproperlyConfigured

from xixian_ems.settings.base import *
from xixian_ems.settings.base import SIMPLE_JWT, env, env_secret

DEBUG = False
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a random value of 50+ chars.")
SIMPLE_JWT = {**SIMPLE_JWT, "SIGNING_KEY": env_secret("JWT_SIGNING_KEY", SECRET_KEY)}
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# The router (docker/nginx.conf) serves photos from its internal /protected-media/
# location once attachments/{id}/ allowed the request; set it empty to let Django stream
# them (e.g. object storage, or no router in front).
MEDIA_ACCEL_REDIRECT = env.str("DJANGO_MEDIA_ACCEL_REDIRECT", default="/protected-media/")
