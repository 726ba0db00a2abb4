from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import random
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

import shops.importing.rows
from shops.importing import (
    RowError,
    import_work_orders,
    phone_to_e164,
    run_work_order_import,
    split_vehicle,
    start_work_order_import,
)
from shops.models import WorkOrder, WorkOrderImport
from shops.phones import to_e164
from shops.tasks import import_work_orders_task
from shops.tests.factories import BusinessHoursFactory, ShopFactory, UserFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
UTC = dt.UTC
HEADER = [
    "RO Number",
    "Customer Name",
    "Customer Phone",
    "Year",
    "Make",
    "Model",
    "Status",
    "Services",
    "Promised Date",
]


def row(
    number: str = "1001",
    name: str = "John Smith",
    phone: str = "(555) 555-0123",
    year: str = "2018",
    make: str = "Honda",
    model: str = "Civic",
    status: str = "In Progress",
    services: str = "Oil change",
    promised: str = "11/04/2026 10:00 AM",
) -> list[str]:
    return [number, name, phone, year, make, model, status, services, promised]


def make_csv(rows: list[list[str]], header: list[str] = HEADER, *, delimiter: str = ",", newline: str = "\r\n") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def run(shop, text: str | bytes, **kwargs):
    data = text.encode() if isinstance(text, str) else text
    return import_work_orders(shop=shop, file=data, **kwargs)


@pytest.fixture
def shop():
    return ShopFactory(timezone="America/Chicago")


def test_it_imports_the_sample_export(shop):
    report = import_work_orders(shop=shop, file=DATA / "work_orders_sample.csv")

    assert (report.created, report.updated, report.skipped, report.errors, report.rejected) == (40, 0, 0, [], None)
    assert report.exit_code == 0
    order = WorkOrder.objects.get(shop=shop, number="10001")
    assert order.customer_name == "Thi Taylor"
    assert order.customer_last_name == "taylor"
    assert order.customer_phone == "+13556040791"
    assert (order.vehicle_year, order.vehicle_make, order.vehicle_model) == (2010, "Subaru", "Outback")
    assert order.status == WorkOrder.Status.RECEIVED
    assert order.services == "Rotor replacement; Timing belt; Brake pads front"
    assert order.promised_at == dt.datetime(2026, 11, 4, 16, 0, tzinfo=UTC)  # 10:00 AM in Chicago (CST)
    assert order.source == "csv"
    assert WorkOrder.objects.get(shop=shop, number="10021").status == WorkOrder.Status.READY_FOR_PICKUP


def test_it_updates_on_reimport_without_duplicates(shop):
    import_work_orders(shop=shop, file=DATA / "work_orders_sample.csv")
    changed = (DATA / "work_orders_sample.csv").read_text().replace("10001,Thi Taylor", "10001,Thi Taylor-Ng")

    report = run(shop, changed)

    assert (report.created, report.updated, report.skipped) == (0, 40, 0)
    assert WorkOrder.objects.filter(shop=shop).count() == 40
    assert WorkOrder.objects.get(shop=shop, number="10001").customer_name == "Thi Taylor-Ng"


def test_it_keeps_other_shops_work_orders_apart(shop):
    other = WorkOrderFactory(number="10001", customer_name="Someone Else")

    import_work_orders(shop=shop, file=DATA / "work_orders_sample.csv")

    other.refresh_from_db()
    assert other.customer_name == "Someone Else"


@pytest.mark.parametrize("batch_size", [1000, 2])
def test_it_keeps_the_last_row_of_a_number_repeated_in_the_file_and_counts_it_once(shop, batch_size):
    text = make_csv(
        [row("1", status="Received"), row("2"), row("1", status="Ready"), row("3"), row("1", status="Picked Up")]
    )

    report = run(shop, text, batch_size=batch_size)

    assert (report.created, report.updated, report.skipped) == (3, 0, 0)
    assert WorkOrder.objects.get(shop=shop, number="1").status == WorkOrder.Status.PICKED_UP


def test_it_counts_a_repeated_number_once_in_a_dry_run_too(shop):
    report = run(shop, make_csv([row("1"), row("2"), row("1")]), dry_run=True, batch_size=1)
    assert (report.created, report.updated) == (2, 0)


