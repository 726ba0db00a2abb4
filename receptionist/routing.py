"""WebSocket routes of every app, gathered in one list for asgi.py."""

from __future__ import annotations

from django.urls import URLPattern

# Apps append their consumers' routes here (voice: /ws/voice/stream/, telephony: media streams).
websocket_urlpatterns: list[URLPattern] = []

from calls.routing import websocket_urlpatterns as calls_websocket_urlpatterns  # noqa: E402

websocket_urlpatterns += calls_websocket_urlpatterns

from voice.routing import websocket_urlpatterns as voice_websocket_urlpatterns  # noqa: E402

websocket_urlpatterns += voice_websocket_urlpatterns

# WebSockets that servers open (Twilio's media streams): no browser Origin and no cookies, so asgi.py
# routes them ahead of the Origin check and the session middleware; each consumer checks its own
# signature (telephony.signatures.check_websocket) and one-time token.
from telephony.routing import websocket_urlpatterns as server_websocket_urlpatterns  # noqa: E402, F401
