"""ASGI entry point (Daphne): HTTP through Django, WebSockets through Channels behind the origin check,
the session auth stack and, for clients outside the browser, JWT (realtime/auth.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from ops.heap import freeze_startup_objects  # noqa: E402
from realtime.auth import JwtAuthMiddleware, OriginValidatorUnlessToken  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidatorUnlessToken(
            AuthMiddlewareStack(JwtAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
# Every idle socket keeps its consumer alive; full collections walk those, not the start-up objects as well.
freeze_startup_objects()

from django.conf import settings  # noqa: E402

if settings.EMBEDDED_BEAT:  # make run's one process: beat's schedule in a thread of its own
    from ops.embedded_beat import start_embedded_beat

    start_embedded_beat()