def test_it_reports_the_same_in_a_dry_run_and_writes_nothing(shop):
    WorkOrderFactory(shop=shop, number="10001", status=WorkOrder.Status.ESTIMATE)

    report = import_work_orders(shop=shop, file=DATA / "work_orders_sample.csv", dry_run=True)

    assert (report.created, report.updated, report.skipped) == (39, 1, 0)
    assert WorkOrder.objects.filter(shop=shop).count() == 1
    assert WorkOrder.objects.get(shop=shop).status == WorkOrder.Status.ESTIMATE


# ---------------------------------------------------------------------------------------------
# Encodings, line endings, delimiters
# ---------------------------------------------------------------------------------------------
def test_it_reads_utf8_with_a_bom(shop):
    report = run(shop, make_csv([row(name="Zoë Brontë")]).encode("utf-8-sig"))
    assert report.created == 1
    assert WorkOrder.objects.get(shop=shop).customer_name == "Zoë Brontë"


def test_it_reads_cp1252(shop):
    report = run(shop, make_csv([row(name="José Muñoz", services="Brakes – front “urgent”")]).encode("cp1252"))

    assert report.created == 1
    order = WorkOrder.objects.get(shop=shop)
    assert order.customer_name == "José Muñoz"
    assert order.customer_last_name == "muñoz"
    assert order.services == "Brakes – front “urgent”"


def test_it_reads_cp1252_that_first_appears_after_a_long_ascii_start(shop):
    rows = [row(str(n)) for n in range(1200)]  # ~80 KB of plain ASCII before the first accent
    data = make_csv(rows).encode("ascii") + "9999,José Muñoz,,,,,Received,,\r\n".encode("cp1252")

    report = run(shop, data)

    assert report.created == 1201
    assert WorkOrder.objects.get(shop=shop, number="9999").customer_name == "José Muñoz"


def test_it_reads_another_systems_cp1252_semicolon_export(shop):
    report = import_work_orders(shop=shop, file=DATA / "other_system_cp1252_semicolon.csv")

    assert (report.created, report.skipped, report.errors) == (2, 0, [])
    first = WorkOrder.objects.get(shop=shop, number="T-1")
    assert (first.customer_name, first.customer_last_name, first.customer_phone) == (
        "Muñoz, José",
        "muñoz",
        "+15555550101",
    )
    assert (first.vehicle_year, first.vehicle_make, first.vehicle_model) == (2019, "Land Rover", "Discovery Sport")
    assert first.status == WorkOrder.Status.IN_PROGRESS
    second = WorkOrder.objects.get(shop=shop, number="T-2")
    assert second.status == WorkOrder.Status.WAITING_ON_PARTS
    assert second.status_note == "Waiting on compressor"
    assert second.promised_at == dt.datetime(2026, 11, 5, 20, 30, tzinfo=UTC)


def test_it_reads_utf16_tab_separated_unicode_text_from_excel(shop):
    report = run(shop, make_csv([row(name="Zoë Brontë")], delimiter="\t").encode("utf-16"))
    assert report.created == 1
    assert WorkOrder.objects.get(shop=shop).customer_name == "Zoë Brontë"


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_it_reads_any_line_ending_and_reports_physical_line_numbers(shop, newline):
    text = make_csv([row("1"), row("2", phone="12"), row("3", services="one,\nline two")], newline=newline) + (
        newline.join([",".join(row("4", status="Bogus")), ""])
    )

    report = run(shop, text)

    assert report.created == 2
    assert [(e.line, e.column) for e in report.errors] == [(3, "Customer Phone"), (6, "Status")]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_it_finds_the_delimiter(shop, delimiter):
    report = run(shop, make_csv([row("1", name="Smith, John"), row("2")], delimiter=delimiter))
    assert report.created == 2
    assert WorkOrder.objects.get(shop=shop, number="1").customer_name == "Smith, John"


