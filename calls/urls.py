from __future__ import annotations

from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("shops/<slug:slug>/calls/", views.call_list, name="list"),
    path("shops/<slug:slug>/calls/export.csv", views.call_export, name="export"),
    path("shops/<slug:slug>/calls/<int:pk>/", views.call_detail, name="detail"),
    path("shops/<slug:slug>/analytics/", views.analytics, name="analytics"),
]
