from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from shops.importing import import_work_orders
from shops.models import WorkOrder, WorkOrderImport
from shops.tests.factories import ShopFactory, UserFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "data" / "work_orders_sample.csv"
IMPORT_URL = reverse("admin:shops_workorder_import_csv")
CHANGELIST_URL = reverse("admin:shops_workorder_changelist")


def staff_user(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="shops", codename__in=codenames))
    return user


@pytest.fixture
def importer(client):
    user = staff_user("view_workorder", "add_workorder", "change_workorder")
    client.force_login(user)
    return user


@pytest.fixture
def shop():
    return ShopFactory(timezone="America/Chicago")


def upload(client, shop, content: bytes, name: str = "orders.csv"):
    return client.post(IMPORT_URL, {"shop": shop.pk, "file": SimpleUploadedFile(name, content, "text/csv")})


def confirm(client, job: WorkOrderImport):
    return client.post(reverse("admin:shops_workorder_import_csv_confirm", args=[job.pk]))


def test_it_shows_an_import_csv_button_next_to_export(client, importer):
    html = client.get(CHANGELIST_URL).content.decode()
    assert f'href="{IMPORT_URL}"' in html
    assert "Import CSV" in html
    assert reverse("admin:shops_workorder_export") in html


def test_it_hides_the_button_and_refuses_the_page_without_add_and_change_permission(client):
    client.force_login(staff_user("view_workorder", "change_workorder"))

    assert IMPORT_URL not in client.get(CHANGELIST_URL).content.decode()
    assert client.get(IMPORT_URL).status_code == 403
    assert upload(client, ShopFactory(), SAMPLE.read_bytes()).status_code == 403
    assert not WorkOrderImport.objects.exists()


def test_it_sends_anonymous_visitors_to_the_admin_login(client):
    response = client.get(IMPORT_URL)
    assert response.status_code == 302
    assert reverse("admin:login") in response.url


def test_it_asks_for_a_shop_and_a_file(client, importer, shop):
    response = client.get(IMPORT_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="shop"' in html and 'name="file"' in html and 'enctype="multipart/form-data"' in html


def test_it_previews_counts_errors_and_first_rows_without_saving(client, importer, shop):
    WorkOrderFactory(shop=shop, number="10001")
    content = SAMPLE.read_bytes().replace(b"(411) 708-8711", b"not a phone")  # RO 10005, line 6

    response = upload(client, shop, content)

    assert response.status_code == 200
    html = response.content.decode()
    report = response.context["report"]
    assert (report.created, report.updated, report.skipped) == (38, 1, 1)
    assert "Would create <strong>38</strong>, update <strong>1</strong>" in html
    assert "not a usable phone number" in html and "Customer Phone" in html
    assert len(report.preview) == 20
    assert "Thi Taylor" in html and "+13556040791" in html
    assert "Nov. 4, 2026, 10 a.m." in html  # shown in the shop's time zone
    assert "<td>Quality check</td>" in html
    assert 'value="Confirm import"' in html
    assert WorkOrder.objects.filter(shop=shop).count() == 1  # nothing saved yet
    job = WorkOrderImport.objects.get()
    assert (job.status, job.shop, job.uploaded_by, job.filename) == ("preview", shop, importer, "orders.csv")


def test_it_imports_on_confirm_and_says_what_it_did(client, importer, shop):
    upload(client, shop, SAMPLE.read_bytes(), name="november.csv")
    job = WorkOrderImport.objects.get()

    response = confirm(client, job)

    assert response.status_code == 302 and response.url == CHANGELIST_URL
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Imported november.csv into {shop}: created 40, updated 0, skipped 0."
    ]
    assert WorkOrder.objects.filter(shop=shop, source="csv").count() == 40
    order = WorkOrder.objects.get(shop=shop, number="10001")
    assert order.promised_at == dt.datetime(2026, 11, 4, 16, tzinfo=dt.UTC)
    job.refresh_from_db()
    assert (job.status, job.created) == ("done", 40)


def test_it_imports_a_preview_only_once(client, importer, shop):
    upload(client, shop, SAMPLE.read_bytes())
    job = WorkOrderImport.objects.get()
    confirm(client, job)

    response = confirm(client, job)  # double click, back button

    assert "was already imported" in str(list(get_messages(response.wsgi_request))[-1])
    job.refresh_from_db()
    assert (job.created, job.updated) == (40, 0)


def test_it_lets_only_the_uploader_confirm(client, importer, shop):
    upload(client, shop, SAMPLE.read_bytes())
    job = WorkOrderImport.objects.get()
    client.force_login(staff_user("view_workorder", "add_workorder", "change_workorder"))

    assert confirm(client, job).status_code == 404
    assert not WorkOrder.objects.exists()


def test_it_does_not_import_on_a_get_to_confirm(client, importer, shop):
    upload(client, shop, SAMPLE.read_bytes())
    job = WorkOrderImport.objects.get()

    response = client.get(reverse("admin:shops_workorder_import_csv_confirm", args=[job.pk]))

    assert response.status_code == 302
    assert not WorkOrder.objects.exists()


def test_it_shows_why_a_file_is_rejected_and_offers_no_confirm(client, importer, shop):
    response = upload(client, shop, b"%PDF-1.7 not really", name="orders.pdf")

    html = response.content.decode()
    assert "This is a PDF document, not a CSV file" in html
    assert "Confirm import" not in html


def test_it_requires_a_file(client, importer, shop):
    response = client.post(IMPORT_URL, {"shop": shop.pk})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
def export_csv(client) -> list[dict[str, str]]:
    form = client.get(reverse("admin:shops_workorder_export")).context["form"]
    data = {name: "on" for name in form.fields if name.startswith("workorderexportresource_")}
    formats = dict(form.fields["format"].choices)
    data["format"] = next(key for key, label in formats.items() if str(label).lower() == "csv")
    data["resource"] = "0"
    response = client.post(reverse("admin:shops_workorder_export"), data)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_it_escapes_spreadsheet_formulas_in_the_export(client, shop):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    WorkOrderFactory(
        shop=shop,
        number="=1+1",
        customer_name="@SUM(A1:A9)",
        services='=HYPERLINK("http://evil.example","click")',
        status_note="-2",
        vehicle_model="+1",
        customer_phone="+15555550123",
    )

    (row,) = export_csv(client)

    assert row["number"] == "'=1+1"
    assert row["customer_name"] == "'@SUM(A1:A9)"
    assert row["services"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["status_note"] == "'-2"
    assert row["vehicle_model"] == "'+1"
    assert row["customer_phone"] == "'+15555550123"


def test_it_reimports_its_own_export_unchanged(client, shop):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    original = WorkOrderFactory(
        shop=shop,
        customer_name="Ann O'Neil",
        customer_phone="+15555550123",
        promised_at=dt.datetime(2026, 11, 4, 16, tzinfo=dt.UTC),
        status=WorkOrder.Status.AWAITING_APPROVAL,
        services="=Brakes",
        vin_last6="004352",
    )
    rows = export_csv(client)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    other = ShopFactory(timezone="America/Chicago")

    report = import_work_orders(shop=other, file=out.getvalue().encode())

    assert (report.created, report.errors) == (1, [])
    copy = WorkOrder.objects.get(shop=other)
    for field in (
        "number",
        "customer_name",
        "customer_phone",
        "vehicle_year",
        "vehicle_make",
        "vehicle_model",
        "vin_last6",
        "status",
        "services",
        "promised_at",
    ):
        assert getattr(copy, field) == getattr(original, field), field