@pytest.mark.parametrize(
    "file_kind", ["bytes", "str path", "Path", "open file", "uploaded file", "non-seekable stream"]
)
def test_it_accepts_bytes_paths_and_files(shop, tmp_path, file_kind):
    data = make_csv([row("1")]).encode()
    path = tmp_path / "orders.csv"
    path.write_bytes(data)

    class Pipe:
        def __init__(self) -> None:
            self._buffer = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._buffer.read(size)

        def seekable(self) -> bool:
            return False

    with path.open("rb") as fh:
        file = {
            "bytes": data,
            "str path": str(path),
            "Path": path,
            "open file": fh,
            "uploaded file": SimpleUploadedFile("orders.csv", data),
            "non-seekable stream": Pipe(),
        }[file_kind]
        report = import_work_orders(shop=shop, file=file)

    assert report.created == 1


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "cell", "field", "expected"),
    [
        *[(h, "A-77", "number", "A-77") for h in ["RO#", "ro #", "RO Number", "RO", "Repair Order", "Repair Order #"]],
        *[(h, "A-77", "number", "A-77") for h in ["Work Order", "WO#", "Invoice #", "ORDER NUMBER", "r.o. number"]],
        *[(h, "Ana Lee", "customer_name", "Ana Lee") for h in ["Customer", "Customer Name", "NAME", "Client"]],
        *[
            (h, "555.555.0123", "customer_phone", "+15555550123")
            for h in ["Phone", "Customer Phone", "Cell", "Mobile", "Phone Number", "Tel", "phone_number"]
        ],
        *[(h, "2019", "vehicle_year", 2019) for h in ["Year", "Vehicle Year"]],
        *[(h, "Toyota", "vehicle_make", "Toyota") for h in ["Make", "Vehicle Make"]],
        *[(h, "RAV4", "vehicle_model", "RAV4") for h in ["Model", "vehicle model"]],
        *[(h, "ABC 123", "vehicle_plate", "ABC 123") for h in ["Plate", "License", "License Plate"]],
        *[(h, "1hgcm82633a004352", "vin_last6", "004352") for h in ["VIN", "vin #"]],
        *[(h, "Ready", "status", "ready_for_pickup") for h in ["Status", "RO Status", "Job Status", "status:"]],
        *[
            (h, "Brakes", "services", "Brakes")
            for h in ["Services", "Work Requested", "Concern", "Jobs", "Description"]
        ],
        *[
            (h, "11/04/2026 10:00 AM", "promised_at", dt.datetime(2026, 11, 4, 16, tzinfo=UTC))
            for h in ["Promised Date", "Promised", "Due", "Promise Time", "ETA"]
        ],
        *[(h, "Call first", "status_note", "Call first") for h in ["Notes", "Status Note", "Comments"]],
        ("External ID", "tek-991", "external_id", "tek-991"),
    ],
)
def test_it_understands_header_synonyms(shop, header, cell, field, expected):
    columns = {"number": "RO Number", "status": "Status"}
    values = {"number": "1001", "status": "Received"}
    key = field if field in columns else "extra"
    columns[key], values[key] = header, cell

    report = run(shop, make_csv([list(values.values())], header=list(columns.values())))

    assert (report.created, report.errors, report.ignored_columns) == (1, [], [])
    assert getattr(WorkOrder.objects.get(shop=shop), field) == expected


def test_it_joins_first_and_last_name_columns(shop):
    run(shop, make_csv([["1", "Received", "Mary Ann", "O'Neil"]], header=["RO", "Status", "First Name", "Last Name"]))
    order = WorkOrder.objects.get(shop=shop)
    assert (order.customer_name, order.customer_last_name) == ("Mary Ann O'Neil", "o'neil")


def test_it_prefers_the_ro_number_over_an_invoice_number(shop):
    run(shop, make_csv([["INV-9", "RO-1", "Received"]], header=["Invoice #", "RO #", "Status"]))
    assert WorkOrder.objects.get(shop=shop).number == "RO-1"


def test_it_lists_the_columns_it_ignored(shop):
    report = run(shop, make_csv([["1", "Received", "x"]], header=["RO", "Status", "Technician"]))
    assert report.ignored_columns == ["Technician"]


