from __future__ import annotations

from django.urls import path

from calls.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/shops/<slug:slug>/activity/", DashboardConsumer.as_asgi()),
]
