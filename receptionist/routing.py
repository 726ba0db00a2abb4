"""WebSocket routes of every app, gathered in one list for asgi.py."""

from __future__ import annotations

from django.urls import URLPattern

# Apps append their consumers' routes here (voice: /ws/voice/stream/, telephony: media streams).
websocket_urlpatterns: list[URLPattern] = []

from calls.routing import websocket_urlpatterns as calls_websocket_urlpatterns  # noqa: E402

websocket_urlpatterns += calls_websocket_urlpatterns