@pytest.mark.parametrize(
    ("vehicle", "expected"),
    [
        ("2018 Honda Civic", (2018, "Honda", "Civic")),
        ("2019 Land Rover Range Rover Sport", (2019, "Land Rover", "Range Rover Sport")),
        ("2020 Mercedes-Benz C300", (2020, "Mercedes-Benz", "C300")),
        ("2017 Alfa Romeo Giulia", (2017, "Alfa Romeo", "Giulia")),
        ("2015 aston martin DB9", (2015, "aston martin", "DB9")),
        ("Mercedes Benz GLC 300", (None, "Mercedes Benz", "GLC 300")),
        ("'18 Ford F-150", (2018, "Ford", "F-150")),
        ("2021 Tesla", (2021, "Tesla", "")),
    ],
)
def test_it_splits_a_single_vehicle_column(shop, vehicle, expected):
    run(shop, make_csv([["1", "Received", vehicle]], header=["RO", "Status", "Vehicle"]))
    order = WorkOrder.objects.get(shop=shop)
    assert (order.vehicle_year, order.vehicle_make, order.vehicle_model) == expected


def test_it_lets_separate_year_make_model_columns_win_over_vehicle(shop):
    run(
        shop,
        make_csv(
            [["1", "Received", "2018 Honda Civic", "", "Acura"]], header=["RO", "Status", "Vehicle", "Year", "Make"]
        ),
    )
    order = WorkOrder.objects.get(shop=shop)
    assert (order.vehicle_year, order.vehicle_make, order.vehicle_model) == (2018, "Acura", "Civic")


def test_it_splits_vehicles_with_two_digit_years():
    assert split_vehicle("'98 Honda Accord") == ("98", "Honda", "Accord")


def test_it_leaves_columns_missing_from_the_file_alone_on_existing_orders(shop):
    order = WorkOrderFactory(shop=shop, number="1", status_note="Keep me", customer_phone="+15555550199")

    report = run(shop, make_csv([["1", "Ready for Pickup"]], header=["RO", "Status"]))

    assert report.updated == 1
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.READY_FOR_PICKUP
    assert (order.status_note, order.customer_phone, order.vehicle_make) == ("Keep me", "+15555550199", "Honda")


def test_it_clears_a_field_whose_cell_is_empty(shop):
    order = WorkOrderFactory(shop=shop, number="1", status_note="Old note")
    run(shop, make_csv([["1", "Received", ""]], header=["RO", "Status", "Notes"]))
    order.refresh_from_db()
    assert order.status_note == ""


def test_it_takes_off_the_formula_escape_our_export_adds(shop):
    run(shop, make_csv([row("1", phone="'+15555550123", services="'=SUM(A1)")]))
    order = WorkOrder.objects.get(shop=shop)
    assert (order.customer_phone, order.services) == ("+15555550123", "=SUM(A1)")


def test_it_allows_an_empty_phone(shop):
    report = run(shop, make_csv([row("1", phone="")]))
    assert report.errors == []
    assert WorkOrder.objects.get(shop=shop).customer_phone == ""


