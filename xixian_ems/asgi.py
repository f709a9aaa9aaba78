"""ASGI entry point: HTTP through Django, WebSockets through Channels.

``get_asgi_application()`` must run before anything imports models, so the routing
import below comes after it (Channels docs, "Django integration").
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xixian_ems.settings.local")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.incidents.intake.asgi import IntakeFastPath  # noqa: E402
from apps.realtime.auth import SocketAuthMiddleware  # noqa: E402
from xixian_ems.routing import websocket_urlpatterns  # noqa: E402

# The fast intake path sits outermost: it takes valid anonymous JSON reports before
# Django (apps.incidents.intake), passes everything else through, and answers the
# server's lifespan messages (drains its writer at shutdown).
application = IntakeFastPath(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # A JWT authenticates from anywhere (native mobile clients often send no
            # Origin at all). Without a token, an admin session cookie authenticates a
            # staff user only when the Origin is this site's (apps.realtime.auth): a
            # cross-site page cannot ride an officer's session. No blanket Origin check
            # here, which would refuse the mobile apps and anonymous report tracking.
            "websocket": SocketAuthMiddleware(URLRouter(websocket_urlpatterns)),
        }
    )
)

# What is loaded by now lives as long as the process: move it out of the collector's
# way, so a full collection scans only what requests allocate. Without this, a
# 2,000-row duty board (tens of thousands of short-lived objects) triggered full
# collections over every module object, tens of milliseconds each.
gc.freeze()
