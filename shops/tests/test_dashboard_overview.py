from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from calls.tests.factories import CallLogFactory
from shops import services
from shops.models import Membership, Shop
from shops.tests.factories import BusinessHoursFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(shop__greeting="Hello from the garage.")
    client.force_login(membership.user)
    return membership


def test_it_shows_status_greeting_todays_calls_and_phone_setup(client, owner, settings):
    settings.PUBLIC_BASE_URL = "https://rx.example.com"
    CallLogFactory(shop=owner.shop, caller_number="+15555550123", outcome="resolved", intent="GET_HOURS")
    CallLogFactory(shop=owner.shop, started_at=timezone.now() - dt.timedelta(days=3))
    html = client.get(reverse("shops:overview", kwargs={"slug": owner.shop.slug})).content.decode()
    assert "Hello from the garage." in html
    assert 'data-testid="calls-today">1<' in html
    assert "•••0123" in html and "+15555550123" not in html
    assert "https://rx.example.com/telephony/twilio/voice/" in html
    assert "https://rx.example.com/telephony/twilio/status/" in html
    assert f'ws-connect="/ws/shops/{owner.shop.slug}/activity/"' in html


def test_it_toggles_the_ai_with_htmx(client, owner):
    url = reverse("shops:ai_toggle", kwargs={"slug": owner.shop.slug})
    response = client.post(url, {"enabled": "0"}, headers={"HX-Request": "true"})
    assert Shop.objects.get(pk=owner.shop.pk).ai_enabled is False
    html = response.content.decode()
    assert 'id="ai-status"' in html and "Turn AI on" in html and "<html" not in html
    client.post(url, {"enabled": "1"})
    assert Shop.objects.get(pk=owner.shop.pk).ai_enabled is True


def test_it_shows_open_or_closed_in_the_shops_time_zone(owner):
    from shops.selectors import is_open_now

    shop = owner.shop
    BusinessHoursFactory(shop=shop, weekday=0, opens_at=dt.time(8), closes_at=dt.time(17))
    monday_9 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=shop.tz)
    assert is_open_now(shop, monday_9).is_open
    assert not is_open_now(shop, monday_9 + dt.timedelta(hours=9)).is_open


@pytest.mark.skipif(services.espeak_path() is None, reason="espeak-ng not installed")
def test_it_speaks_the_greeting_as_wav(client, owner, settings):
    settings.OPENAI_API_KEY = ""
    response = client.get(reverse("shops:greeting_audio", kwargs={"slug": owner.shop.slug}))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response.content[:4] == b"RIFF"
    player = client.get(
        reverse("shops:greeting_player", kwargs={"slug": owner.shop.slug}), headers={"HX-Request": "true"}
    )
    assert "<audio" in player.content.decode()


def test_it_explains_when_the_offline_voice_is_missing(client, owner, settings, monkeypatch):
    settings.OPENAI_API_KEY = ""
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    response = client.get(reverse("shops:greeting_audio", kwargs={"slug": owner.shop.slug}))
    assert response.status_code == 503
    assert "espeak-ng" in response.content.decode()
    player = client.get(
        reverse("shops:greeting_player", kwargs={"slug": owner.shop.slug}), headers={"HX-Request": "true"}
    )
    assert "not installed" in player.content.decode()


def test_it_remembers_the_last_shop_and_switches_between_shops(client, owner):
    other = MembershipFactory(user=owner.user, role=Membership.Role.STAFF).shop
    html = client.get(reverse("shops:overview", kwargs={"slug": other.slug})).content.decode()
    assert owner.shop.name in html  # the switcher lists both
    assert client.get("/").url == reverse("shops:overview", kwargs={"slug": other.slug})
    assert "Turn AI" not in html  # staff there: no toggle