# ---------------------------------------------------------------------------------------------
# Statuses
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "status"),
    [
        *[(label, "estimate") for label in ["Estimate", "Quote", "ESTIMATE"]],
        *[(label, "received") for label in ["Received", "Checked In", "Checked-In", "Dropped Off", "New", "Open"]],
        ("In Shop", "received"),
        *[(label, "diagnosing") for label in ["Diagnosing", "Diagnosis", "Inspecting"]],
        *[
            (label, "awaiting_approval")
            for label in ["Awaiting Approval", "Waiting for Approval", "Pending Approval", "awaiting_approval"]
        ],
        *[
            (label, "waiting_on_parts")
            for label in ["Waiting on Parts", "Parts on Order", "Backordered", "Back-ordered"]
        ],
        *[(label, "in_progress") for label in ["In Progress", "Work-in-Progress", "WIP", "Working", "in progress"]],
        *[(label, "quality_check") for label in ["Quality Check", "QC", "Q.C.", "Road Test"]],
        *[
            (label, "ready_for_pickup")
            for label in ["Complete", "Completed", "Done", "Ready", "Ready for Pickup", "Ready for Pick-Up", "Finished"]
        ],
        ("ready_for_pickup", "ready_for_pickup"),
        *[(label, "picked_up") for label in ["Picked Up", "Delivered", "Closed", "Paid"]],
        *[(label, "cancelled") for label in ["Cancelled", "Canceled", "Declined", "Void"]],
    ],
)
def test_it_maps_status_labels(shop, label, status):
    report = run(shop, make_csv([row(status=label)]))
    assert report.errors == []
    assert WorkOrder.objects.get(shop=shop).status == status


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("11/04/2026 10:00 AM", (2026, 11, 4, 16, 0)),
        ("11/4/26 10:00 AM", (2026, 11, 4, 16, 0)),
        ("11/4/2026 14:30", (2026, 11, 4, 20, 30)),
        ("11/04/2026 2:30 p.m.", (2026, 11, 4, 20, 30)),
        ("11/04/2026 10am", (2026, 11, 4, 16, 0)),
        ("11/04/2026 12:00 AM", (2026, 11, 4, 6, 0)),
        ("11-04-2026 12:15 PM", (2026, 11, 4, 18, 15)),
        ("2026-11-04T10:00", (2026, 11, 4, 16, 0)),
        ("2026-11-04 10:00:00", (2026, 11, 4, 16, 0)),
        ("2026-11-04 10:00 AM", (2026, 11, 4, 16, 0)),
        ("2026-11-04T10:00:00-05:00", (2026, 11, 4, 15, 0)),
        ("2026-11-04T15:00Z", (2026, 11, 4, 15, 0)),
        ("Nov 4 2026 10:00 AM", (2026, 11, 4, 16, 0)),
        ("Wed, Nov 4, 2026 10am", (2026, 11, 4, 16, 0)),
        ("4 November 2026 14:30", (2026, 11, 4, 20, 30)),
        ("07/04/2026 10:00 AM", (2026, 7, 4, 15, 0)),  # summer: CDT is UTC-5
    ],
)
def test_it_reads_us_iso_and_written_dates_in_the_shops_time_zone(shop, text, utc):
    report = run(shop, make_csv([row(promised=text)]))
    assert report.errors == []
    assert WorkOrder.objects.get(shop=shop).promised_at == dt.datetime(*utc, tzinfo=UTC)


def test_it_uses_the_shop_not_the_server_time_zone(shop):
    shop.timezone = "America/Los_Angeles"
    shop.save()
    run(shop, make_csv([row(promised="11/04/2026 10:00 AM")]))
    assert WorkOrder.objects.get(shop=shop).promised_at == dt.datetime(2026, 11, 4, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["11/04/2026", "2026-11-04", "Nov 4, 2026"])
def test_it_reads_a_date_without_time_as_that_days_closing_time(shop, text):
    BusinessHoursFactory(shop=shop, weekday=2, opens_at=dt.time(8), closes_at=dt.time(12))  # Wednesday: split shift
    BusinessHoursFactory(shop=shop, weekday=2, opens_at=dt.time(13), closes_at=dt.time(18, 30))

    run(shop, make_csv([row(promised=text)]))

    assert WorkOrder.objects.get(shop=shop).promised_at == dt.datetime(2026, 11, 5, 0, 30, tzinfo=UTC)


def test_it_reads_a_date_without_time_as_5pm_when_the_shop_has_no_hours_that_day(shop):
    run(shop, make_csv([row(promised="11/04/2026")]))
    assert WorkOrder.objects.get(shop=shop).promised_at == dt.datetime(2026, 11, 4, 23, 0, tzinfo=UTC)


def test_it_combines_separate_promised_date_and_time_columns(shop):
    header = ["RO", "Status", "Promised Date", "Promised Time"]
    run(
        shop, make_csv([["1", "Received", "11/04/2026", "2:30 PM"], ["2", "Received", "11/04/2026", ""]], header=header)
    )
    assert WorkOrder.objects.get(shop=shop, number="1").promised_at == dt.datetime(2026, 11, 4, 20, 30, tzinfo=UTC)
    assert WorkOrder.objects.get(shop=shop, number="2").promised_at == dt.datetime(2026, 11, 4, 23, 0, tzinfo=UTC)


def test_it_stores_no_promise_for_an_empty_date(shop):
    run(shop, make_csv([row(promised="")]))
    assert WorkOrder.objects.get(shop=shop).promised_at is None


