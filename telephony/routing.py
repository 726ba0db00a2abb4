"""WebSocket routes of the telephony app (gathered by receptionist/routing.py)."""

from __future__ import annotations

from django.urls import path

from telephony.consumers import TwilioMediaConsumer
from telephony.twiml import STREAM_PATH

websocket_urlpatterns = [
    path(STREAM_PATH.lstrip("/"), TwilioMediaConsumer.as_asgi()),
]
