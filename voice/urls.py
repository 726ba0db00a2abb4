from __future__ import annotations

from django.urls import path

from voice import views

app_name = "voice"

# Included at the site root (receptionist/urls.py): the API lives under api/voice/, the pages beside
# the shop's dashboard pages.
urlpatterns = [
    path("api/voice/chat", views.chat, name="chat"),
    path("voice-test", views.voice_test_pick, name="voice_test_pick"),
    path("shops/<slug:slug>/voice-test/", views.voice_test, name="voice_test"),
]
