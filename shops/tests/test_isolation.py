"""Every dashboard URL of one shop, walked as someone who is not its member: always 404.

The URLs are enumerated from the URLconf, so a new page under /shops/<slug>/ is checked without
anyone remembering to add it here (a URL whose arguments this test can't fill fails loudly).
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from calls.tests.factories import CallLogFactory
from shops.models import Invitation, Membership
from shops.tests.factories import MembershipFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db

OWNER_ONLY = {
    "shops:ai_toggle",
    "shops:settings",
    "shops:settings_ai",
    "shops:settings_api_token",
    "shops:settings_hours",
    "shops:settings_services",
    "shops:settings_team",
    "shops:team_member_remove",
    "shops:invitation_cancel",
}


def shop_url_names() -> list[tuple[str, list[str]]]:
    """(namespaced name, kwargs) of every URL pattern whose route takes the shop's slug."""
    found = []

    def walk(patterns, namespace, prefix_kwargs):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(filter(None, [namespace, p.namespace])) if p.namespace else namespace
                walk(p.url_patterns, ns, prefix_kwargs | set(p.pattern.converters))
            elif isinstance(p, URLPattern) and p.name:
                kwargs = prefix_kwargs | set(p.pattern.converters)
                if "slug" in kwargs:
                    found.append((f"{namespace}:{p.name}" if namespace else p.name, sorted(kwargs)))

    walk(get_resolver().url_patterns, "", set())
    return found


@pytest.fixture
def shop_a_objects():
    owner = MembershipFactory()
    shop = owner.shop
    staff = MembershipFactory(shop=shop, role=Membership.Role.STAFF)
    objects = {
        "calls:detail": CallLogFactory(shop=shop).pk,
        "shops:work_order_edit": WorkOrderFactory(shop=shop).pk,
        "shops:work_order_status": WorkOrderFactory(shop=shop).pk,
        "shops:team_member_remove": staff.pk,
        "shops:invitation_cancel": Invitation.objects.create(shop=shop, email="p@example.com", token="tok-a").pk,
    }
    try:
        from shops.models import WorkOrderImport

        job = WorkOrderImport.objects.create(shop=shop, filename="a.csv", content=b"x", status="done")
        objects["shops:work_order_import_detail"] = job.pk
        objects["shops:work_order_import_errors"] = job.pk
    except ImportError:  # the import feature isn't installed: its URLs 404 anyway
        objects["shops:work_order_import_detail"] = objects["shops:work_order_import_errors"] = 1
    return owner, staff, objects


def urls_of(shop, objects):
    for name, kwargs in shop_url_names():
        values = {"slug": shop.slug}
        if "pk" in kwargs:
            assert name in objects, f"{name} takes a pk: add an object of shop A for it to this test"
            values["pk"] = objects[name]
        unknown = set(kwargs) - {"slug", "pk"}
        assert not unknown, f"{name} takes {unknown}: teach this test to fill it"
        yield name, reverse(name, kwargs=values)


def test_it_enumerates_the_dashboard(shop_a_objects):
    names = {name for name, _ in shop_url_names()}
    assert {"shops:overview", "calls:list", "calls:detail", "calls:export", "shops:work_orders"} <= names
    assert len(names) >= 20


def test_it_hides_every_url_of_a_shop_from_another_owner(client, shop_a_objects):
    owner_a, _staff, objects = shop_a_objects
    owner_b = MembershipFactory()  # owns a shop of their own
    client.force_login(owner_b.user)
    for name, url in urls_of(owner_a.shop, objects):
        for method in (client.get, client.post):
            status = method(url, headers={"HX-Request": "true"} if method == client.post else {}).status_code
            assert status in (404, 405), f"{method.__name__.upper()} {name} {url} → {status}"
            # 405 only for the wrong method of a one-method view; the right method must 404.
        right = client.post(url) if name in {"shops:ai_toggle", "shops:settings_api_token"} else client.get(url)
        if right.status_code == 405:
            right = client.post(url)
        assert right.status_code == 404, f"{name} {url} → {right.status_code}"


def test_it_hides_every_url_of_a_shop_from_its_staff_where_settings_are_concerned(client, shop_a_objects):
    owner_a, staff, objects = shop_a_objects
    client.force_login(staff.user)
    for name, url in urls_of(owner_a.shop, objects):
        if name in OWNER_ONLY:
            status = client.post(url).status_code
            assert status == 403, f"staff POST {name} → {status}"


def test_it_does_not_let_staff_of_one_shop_see_another(client, shop_a_objects):
    owner_a, _staff, objects = shop_a_objects
    staff_b = MembershipFactory(role=Membership.Role.STAFF)
    client.force_login(staff_b.user)
    for name, url in urls_of(owner_a.shop, objects):
        response = client.get(url)
        if response.status_code == 405:
            response = client.post(url)
        assert response.status_code == 404, f"{name} → {response.status_code}"


def test_it_sends_anonymous_visitors_to_log_in(client, shop_a_objects):
    owner_a, _staff, objects = shop_a_objects
    for name, url in urls_of(owner_a.shop, objects):
        response = client.get(url)
        if response.status_code == 405:
            response = client.post(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url, name
