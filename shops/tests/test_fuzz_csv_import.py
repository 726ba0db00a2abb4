"""Fuzzing the CSV import (issue #7) with hypothesis: random bytes, random headers and cells, every
encoding, delimiter and line end a file may come in. Whatever the file, `import_work_orders` (the one
service behind the admin page, `manage.py import_work_orders` and the dashboard upload) answers with a
report instead of raising, names the line of every row error, changes nothing for a rejected file or a
dry run, and never touches another shop's work orders or a work order the file does not name."""

from __future__ import annotations

import codecs
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from shops.importing import HEADER_SYNONYMS, STATUS_SYNONYMS, ImportReport, import_work_orders
from shops.models import WorkOrder
from shops.tests.factories import BusinessHoursFactory, ShopFactory, WorkOrderFactory

pytestmark = pytest.mark.django_db

# Work orders every example starts from. The file may name the first ones (and the other shop's
# numbers, which must not matter); "KEEP-" numbers never appear in a file, so they must never change.
NAMED = ["1001", "1002", "1003"]
UNNAMED = ["KEEP-1", "KEEP-2"]
FIELDS = [f.attname for f in WorkOrder._meta.concrete_fields]


@pytest.fixture
def shops():
    shop, other = ShopFactory(), ShopFactory()
    BusinessHoursFactory(shop=shop, weekday=2, closes_at=dt.time(18, 0))
    for number in NAMED + UNNAMED:
        WorkOrderFactory(shop=other, number=number, status=WorkOrder.Status.DIAGNOSING)
    return shop, other


def reset(shop) -> None:
    WorkOrder.objects.filter(shop=shop).delete()
    for number in NAMED + UNNAMED:
        WorkOrderFactory(shop=shop, number=number, status=WorkOrder.Status.IN_PROGRESS, status_note="baseline")


def snapshot(**filters: Any) -> dict[tuple[int, str], dict[str, Any]]:
    rows = WorkOrder.objects.filter(**filters).values(*FIELDS)
    return {(row["shop_id"], row["number"]): row for row in rows}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def _spellings(name: str) -> st.SearchStrategy[str]:
    """A header name as exports write it: any case, stray spaces around it."""
    return st.tuples(
        st.sampled_from(["", " ", "  ", "\t"]),
        st.sampled_from([name, name.upper(), name.lower(), name.title(), name.replace(" ", "")]),
        st.sampled_from(["", " ", "\u00a0"]),
    ).map("".join)


KNOWN_HEADERS = st.sampled_from([name for names in HEADER_SYNONYMS.values() for name in names]).flatmap(_spellings)
HEADERS = st.one_of(KNOWN_HEADERS, KNOWN_HEADERS, st.text(max_size=20), st.just(""))

STATUSES = st.sampled_from([label for labels in STATUS_SYNONYMS.values() for label in labels] + ["", "Lost"])
DATES = st.sampled_from(
    [
        "11/04/2026",
        "11/4/26 2:30 PM",
        "2026-11-04T10:00",
        "2026-11-04T10:00-05:00",
        "Nov 4 2026",
        "Wed, Nov 4, 2026 3pm",
        "0001-01-01T00:00+05:00",  # the first day there is, east of UTC: before the first UTC instant
        "9999-12-31T23:00-05:00",  # the last day there is, west of UTC: after the last UTC instant
        "12/31/9999 11:00 PM",
        "01/01/0001 12:00 AM",
        "1/1/1",
        "31/31/2026",
        "2026-02-30",
        "tomorrow",
    ]
)
CELLS = st.one_of(
    st.sampled_from(NAMED + ["2001", "2002", ""]),
    STATUSES,
    DATES,
    st.sampled_from(["(555) 555-0123", "+15555550188", "555-0123 ext 4", "+999", "call me", "10:30 am", "25:00"]),
    st.sampled_from(["2018 Honda Civic", "Land Rover Range Rover", "'18", "1899", "2018.0", "99999999999"]),
    st.sampled_from(["=1+1", '\'=HYPERLINK("x")', "+1-1", "@SUM(A1)", "-2", "'+15555550123"]),
    st.sampled_from(['"quoted"', 'a "b" c', "line\nbreak", "cr\rcell", "semi;colon", "pipe|d", "tab\tcell"]),
    st.sampled_from(["x" * 40, "y" * 300, "z" * 5000, "\x00", "nul\x00inside"]),
    st.text(max_size=30).filter(lambda text: "KEEP" not in text.upper()),
)