# ---------------------------------------------------------------------------------------------
# Row errors: reported with line, column and reason; good rows still import
# ---------------------------------------------------------------------------------------------
def test_it_reports_each_bad_row_and_imports_the_good_ones(shop):
    next_year = shop.local_now().year + 1
    rows = [
        row("1"),  # line 2
        row(""),  # 3
        row("3", phone="555-01"),  # 4
        row("4", year="1899"),  # 5
        row("5", year=str(next_year + 1)),  # 6
        row("6", year="new"),  # 7
        row("7", status="Sorta Done"),  # 8
        row("8", status=""),  # 9
        row("9", promised="31/12/2026"),  # 10
        row("10", promised="04.11.2026"),  # 11
        row("11", make="M" * 41),  # 12
        row("12", phone="x", status="??"),  # 13: two problems, one skipped row
        row("14"),  # 14
    ]

    report = run(shop, make_csv(rows))

    assert (report.created, report.skipped, report.exit_code) == (2, 11, 1)
    assert sorted(WorkOrder.objects.filter(shop=shop).values_list("number", flat=True)) == ["1", "14"]
    got = [(e.line, e.column, e.reason) for e in report.errors]
    assert got == [
        (3, "RO Number", "RO number is missing"),
        (4, "Customer Phone", "not a usable phone number"),
        (5, "Year", f"not a vehicle year between 1900 and {next_year}: '1899'"),
        (6, "Year", f"not a vehicle year between 1900 and {next_year}: '{next_year + 1}'"),
        (7, "Year", f"not a vehicle year between 1900 and {next_year}: 'new'"),
        (8, "Status", "unknown status 'Sorta Done'"),
        (9, "Status", "status is empty"),
        (10, "Promised Date", "not a date we can read: '31/12/2026' (use MM/DD/YYYY, YYYY-MM-DD or Nov 4 2026)"),
        (11, "Promised Date", "not a date we can read: '04.11.2026' (use MM/DD/YYYY, YYYY-MM-DD or Nov 4 2026)"),
        (12, "Make", "longer than 40 characters"),
        (13, "Customer Phone", "not a usable phone number"),
        (13, "Status", "unknown status '??'"),
    ]


def test_it_reports_a_nul_byte_after_the_start_of_the_file_as_a_row_error(shop):
    # A NUL near the start rejects the file as binary; further in, it is one bad row.
    rows = [row(str(n)) for n in range(1200)] + [row("x", name="Nul\x00Byte"), row("last")]

    report = run(shop, make_csv(rows))

    assert report.created == 1201
    assert report.errors == [RowError(1202, "Customer Name", "contains a NUL character (binary data?)")]


def test_it_reports_a_bad_year_in_the_vehicle_column_against_that_column(shop):
    report = run(shop, make_csv([["1", "Received", "1850 Benz Motorwagen"]], header=["RO", "Status", "Vehicle"]))
    assert report.errors == [RowError(2, "Vehicle", report.errors[0].reason)]
    assert "1850" in report.errors[0].reason


def test_it_reports_a_time_without_a_date(shop):
    header = ["RO", "Status", "Promised Date", "Promised Time"]
    report = run(
        shop, make_csv([["1", "Received", "", "10:00"], ["2", "Received", "11/4/2026", "25:00"]], header=header)
    )
    assert [(e.line, e.column) for e in report.errors] == [(2, "Promised Time"), (3, "Promised Time")]


def test_it_keeps_the_first_errors_and_counts_the_rest(shop, monkeypatch):
    monkeypatch.setattr("shops.importing.report.MAX_ERRORS", 3)
    report = run(shop, make_csv([row(str(n), status="Nope") for n in range(5)]))
    assert (len(report.errors), report.errors_omitted, report.skipped) == (3, 2, 5)


