from __future__ import annotations

import pytest
from django.urls import reverse

from shops.models import WorkOrder, WorkOrderImport
from shops.selectors import work_order_imports_for_shop
from shops.tests.factories import MembershipFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def test_it_lists_searches_and_filters_work_orders(client, owner):
    shop = owner.shop
    WorkOrderFactory(
        shop=shop, number="5001", customer_name="Ann Lee", vehicle_model="Civic", status="ready_for_pickup"
    )
    WorkOrderFactory(shop=shop, number="5002", customer_name="Bo Diaz", vehicle_model="F-150", status="diagnosing")
    url = reverse("shops:work_orders", kwargs={"slug": shop.slug})
    html = client.get(url, {"q": "civic"}).content.decode()
    assert "Ann Lee" in html and "Bo Diaz" not in html
    html = client.get(url, {"status": "diagnosing"}).content.decode()
    assert "Bo Diaz" in html and "Ann Lee" not in html
    fragment = client.get(url, {"q": "5002"}, headers={"HX-Request": "true", "HX-Target": "work-order-results"})
    assert "Bo Diaz" in fragment.content.decode() and "<html" not in fragment.content.decode()


def test_it_changes_status_inline(client, owner):
    order = WorkOrderFactory(shop=owner.shop, status="in_progress")
    url = reverse("shops:work_order_status", kwargs={"slug": owner.shop.slug, "pk": order.pk})
    response = client.post(url, {"status": "ready_for_pickup"}, headers={"HX-Request": "true"})
    order.refresh_from_db()
    assert order.status == "ready_for_pickup"
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="wo-{order.pk}"') and "Saved" in html


def test_it_creates_a_work_order_with_normalised_phone_from_the_dashboard(client, owner):
    url = reverse("shops:work_order_create", kwargs={"slug": owner.shop.slug})
    response = client.post(
        url,
        {
            "number": "7001",
            "customer_name": "Smith, John",
            "customer_phone": "(555) 555-0123",
            "vehicle_year": "2018",
            "vehicle_make": "Honda",
            "vehicle_model": "Civic",
            "status": "received",
        },
    )
    assert response.status_code == 302
    order = WorkOrder.objects.get(shop=owner.shop, number="7001")
    assert order.customer_phone == "+15555550123"
    assert order.customer_last_name == "smith"
    assert order.source == WorkOrder.Source.DASHBOARD


def test_it_rejects_a_duplicate_ro_number_and_a_bad_phone(client, owner):
    WorkOrderFactory(shop=owner.shop, number="7001")
    url = reverse("shops:work_order_create", kwargs={"slug": owner.shop.slug})
    html = client.post(url, {"number": "7001", "customer_phone": "12", "status": "received"}).content.decode()
    assert "already has this RO number" in html
    assert "Enter a phone number" in html


def test_it_edits_a_work_order(client, owner):
    order = WorkOrderFactory(shop=owner.shop, number="7002", source="csv")
    url = reverse("shops:work_order_edit", kwargs={"slug": owner.shop.slug, "pk": order.pk})
    assert client.get(url).status_code == 200
    client.post(url, {"number": "7002", "customer_name": "Jane Roe", "status": "picked_up"})
    order.refresh_from_db()
    assert (order.customer_name, order.status, order.source) == ("Jane Roe", "picked_up", "csv")


def test_it_imports_a_csv_and_shows_progress_and_row_errors(client, owner, django_capture_on_commit_callbacks):
    pytest.importorskip("shops.importing")
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = (
        b"RO Number,Customer Name,Customer Phone,Year,Make,Model,Status\n"
        b"9001,Ann Lee,(555) 555-0101,2019,Toyota,Camry,Received\n"
        b"9002,Bo Diaz,not a phone,2015,Ford,F-150,In Progress\n"
    )
    url = reverse("shops:work_order_import", kwargs={"slug": owner.shop.slug})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"file": SimpleUploadedFile("orders.csv", content, "text/csv")})
    assert response.status_code == 302
    detail = client.get(response.url)
    html = detail.content.decode()
    assert 'data-status="done"' in html
    assert "every 500ms" not in html  # finished: no more polling
    assert WorkOrder.objects.filter(shop=owner.shop, number="9001").exists()
    fragment = client.get(response.url, headers={"HX-Request": "true"}).content.decode()
    assert fragment.strip().startswith('<section class="card" id="import-progress"')


def test_it_lists_only_real_imports_not_admin_previews_awaiting_confirmation():
    shop = MembershipFactory().shop
    done = WorkOrderImport.objects.create(shop=shop, filename="done.csv", status=WorkOrderImport.Status.DONE)
    WorkOrderImport.objects.create(shop=shop, filename="preview.csv", status=WorkOrderImport.Status.PREVIEW)
    assert list(work_order_imports_for_shop(shop)) == [done]
