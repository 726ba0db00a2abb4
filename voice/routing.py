from __future__ import annotations

from django.urls import path

from voice.browser import WS_PATH
from voice.consumers import BrowserVoiceConsumer

websocket_urlpatterns = [
    path(WS_PATH, BrowserVoiceConsumer.as_asgi()),
]
