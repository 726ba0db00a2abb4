from __future__ import annotations

import pytest
from django.urls import reverse

from shops.models import BusinessHours, ClosedDate, Service, Shop
from shops.tests.factories import MembershipFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def url(owner, name):
    return reverse(f"shops:{name}", kwargs={"slug": owner.shop.slug})


def test_it_saves_shop_details_with_normalised_numbers(client, owner):
    response = client.post(
        url(owner, "settings"),
        {
            "name": "Renamed Garage",
            "phone_number": "(555) 555-0142",
            "transfer_number": "",
            "address": "2 Oak Ave",
            "directions_note": "Next to the bakery",
            "timezone": "America/Denver",
            "greeting": "Hi there!",
        },
    )
    assert response.status_code == 302
    shop = Shop.objects.get(pk=owner.shop.pk)
    assert (shop.name, shop.phone_number, shop.timezone, shop.greeting) == (
        "Renamed Garage",
        "+15555550142",
        "America/Denver",
        "Hi there!",
    )
    assert shop.slug == owner.shop.slug  # links keep working after a rename


def test_it_saves_the_receptionists_controls(client, owner):
    client.post(
        url(owner, "settings_ai"),
        {"voice_engine": "local", "max_call_seconds": "300", "ai_disclosure": ""},
    )
    shop = Shop.objects.get(pk=owner.shop.pk)
    assert (shop.voice_engine, shop.max_call_seconds, shop.ai_disclosure, shop.ai_enabled) == (
        "local",
        300,
        False,
        False,
    )
    html = client.post(url(owner, "settings_ai"), {"voice_engine": "auto", "max_call_seconds": "5"}).content.decode()
    assert "greater than or equal to 60" in html


def test_it_shows_a_rotated_api_token_once(client, owner):
    response = client.post(url(owner, "settings_api_token"), follow=True)
    token = response.context["token"]
    assert token.startswith("vr_") and token in response.content.decode()
    assert Shop.for_api_token(token) == owner.shop
    assert token not in client.get(url(owner, "settings_ai")).content.decode()


def test_it_replaces_hours_and_closed_dates(client, owner):
    data = {f"hours-d{d}_closed": "on" for d in range(7)}
    data.update({"hours-d0_closed": "", "hours-d0_opens": "09:00", "hours-d0_closes": "12:00"})
    data["closed-closed_dates"] = "2026-12-25 Christmas\n2026-01-01"
    client.post(url(owner, "settings_hours"), data)
    assert list(BusinessHours.objects.filter(shop=owner.shop).values_list("weekday", flat=True)) == [0]
    assert ClosedDate.objects.get(shop=owner.shop, date="2026-12-25").reason == "Christmas"
    bad = client.post(url(owner, "settings_hours"), {**data, "closed-closed_dates": "25/12/2026"}).content.decode()
    assert "YYYY-MM-DD" in bad


def test_it_replaces_services(client, owner):
    ServiceFactory(shop=owner.shop, name="Old")
    client.post(url(owner, "settings_services"), {"services": "Oil change | $40\nAlignment | $99 | 1 hour"})
    assert list(Service.objects.filter(shop=owner.shop).values_list("name", flat=True)) == ["Alignment", "Oil change"]
    dup = client.post(url(owner, "settings_services"), {"services": "A\na"}).content.decode()
    assert "listed twice" in dup
