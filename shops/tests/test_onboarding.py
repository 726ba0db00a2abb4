from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from shops.models import BusinessHours, Invitation, Membership, Service, Shop
from shops.tests.factories import MembershipFactory, ShopFactory, UserFactory

pytestmark = pytest.mark.django_db


def onboarding_data(**overrides: str) -> dict[str, str]:
    data = {
        "shop-name": "Joe's Garage",
        "shop-phone_number": "(555) 555-0100",
        "shop-transfer_number": "555.555.0199",
        "shop-address": "1 Main St, Springfield",
        "shop-directions_note": "",
        "shop-timezone": "America/Chicago",
        "shop-greeting": "Thanks for calling Joe's!",
        "services-services": "Oil change | from $49.95 | 30 minutes\nBrakes",
    }
    for day in range(7):
        if day < 5:
            data[f"hours-d{day}_opens"] = "08:00"
            data[f"hours-d{day}_closes"] = "17:30"
        else:
            data[f"hours-d{day}_closed"] = "on"
    data.update(overrides)
    return data


def test_it_shows_a_landing_page_to_visitors(client):
    response = client.get("/")
    assert response.status_code == 200
    assert reverse("account_login") in response.content.decode()
    assert reverse("account_signup") in response.content.decode()


def test_it_sends_a_user_without_a_shop_to_onboarding(client):
    client.force_login(UserFactory())
    assert client.get("/").url == reverse("shops:onboarding")