@st.composite
def csv_files(draw) -> tuple[bytes, str]:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = draw(st.lists(HEADERS, min_size=1, max_size=8))
    width = len(header)
    rows = draw(
        st.lists(st.lists(CELLS, min_size=max(0, width - 2), max_size=width + 2), max_size=8),
    )

    def quote(cell: str) -> str:
        if draw(st.booleans()) or any(ch in cell for ch in (delimiter, '"', "\n", "\r")):
            return '"' + cell.replace('"', '""') + '"'
        return cell

    lines = [delimiter.join(quote(cell) for cell in row) for row in [header, *rows]]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), "")  # a blank line anywhere
    text = newline.join(lines) + draw(st.sampled_from(["", newline, "\x1a"]))
    if draw(st.integers(0, 9)) == 0:
        text += newline + "1001" + delimiter + "Ready" + delimiter + "w" * 200_000  # past csv's field limit
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le"]))
    data = text.encode(encoding, errors="replace")
    if encoding == "utf-16-le":  # no BOM: the importer may not recognise it, and must still cope
        data = codecs.BOM_UTF16_LE + data if draw(st.booleans()) else data
    return data, encoding


FILES = st.one_of(
    csv_files(),
    st.binary(max_size=2000).map(lambda data: (data, "bytes")),
    st.text(max_size=500).map(lambda text: (text.encode("utf-8", errors="surrogatepass"), "text")),
)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
def check_report(report: ImportReport, data: bytes) -> None:
    assert isinstance(report, ImportReport)
    physical_lines = max(data.count(b"\n"), data.count(b"\r"), data.count(b"\n\x00"), data.count(b"\x00\n")) + 1
    for error in report.errors:
        # Every row error names a line after the header (line 1 at the earliest) that is in the file.
        assert 2 <= error.line <= physical_lines, error
        assert error.reason
    if report.rejected:
        assert report.created == report.updated == 0
        assert report.errors == []


@given(file=FILES, dry_run=st.booleans(), batch_size=st.sampled_from([1, 2, 1000]))
def test_it_answers_any_file_with_a_report_and_changes_only_the_rows_the_file_names(shops, file, dry_run, batch_size):
    shop, other = shops
    reset(shop)
    data, how = file
    note(f"{how}: {data[:300]!r}")
    mine, theirs = snapshot(shop=shop), snapshot(shop=other)

    report = import_work_orders(shop=shop, file=data, dry_run=dry_run, batch_size=batch_size)
    note(repr(report))

    check_report(report, data)
    after = snapshot(shop=shop)
    assert snapshot(shop=other) == theirs
    for number in UNNAMED:
        assert after[(shop.pk, number)] == mine[(shop.pk, number)]
    if report.rejected or dry_run:
        assert after == mine
    else:
        created = after.keys() - mine.keys()
        assert len(created) == report.created
        changed = {k for k in mine.keys() & after.keys() if after[k] != mine[k]}
        assert len(changed) <= report.updated
        for row in after.values():
            assert row["status"] in WorkOrder.Status.values
            assert row["number"].strip() == row["number"] != ""
            assert "\x00" not in "".join(str(value) for value in row.values())


@given(rows=st.lists(st.tuples(st.sampled_from(NAMED + ["2001"]), DATES), min_size=1, max_size=5))
def test_it_reports_a_promised_date_it_cannot_store_as_a_row_error(shops, rows):
    shop, other = shops
    reset(shop)
    data = "\n".join(["RO Number,Status,Promised Date", *(f"{n},Ready,{date}" for n, date in rows)]).encode()
    theirs = snapshot(shop=other)

    report = import_work_orders(shop=shop, file=data)

    check_report(report, data)
    assert report.rejected is None
    assert report.created + report.updated + report.skipped >= len({n for n, _ in rows})
    assert snapshot(shop=other) == theirs
    for row in snapshot(shop=shop).values():
        promised = row["promised_at"]
        assert promised is None or promised.tzinfo is not None
