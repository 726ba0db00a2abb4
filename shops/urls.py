from __future__ import annotations

from django.urls import include, path

from shops import views

app_name = "shops"

# Everything about one shop lives under /shops/<slug>/: the slug names the shop a request is about,
# and every view checks the user's membership of it.
shop_patterns = [
    path("", views.overview, name="overview"),
    path("ai/", views.ai_toggle, name="ai_toggle"),
    path("greeting/play/", views.greeting_player, name="greeting_player"),
    path("greeting.wav", views.greeting_audio, name="greeting_audio"),
    path("settings/", views.settings_details, name="settings"),
    path("settings/ai/", views.settings_ai, name="settings_ai"),
    path("settings/api-token/", views.settings_api_token, name="settings_api_token"),
    path("settings/hours/", views.settings_hours, name="settings_hours"),
    path("settings/services/", views.settings_services, name="settings_services"),
    path("settings/team/", views.settings_team, name="settings_team"),
    path("settings/team/<int:pk>/remove/", views.team_member_remove, name="team_member_remove"),
    path("settings/invitations/<int:pk>/cancel/", views.invitation_cancel, name="invitation_cancel"),
    path("work-orders/", views.work_orders, name="work_orders"),
    path("work-orders/new/", views.work_order_create, name="work_order_create"),
    path("work-orders/<int:pk>/edit/", views.work_order_edit, name="work_order_edit"),
    path("work-orders/<int:pk>/status/", views.work_order_status, name="work_order_status"),
    path("work-orders/import/", views.work_order_import, name="work_order_import"),
    path("work-orders/import/<int:pk>/", views.work_order_import_detail, name="work_order_import_detail"),
    path("work-orders/import/<int:pk>/errors.csv", views.work_order_import_errors, name="work_order_import_errors"),
    path("try/", views.try_it, name="try"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("onboarding/", views.onboarding, name="onboarding"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("shops/<slug:slug>/", include(shop_patterns)),
]
