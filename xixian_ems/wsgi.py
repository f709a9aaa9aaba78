"""WSGI entry point (REST only; WebSockets need the ASGI application)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xixian_ems.settings.local")

application = get_wsgi_application()

# Long-lived objects out of the collector's way (see xixian_ems/asgi.py).
gc.freeze()