# ---------------------------------------------------------------------------------------------
# Rejected files change nothing
# ---------------------------------------------------------------------------------------------
def _xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (random.Random(1).randbytes(4096), "binary file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF document"),
        (_xlsx(), "xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "xls"),
        (b"<!DOCTYPE html><html><body>Login</body></html>", "HTML"),
        (b"RO Number,Status\r\n1001,Ready\x00\x00\x00\r\n", "binary file"),
        (b"", "empty"),
        (b"\r\n  \r\n", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (make_csv([]).encode(), "header but no work orders"),
        (make_csv([]).encode() + b"\r\n,,,\r\n\r\n", "header but no work orders"),
        (make_csv([["10001", "Ready"]], header=["RO Number", "Phase"]).encode(), "Missing required column(s): Status"),
        (make_csv([["10001", "Ready"]], header=["Ticket", "Status"]).encode(), "Missing required column(s): RO number"),
    ],
    ids=[
        "random bytes",
        "png",
        "pdf",
        "xlsx",
        "xls",
        "html",
        "nul bytes",
        "empty",
        "blank lines",
        "bom only",
        "header only",
        "header and blank rows",
        "no status column",
        "no number column",
    ],
)
def test_it_rejects_a_file_it_cannot_use_and_changes_nothing(shop, data, says):
    order = WorkOrderFactory(shop=shop, number="10001", status=WorkOrder.Status.IN_PROGRESS)

    report = run(shop, data)

    assert report.rejected and says in report.rejected
    assert (report.created, report.updated, report.exit_code) == (0, 0, 2)
    assert WorkOrder.objects.filter(shop=shop).count() == 1
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS


def test_it_says_which_columns_it_found_when_required_ones_are_missing(shop):
    report = run(shop, make_csv([["1", "x"]], header=["Ticket", "Phase"]))
    assert report.rejected == "Missing required column(s): RO number, Status. Found: 'Ticket', 'Phase'."


def test_it_rejects_a_missing_file_without_raising(shop, tmp_path):
    report = import_work_orders(shop=shop, file=tmp_path / "nope.csv")
    assert report.rejected and "could not be read" in report.rejected


# ---------------------------------------------------------------------------------------------
# Progress, logging, phones
# ---------------------------------------------------------------------------------------------
def test_it_reports_progress_after_each_batch(shop):
    calls = []
    run(shop, make_csv([row(str(n)) for n in range(5)]), batch_size=2, progress=lambda *a: calls.append(a))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_it_reports_progress_without_a_total_for_a_stream_it_cannot_measure(shop):
    data = make_csv([row(str(n)) for n in range(3)]).encode()

    class Pipe:
        def __init__(self) -> None:
            self._buffer = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._buffer.read(size)

    calls = []
    import_work_orders(shop=shop, file=Pipe(), batch_size=2, progress=lambda *a: calls.append(a))
    assert calls == [(2, None), (3, 3)]


def test_it_logs_a_summary_without_phone_numbers(shop, caplog):
    with caplog.at_level(logging.INFO, logger="shops.importing"):
        run(shop, make_csv([row("1", phone="(555) 555-0123"), row("2", phone="bad")]))
    assert "created=1" in caplog.text
    assert "skipped=1" in caplog.text
    assert "5550123" not in caplog.text


def test_its_phone_shortcut_agrees_with_to_e164():
    rng = random.Random(5)
    shapes = ["({}) {}-{}", "{}-{}-{}", "{}.{}.{}", "{}{}{}", "{} {} {}"]
    for _ in range(3000):
        raw = rng.choice(shapes).format(
            f"{rng.randint(0, 999):03d}", f"{rng.randint(0, 999):03d}", f"{rng.randint(0, 9999):04d}"
        )
        assert phone_to_e164(raw, "US") == to_e164(raw, "US"), raw
    for raw in ["+44 20 7946 0958", "1-555-555-0123", "555-0123", "(555) 555-0123 ext 4"]:
        assert phone_to_e164(raw, "US") == to_e164(raw, "US"), raw


# ---------------------------------------------------------------------------------------------
# Background import (dashboard upload → Celery task)
# ---------------------------------------------------------------------------------------------
def _stored_import(shop, content: bytes, **kwargs) -> WorkOrderImport:
    return WorkOrderImport.objects.create(shop=shop, filename="orders.csv", content=content, **kwargs)


def test_it_queues_an_upload_after_commit_and_imports_it(shop, django_capture_on_commit_callbacks):
    user = UserFactory()
    content = (DATA / "work_orders_sample.csv").read_bytes()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = start_work_order_import(shop=shop, uploaded_by=user, filename="orders.csv", content=content)
        assert WorkOrder.objects.filter(shop=shop).count() == 0  # nothing runs before the commit

    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == WorkOrderImport.Status.DONE
    assert (job.created, job.updated, job.skipped, job.errors, job.rejected) == (40, 0, 0, [], "")
    assert (job.rows_done, job.rows_total) == (40, 40)
    assert job.finished_at is not None
    assert bytes(job.content) == b""  # customers' phone numbers don't outlive the import
    assert WorkOrder.objects.filter(shop=shop).count() == 40


