"""The /voice-test page: who may open it, which shop it is for, and what it gives the browser."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from shops.models import Membership
from shops.tests.factories import MembershipFactory, ShopFactory, UserFactory

pytestmark = pytest.mark.django_db


def page_url(slug: str) -> str:
    return reverse("voice:voice_test", kwargs={"slug": slug})


def test_it_lives_at_voice_test_and_under_the_shop():
    assert reverse("voice:voice_test_pick") == "/voice-test"
    assert page_url("elm") == "/shops/elm/voice-test/"
    assert reverse("voice:chat") == "/api/voice/chat"  # the API stays where it was


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.STAFF])
def test_it_shows_owners_and_staff_the_call_controls(client, role):
    membership = MembershipFactory(role=role, shop__name="Elm Street Auto")
    client.force_login(membership.user)
    response = client.get(page_url(membership.shop.slug))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Elm Street Auto" in html
    assert f'data-shop="{membership.shop.slug}"' in html
    assert 'data-ws-path="/ws/voice/stream/"' in html
    assert "/static/voice/voice-test.js" in html and "/static/voice/pcm-worklet.js" in html
    for control in ('id="call-toggle"', 'id="press-zero"', 'id="text-message"', 'aria-live="polite"'):
        assert control in html
    assert '<label for="text-message"' in html


def test_it_hides_other_shops(client):
    membership = MembershipFactory()
    other = ShopFactory()
    client.force_login(membership.user)
    assert client.get(page_url(other.slug)).status_code == 404
    assert client.get(page_url("no-such-shop")).status_code == 404


def test_it_sends_anonymous_visitors_to_log_in(client):
    shop = ShopFactory()
    for url in (page_url(shop.slug), "/voice-test"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse(settings.LOGIN_URL))


def test_it_opens_the_shop_last_used_or_asked_for(client):
    user = UserFactory()
    first = MembershipFactory(user=user, shop__name="Alpha Auto").shop
    second = MembershipFactory(user=user, shop__name="Beta Brakes", role=Membership.Role.STAFF).shop
    client.force_login(user)

    assert client.get("/voice-test")["Location"] == page_url(first.slug)  # alphabetical first
    client.get(reverse("shops:overview", kwargs={"slug": second.slug}))  # remembered as the current shop
    assert client.get("/voice-test")["Location"] == page_url(second.slug)
    assert client.get(f"/voice-test?shop={first.slug}")["Location"] == page_url(first.slug)
    # Someone else's slug is not a way in: the user gets a shop of their own.
    assert client.get(f"/voice-test?shop={ShopFactory().slug}")["Location"] == page_url(second.slug)


def test_it_sends_a_user_without_a_shop_to_onboarding(client):
    client.force_login(UserFactory())
    assert client.get("/voice-test")["Location"] == reverse("shops:onboarding")


def test_it_is_linked_from_try_it(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    html = client.get(reverse("shops:try", kwargs={"slug": membership.shop.slug})).content.decode()
    assert 'href="/voice-test"' in html


def test_it_serves_its_scripts(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    for name in ("voice/voice-test.js", "voice/pcm-worklet.js", "voice/voice-test.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
