"""ASGI entry point: HTTP goes to Django, WebSockets to the Channels URL router.

Django is set up before any consumer is imported (consumers import models).

Browser WebSockets pass the Origin check and the session middleware. WebSockets opened by servers
(Twilio's media streams) carry no Origin header, which `AllowedHostsOriginValidator` refuses, and no
cookies; they are routed first, and their consumers check the vendor's signature themselves.
"""

from __future__ import annotations

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "receptionist.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from receptionist.routing import server_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402
from receptionist.warmup import warm_up_server  # noqa: E402

warm_up_server()  # before the first request and call, not during them

browser_websockets = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([*server_websocket_urlpatterns, re_path(r"", browser_websockets)]),
    }
)

# Everything loaded so far lives as long as the process. Frozen, the collector's full passes skip it:
# unfrozen, each full pass walked ~200k objects for ~100 ms, with every call's audio waiting.
gc.freeze()

# The event loop shares the GIL with the threads that run Django's sync code (webhooks, CallLog writes).
# A thread that holds it makes the loop wait up to the switch interval each time the loop gives it up
# (around every socket wait): 5 ms by default, long enough to delay every call's audio frames when many
# calls start or end at once. 0.5 ms took p99 added latency at 100 calls from 28-46 ms to 12-25 ms here.
sys.setswitchinterval(0.0005)
