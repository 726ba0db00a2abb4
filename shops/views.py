from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shops.models import Shop


def home(request: HttpRequest) -> HttpResponse:
    """Front door: who you are and which shops you belong to (the owner dashboard builds on this)."""
    shops = (
        Shop.objects.filter(memberships__user=request.user).order_by("name")
        if request.user.is_authenticated
        else Shop.objects.none()
    )
    return render(request, "shops/home.html", {"shops": shops})