def test_it_sends_an_owner_to_their_shop(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    assert client.get("/").url == reverse("shops:overview", kwargs={"slug": membership.shop.slug})


def test_it_signs_up_and_lands_on_onboarding(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("shops:onboarding")
    assert "set up your shop" in response.content.decode()


def test_it_creates_a_shop_with_normalised_numbers_hours_and_services(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("shops:onboarding"), onboarding_data())
    shop = Shop.objects.get(name="Joe's Garage")
    assert response.url == reverse("shops:overview", kwargs={"slug": shop.slug})
    assert shop.slug == "joes-garage"
    assert shop.phone_number == "+15555550100"
    assert shop.transfer_number == "+15555550199"
    assert shop.timezone == "America/Chicago"
    assert Membership.objects.get(shop=shop, user=user).role == Membership.Role.OWNER
    assert BusinessHours.objects.filter(shop=shop).count() == 5
    assert not BusinessHours.objects.filter(shop=shop, weekday__in=[5, 6]).exists()
    oil = Service.objects.get(shop=shop, name="Oil change")
    assert (oil.price_note, oil.duration_note) == ("from $49.95", "30 minutes")


def test_it_gives_a_second_shop_of_the_same_name_its_own_slug(client):
    ShopFactory(name="Joe's Garage", slug="joes-garage")
    client.force_login(UserFactory())
    client.post(reverse("shops:onboarding"), onboarding_data())
    assert Shop.objects.filter(slug="joes-garage-2").exists()


def test_it_rejects_hours_that_close_before_they_open(client):
    client.force_login(UserFactory())
    response = client.post(
        reverse("shops:onboarding"), onboarding_data(**{"hours-d0_opens": "17:00", "hours-d0_closes": "08:00"})
    )
    assert response.status_code == 200
    assert "Monday must close after it opens." in response.content.decode()
    assert not Shop.objects.exists()


def test_it_asks_for_hours_or_closed_on_each_day(client):
    client.force_login(UserFactory())
    data = onboarding_data()
    del data["hours-d2_opens"]
    del data["hours-d2_closes"]
    response = client.post(reverse("shops:onboarding"), data)
    assert "Enter Wednesday" in response.content.decode()
    assert not Shop.objects.exists()


def test_it_accepts_a_lunch_break_but_not_overlapping_windows(client):
    client.force_login(UserFactory())
    bad = onboarding_data(**{"hours-d0_opens2": "12:00", "hours-d0_closes2": "18:00"})
    assert "reopens before its first closing" in client.post(reverse("shops:onboarding"), bad).content.decode()
    good = onboarding_data(**{"hours-d0_closes": "12:00", "hours-d0_opens2": "13:00", "hours-d0_closes2": "18:00"})
    client.post(reverse("shops:onboarding"), good)
    assert BusinessHours.objects.filter(weekday=0).count() == 2


def test_it_rejects_a_bad_or_taken_phone_number(client):
    ShopFactory(phone_number="+15555550100")
    client.force_login(UserFactory())
    taken = client.post(reverse("shops:onboarding"), onboarding_data()).content.decode()
    assert "already connected to another shop" in taken
    bad = client.post(reverse("shops:onboarding"), onboarding_data(**{"shop-phone_number": "12"})).content.decode()
    assert "Enter a phone number" in bad


# ---------------------------------------------------------------------------------------------
# Staff invitations
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def owner_client(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    client.shop = membership.shop
    return client


def test_it_adds_an_existing_user_as_staff_at_once(owner_client, django_capture_on_commit_callbacks):
    staff = UserFactory(username="mechanic@example.com")
    url = reverse("shops:settings_team", kwargs={"slug": owner_client.shop.slug})
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(url, {"email": "Mechanic@Example.com"})
    assert Membership.objects.get(user=staff, shop=owner_client.shop).role == Membership.Role.STAFF
    assert mail.outbox[-1].to == ["Mechanic@Example.com"]


def test_it_invites_a_new_person_who_joins_on_sign_up_through_the_link(
    owner_client, client, django_capture_on_commit_callbacks
):
    shop = owner_client.shop
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("shops:settings_team", kwargs={"slug": shop.slug}), {"email": "new@example.com"})
    invitation = Invitation.objects.get(shop=shop)
    link = reverse("shops:invitation", kwargs={"token": invitation.token})
    assert link in mail.outbox[-1].body

    owner_client.logout()
    assert "Join " + shop.name in client.get(link).content.decode()
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("shops:overview", kwargs={"slug": shop.slug})
    membership = Membership.objects.get(shop=shop, user__email="new@example.com")
    assert membership.role == Membership.Role.STAFF
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None


def test_it_does_not_hand_an_invitation_to_someone_who_only_typed_the_address(owner_client, client):
    shop = owner_client.shop
    owner_client.post(reverse("shops:settings_team", kwargs={"slug": shop.slug}), {"email": "new@example.com"})
    owner_client.logout()
    client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    assert not Membership.objects.filter(shop=shop, user__email="new@example.com").exists()
    # Once they verify the address, their next visit accepts it.
    EmailAddress.objects.filter(email="new@example.com").update(verified=True)
    client.get("/")
    assert Membership.objects.filter(shop=shop, user__email="new@example.com").exists()


def test_it_lets_owners_remove_staff_and_cancel_invitations(owner_client):
    shop = owner_client.shop
    staff = MembershipFactory(shop=shop, role=Membership.Role.STAFF)
    invitation = Invitation.objects.create(shop=shop, email="x@example.com", token="t1")
    owner_client.post(reverse("shops:team_member_remove", kwargs={"slug": shop.slug, "pk": staff.pk}))
    owner_client.post(reverse("shops:invitation_cancel", kwargs={"slug": shop.slug, "pk": invitation.pk}))
    assert not Membership.objects.filter(pk=staff.pk).exists()
    assert not Invitation.objects.filter(pk=invitation.pk).exists()


def test_it_keeps_the_last_owner(owner_client):
    shop = owner_client.shop
    me = Membership.objects.get(shop=shop)
    response = owner_client.post(
        reverse("shops:team_member_remove", kwargs={"slug": shop.slug, "pk": me.pk}), follow=True
    )
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=me.pk).exists()


def test_it_forbids_staff_the_settings(client):
    staff = MembershipFactory(role=Membership.Role.STAFF)
    client.force_login(staff.user)
    for name in ["settings", "settings_ai", "settings_hours", "settings_services", "settings_team"]:
        assert client.get(reverse(f"shops:{name}", kwargs={"slug": staff.shop.slug})).status_code == 403
    assert client.post(reverse("shops:ai_toggle", kwargs={"slug": staff.shop.slug})).status_code == 403
    # …but sees calls and work orders.
    assert client.get(reverse("calls:list", kwargs={"slug": staff.shop.slug})).status_code == 200
    assert client.get(reverse("shops:work_orders", kwargs={"slug": staff.shop.slug})).status_code == 200
