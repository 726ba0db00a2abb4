from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from receptionist import health, metrics

admin.site.site_header = "Voice Receptionist admin"
admin.site.site_title = "Voice Receptionist"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("telephony/", include("telephony.urls")),
    path("", include("voice.urls")),
    path("", include("calls.urls")),
    path("", include("shops.urls")),
]
