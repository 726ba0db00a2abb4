from __future__ import annotations

from django.urls import path, re_path

from telephony import views

app_name = "telephony"

urlpatterns = [
    path("twilio/voice/", views.voice, name="twilio-voice"),
    path("twilio/status/", views.status, name="twilio-status"),
    path("twilio/connect-action/", views.connect_action, name="twilio-connect-action"),
    path("twilio/dial-action/", views.dial_action, name="twilio-dial-action"),
    re_path(r"^twilio/message/(?P<step>name|number|reason)/$", views.message, name="twilio-message"),
]