def test_it_runs_a_queued_import_only_once(shop):
    job = _stored_import(shop, (DATA / "work_orders_sample.csv").read_bytes())

    import_work_orders_task(job.pk)
    import_work_orders_task(job.pk)  # a redelivered message, a second worker, a retry

    job.refresh_from_db()
    assert (job.status, job.created, job.updated) == (WorkOrderImport.Status.DONE, 40, 0)
    assert WorkOrder.objects.filter(shop=shop).count() == 40


@pytest.mark.parametrize("status", [WorkOrderImport.Status.RUNNING, WorkOrderImport.Status.PREVIEW])
def test_it_leaves_an_import_it_cannot_claim_alone(shop, status):
    job = _stored_import(shop, make_csv([row("1")]).encode(), status=status)

    assert run_work_order_import(import_id=job.pk) is None

    job.refresh_from_db()
    assert job.status == status
    assert not WorkOrder.objects.filter(shop=shop).exists()


def test_it_writes_progress_while_it_imports(shop, monkeypatch):
    job = _stored_import(shop, make_csv([row(str(n)) for n in range(5)]).encode())
    seen = []
    real_import = import_work_orders

    def import_in_batches_of_two(**kwargs):
        def progress(done, total):
            kwargs["progress"](done, total)
            seen.append(WorkOrderImport.objects.values_list("rows_done", "rows_total").get(pk=job.pk))

        return real_import(**{**kwargs, "batch_size": 2, "progress": progress})

    monkeypatch.setattr("shops.importing.jobs.import_work_orders", import_in_batches_of_two)
    run_work_order_import(import_id=job.pk)

    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_it_stores_row_errors_and_rejections(shop):
    with_errors = _stored_import(shop, make_csv([row("1"), row("2", status="Nope")]).encode())
    rejected = _stored_import(shop, b"%PDF-1.4 ...")

    run_work_order_import(import_id=with_errors.pk)
    run_work_order_import(import_id=rejected.pk)

    with_errors.refresh_from_db()
    assert (with_errors.created, with_errors.skipped) == (1, 1)
    assert with_errors.errors == [{"line": 3, "column": "Status", "reason": "unknown status 'Nope'"}]
    rejected.refresh_from_db()
    assert rejected.status == WorkOrderImport.Status.DONE
    assert "PDF" in rejected.rejected


def test_it_marks_a_crashed_import_failed_and_keeps_the_file(shop, monkeypatch):
    job = _stored_import(shop, b"RO,Status\r\n1,Ready\r\n")

    def crash(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("shops.importing.jobs.import_work_orders", crash)
    run_work_order_import(import_id=job.pk)

    job.refresh_from_db()
    assert job.status == WorkOrderImport.Status.FAILED
    assert job.finished_at is not None
    assert bytes(job.content) == b"RO,Status\r\n1,Ready\r\n"


def test_it_keeps_the_rows_before_a_record_the_csv_reader_gives_up_on(shop):
    huge = "x" * 200_000  # over the csv module's field size limit
    report = run(shop, make_csv([row("1"), row("2", services=huge), row("3")]))

    assert report.created == 1
    assert [(e.line, e.column) for e in report.errors] == [(3, "")]
    assert report.errors[0].reason.startswith("stopped reading here: field larger than field limit")
    assert report.exit_code == 1


def test_it_skips_only_the_row_the_database_refuses(shop, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    monkeypatch.setitem(shops.importing.rows.MAX_LENGTH, "vehicle_plate", 100)  # let a too-long plate past our checks
    header = ["RO", "Status", "Plate"]
    rows = [["1", "Received", "OK1"], ["2", "Received", "P" * 20], ["3", "Received", "OK3"]]

    report = run(shop, make_csv(rows, header))

    assert (report.created, report.skipped) == (2, 1)
    assert [(e.line, e.column) for e in report.errors] == [(3, "")]
    assert report.errors[0].reason.startswith("could not be saved: value too long")
    assert sorted(WorkOrder.objects.filter(shop=shop).values_list("number", flat=True)) == ["1", "3"]
