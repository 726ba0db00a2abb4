"""The one CSV import of work orders, used by the admin page, `manage.py import_work_orders` and the
dashboard upload (through `start_work_order_import` and the Celery task in `shops.tasks`).

What a file may look like: whatever a shop-management system or a spreadsheet exports. UTF-8 with or
without BOM, cp1252/Latin-1, UTF-16 with BOM; CRLF, LF or CR line ends; comma, semicolon, tab or pipe
delimited; headers in the many spellings listed in `HEADER_SYNONYMS`; statuses in `STATUS_SYNONYMS`.

Decisions worth knowing:
- Status column is required, like the RO number: a file without one is rejected. Importing "received"
  for every row instead would silently move cars backwards on a re-import. An empty or unknown status
  is a row error.
- "In Shop" means `received`: it says the car is there, not that anyone is working on it, and the
  receptionist must not tell a caller work has started when it may not have.
- Dates are US month-first (`11/4/26`, `11/04/2026 10:00 AM`, `14:30`), ISO (`2026-11-04`,
  `2026-11-04T10:00`, with an offset or `Z`) or written out (`Nov 4 2026`). Times without an offset
  are in the shop's time zone. A date without a time means "that day": it is stored as the shop's
  closing time that weekday (latest `BusinessHours.closes_at`), or 17:00 when the shop has no hours
  that day, so the receptionist says "by the end of Wednesday" rather than "at midnight".
- Columns missing from the file are left alone on work orders that already exist (a file with only
  RO number and Status updates statuses and nothing else); an empty cell in a present column clears it.
- A cell that our own export escaped against spreadsheet formulas (`'=…`, `'+1…`) is un-escaped.

Transactions: each batch is written in its own transaction. Everything that can make the whole file
unusable (not a CSV, empty, header only, required columns missing) is decided before the first write,
so a rejected file changes nothing; row errors never block good rows; progress written by the
callback is visible to other connections while the import runs. An import that crashes half-way
leaves the batches before the crash, and running it again is safe (it updates by RO number).

Memory: rows are held one batch at a time. The only thing that grows with the file is the set of RO
numbers already seen (about 100 bytes each), which is how a number repeated in a later batch is
counted once.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from django.db import DataError, IntegrityError, models, transaction
from django.utils import timezone

from shops.models import BusinessHours, Shop, WorkOrder, WorkOrderImport
from shops.phones import to_e164

logger = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
MAX_ERRORS = 1000  # kept in the report; `skipped` and `errors_omitted` still count every one
PREVIEW_ROWS = 20
DATE_ONLY_FALLBACK_CLOSE = dt.time(17, 0)

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based physical line in the file; the header is line 1
    column: str  # the column's name as written in the file's header ("" when not about one column)
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected: str | None = None  # why the whole file was refused; nothing was changed
    errors_omitted: int = 0  # row errors beyond MAX_ERRORS, counted but not kept
    ignored_columns: list[str] = field(default_factory=list)  # header cells we did not understand
    preview: list[dict[str, Any]] = field(default_factory=list)  # first PREVIEW_ROWS rows, as stored

    @property
    def exit_code(self) -> int:
        """0 clean, 1 some rows skipped, 2 file rejected."""
        if self.rejected:
            return 2
        return 1 if self.skipped or self.errors else 0

    def add_error(self, error: RowError) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)
        else:
            self.errors_omitted += 1


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------
def _key(text: str) -> str:
    """Case- and punctuation-insensitive key: 'Repair Order #' → 'repairordernumber'."""
    return re.sub(r"[^0-9a-z]", "", text.lower().replace("#", "number"))


HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": (
        "RO#", "RO Number", "RO", "RO No", "Repair Order", "Repair Order #", "Work Order", "Work Order #",
        "WO#", "WO", "Invoice #", "Invoice", "Order Number", "Order #", "Number",
    ),
    "customer_name": ("Customer", "Customer Name", "Name", "Client", "Client Name"),
    "first_name": ("First Name", "First", "Customer First Name"),
    "last_name": ("Last Name", "Last", "Surname", "Customer Last Name"),
    "customer_phone": (
        "Phone", "Customer Phone", "Cell", "Cell Phone", "Mobile", "Mobile Phone", "Phone Number", "Tel",
        "Telephone",
    ),
    "vehicle_year": ("Year", "Vehicle Year", "Yr"),
    "vehicle_make": ("Make", "Vehicle Make"),
    "vehicle_model": ("Model", "Vehicle Model"),
    "vehicle": ("Vehicle", "Year Make Model", "YMM", "Car"),
    "vehicle_plate": (
        "Plate", "License", "License Plate", "Licence", "Licence Plate", "Plate Number", "Tag", "Vehicle Plate",
    ),
    "vin": ("VIN", "VIN #", "VIN Last 6"),
    "status": ("Status", "RO Status", "Job Status", "Work Order Status", "Order Status"),
    "services": ("Services", "Service", "Work Requested", "Concern", "Concerns", "Jobs", "Job", "Description"),
    "promised": (
        "Promised Date", "Promised", "Promise Date", "Promised At", "Promised By", "Due", "Due Date",
        "Promise Time", "Promised Time", "Due Time", "ETA",
    ),
    "status_note": ("Notes", "Note", "Status Note", "Comments", "Comment", "Remarks"),
    "external_id": ("External ID", "Ext ID", "Source ID"),
}  # fmt: skip
# key → (field, rank): when two columns mean the same field, the earlier synonym wins ("RO #" over
# "Invoice #"), then the earlier column; an empty cell falls through to the next column.
_HEADER_KEYS = {
    _key(name): (canon, rank) for canon, names in HEADER_SYNONYMS.items() for rank, name in enumerate(names)
}

_S = WorkOrder.Status
STATUS_SYNONYMS: dict[str, tuple[str, ...]] = {
    _S.ESTIMATE: ("Estimate", "Quote", "Quoted", "Estimating"),
    _S.RECEIVED: ("Received", "Checked In", "Check In", "Dropped Off", "New", "Open", "In Shop", "Arrived"),
    _S.DIAGNOSING: ("Diagnosing", "Diagnosis", "Diagnostic", "Diagnostics", "Inspecting", "Inspection"),
    _S.AWAITING_APPROVAL: (
        "Awaiting Approval", "Waiting for Approval", "Waiting on Approval", "Pending Approval", "Needs Approval",
        "Awaiting Authorization",
    ),
    _S.WAITING_ON_PARTS: (
        "Waiting on Parts", "Waiting for Parts", "Awaiting Parts", "Parts on Order", "Parts Ordered",
        "Backordered", "Back Ordered", "Backorder",
    ),
    _S.IN_PROGRESS: ("In Progress", "Work in Progress", "WIP", "Working", "In Work", "In Repair", "Repairing"),
    _S.QUALITY_CHECK: ("Quality Check", "QC", "Road Test", "Road Testing", "Final Inspection"),
    _S.READY_FOR_PICKUP: (
        "Complete", "Completed", "Done", "Ready", "Ready for Pickup", "Ready for Pick Up", "Finished",
    ),
    _S.PICKED_UP: ("Picked Up", "Delivered", "Closed", "Paid", "Posted", "Invoiced"),
    _S.CANCELLED: ("Cancelled", "Canceled", "Declined", "Void", "Voided", "Deleted"),
}  # fmt: skip
_STATUS_KEYS = {_key(name): str(status) for status, names in STATUS_SYNONYMS.items() for name in names}
_STATUS_KEYS.update({_key(value): value for value, _label in _S.choices})
_STATUS_KEYS.update({_key(label): value for value, label in _S.choices})

# Two-word makes, so "2019 Land Rover Discovery" is make "Land Rover", model "Discovery".
# Hyphenated spellings (Mercedes-Benz, Rolls-Royce) are one word already.
MULTI_WORD_MAKES = {
    ("land", "rover"),
    ("alfa", "romeo"),
    ("aston", "martin"),
    ("mercedes", "benz"),
    ("rolls", "royce"),
    ("austin", "healey"),
    ("de", "tomaso"),
    ("am", "general"),
}

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel .xls workbook"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)


# Bytes that are not UTF-8 are read as cp1252 (what Excel on Windows writes); the five bytes cp1252
# leaves undefined fall back to Latin-1, so decoding never fails.
def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


_CP1252 = [_cp1252_char(b) for b in range(256)]


def _decode_as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(_CP1252[b] for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("shops_import_cp1252", _decode_as_cp1252)
_ERRORS = "shops_import_cp1252"


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------
def import_work_orders(
    *,
    shop: Shop,
    file: BinaryIO | bytes | str | os.PathLike[str],
    source: str = "csv",
    dry_run: bool = False,
    progress: Progress | None = None,
    batch_size: int = 1000,
) -> ImportReport:
    """Create or update `shop`'s work orders from a CSV export, matched by RO number.

    `file` is an open binary file, the file's bytes, or a path. Returns an `ImportReport`; never
    raises for bad input (an unreadable file is `rejected`, a bad row is an error and is skipped).
    With `dry_run` nothing is written but the report is the same. `progress(rows_done, rows_total)`
    is called after each batch; rows are the file's lines after the header, `rows_total` is None
    when the file cannot be measured up front (a non-seekable stream), and the last call has
    `rows_done == rows_total`.
    """
    started = time.monotonic()
    report = ImportReport()
    try:
        with _binary(file) as stream:
            _Importer(
                shop=shop, source=source, dry_run=dry_run, progress=progress, batch_size=batch_size, report=report
            ).run(stream)
    except OSError as exc:
        reason = f"The file could not be read ({exc.strerror or exc})."
        if report.created or report.updated:  # batches before the failure are saved: say so
            report.add_error(RowError(0, "", reason))
        else:
            report.rejected = reason
    logger.info(
        "work order import shop=%s source=%s dry_run=%s created=%d updated=%d skipped=%d rejected=%s seconds=%.2f",
        shop.slug,
        source,
        dry_run,
        report.created,
        report.updated,
        report.skipped,
        report.rejected or "-",
        time.monotonic() - started,
    )
    return report


@contextmanager
def _binary(file: BinaryIO | bytes | str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    if isinstance(file, bytes | bytearray | memoryview):
        yield io.BytesIO(file)
    elif isinstance(file, str | os.PathLike):
        with open(file, "rb") as fh:
            yield fh
    else:
        yield file  # the caller's file: theirs to close


class _Prefixed(io.RawIOBase):
    """The bytes already sniffed, then the rest of the stream: lets us read ahead without seeking."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Importer:
    def __init__(
        self,
        *,
        shop: Shop,
        source: str,
        dry_run: bool,
        progress: Progress | None,
        batch_size: int,
        report: ImportReport,
    ) -> None:
        self.shop = shop
        self.source = source
        self.dry_run = dry_run
        self.progress = progress
        self.batch_size = max(1, batch_size)
        self.report = report
        self.seen: set[str] = set()
        self.update_fields: list[str] = []

    # -- reading -------------------------------------------------------------------------------
    def run(self, stream: IO[bytes]) -> None:
        total_lines = _count_lines(stream) if self.progress else None
        head = _read_up_to(stream, SNIFF_BYTES)
        at_eof = len(head) < SNIFF_BYTES
        encoding, reason = _sniff_encoding(head, at_eof=at_eof)
        if reason:
            self.report.rejected = reason
            return
        head_text = codecs.getincrementaldecoder(encoding)(errors=_ERRORS).decode(head, final=at_eof)
        text = io.TextIOWrapper(
            io.BufferedReader(_Prefixed(head, stream)), encoding=encoding, errors=_ERRORS, newline=""
        )
        reader = csv.reader(text, delimiter=_sniff_delimiter(head_text), skipinitialspace=True)
        rows = _numbered(reader)

        try:
            header_line, header = next(((n, row) for n, row in rows if any(c.strip() for c in row)), (0, []))
        except _Unreadable as exc:
            self.report.rejected = f"This does not read as a CSV file ({exc.reason})."
            return
        if not header:
            self.report.rejected = "The file is empty."
            return
        parser = _RowParser(shop=self.shop, header=header)
        if parser.missing:
            found = ", ".join(repr(h.strip()) for h in header if h.strip())
            self.report.rejected = f"Missing required column(s): {', '.join(parser.missing)}. Found: {found}."
            return
        self.report.ignored_columns = parser.ignored
        self.update_fields = [*parser.fields, "source", "updated_at"]
        rows_total = max(total_lines - header_line, 0) if total_lines is not None else None

        pending: dict[str, tuple[int, dict[str, Any]]] = {}
        any_rows = False
        try:
            for line, cells in rows:
                if not any(c.strip() for c in cells):
                    continue
                any_rows = True
                number, values, errors = parser.parse(cells, line)
                if errors:
                    self.report.skipped += 1
                    for error in errors:
                        self.report.add_error(error)
                    continue
                pending.pop(number, None)  # a repeated number: the last good row wins, in file order
                pending[number] = (line, values)
                if len(self.report.preview) < PREVIEW_ROWS:
                    self.report.preview.append({"line": line, "number": number, **values})
                if len(pending) >= self.batch_size:
                    self._flush(pending)
                    pending = {}
                    self._progress(reader.line_num - header_line, rows_total)
        except _Unreadable as exc:  # e.g. a cell over the csv module's size limit; keep what came before
            self.report.add_error(RowError(exc.line, "", f"stopped reading here: {exc.reason}"))
            self.report.skipped += 1
        if not any_rows:
            self.report.rejected = "The file has a header but no work orders."
            self.report.ignored_columns = []
            return
        self._flush(pending)
        done = reader.line_num - header_line
        self._progress(done, done)

    def _progress(self, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(done, max(total, done) if total is not None else None)

    # -- writing -------------------------------------------------------------------------------
    def _flush(self, pending: dict[str, tuple[int, dict[str, Any]]]) -> None:
        if not pending:
            return
        existing = set(
            WorkOrder.objects.filter(shop=self.shop, number__in=list(pending)).values_list("number", flat=True)
        )
        saved = list(pending) if self.dry_run else self._write(pending)
        for number in saved:
            if number in self.seen:  # already counted in an earlier batch of this file
                continue
            self.seen.add(number)
            if number in existing:
                self.report.updated += 1
            else:
                self.report.created += 1

    def _write(self, pending: dict[str, tuple[int, dict[str, Any]]]) -> list[str]:
        orders = [
            WorkOrder(shop=self.shop, number=number, source=self.source, **values)
            for number, (_line, values) in pending.items()
        ]
        try:
            with transaction.atomic():
                self._upsert(orders)
            return list(pending)
        except (DataError, IntegrityError):
            # Something our checks let through: find the row(s) the database refuses, keep the rest.
            saved = []
            for order in orders:
                try:
                    with transaction.atomic():
                        self._upsert([order])
                    saved.append(order.number)
                except (DataError, IntegrityError) as exc:
                    line = pending[order.number][0]
                    self.report.skipped += 1
                    self.report.add_error(RowError(line, "", f"could not be saved: {str(exc).splitlines()[0]}"))
            return saved

    def _upsert(self, orders: list[WorkOrder]) -> None:
        WorkOrder.objects.bulk_create(
            orders, update_conflicts=True, unique_fields=["shop", "number"], update_fields=self.update_fields
        )


class _Unreadable(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(first physical line of the record, its cells); raises _Unreadable where the csv module gives up."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _Unreadable(start, str(exc)) from exc
        yield start, cells


def _read_up_to(stream: IO[bytes], size: int) -> bytes:
    """`size` bytes, fewer only at the end of the file (a raw stream may return less per read)."""
    chunks, got = [], 0
    while got < size and (chunk := stream.read(size - got)):
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _count_lines(stream: IO[bytes]) -> int | None:
    """Lines in a seekable file (for the progress bar), read in chunks; None when it can't seek."""
    try:
        if not stream.seekable():
            return None
        start = stream.tell()
    except (AttributeError, OSError):
        return None
    lf = cr = 0
    last = b""
    while chunk := stream.read(1 << 20):
        lf += chunk.count(b"\n")
        cr += chunk.count(b"\r")
        last = chunk[-1:]
    stream.seek(start)
    lines = lf or cr
    return lines + (1 if last and last not in b"\r\n" else 0)


def _sniff_encoding(head: bytes, *, at_eof: bool) -> tuple[str, str | None]:
    """(encoding, None), or ("", why this is not a CSV file)."""
    if not head.strip():
        return "", "The file is empty."
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return "", f"This is {what}, not a CSV file. Export the work orders as CSV and upload that."
    if head.lstrip()[:14].lower().startswith((b"<!doctype html", b"<html")):
        return "", "This is a web page (HTML), not a CSV file. Export the work orders as CSV and upload that."
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        return "", "This is a binary file, not a CSV file. Export the work orders as CSV and upload that."
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=at_eof)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    text = codecs.getincrementaldecoder(encoding)(errors=_ERRORS).decode(head, final=at_eof)
    if not text.strip():
        return "", "The file is empty."
    # Text has next to no control characters (DOS tools may end a file with Ctrl-Z); binary has lots.
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f\v\x1a")
    if controls > max(2, len(text) // 100):
        return "", "This is a binary file, not a CSV file. Export the work orders as CSV and upload that."
    return encoding, None


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header line most: comma, semicolon, tab or pipe."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


# ---------------------------------------------------------------------------------------------
# One row
# ---------------------------------------------------------------------------------------------
_MAX_LENGTH: dict[str, int] = {
    field.name: field.max_length
    for field in WorkOrder._meta.get_fields()
    if isinstance(field, models.CharField) and field.max_length
}


class _RowParser:
    """Turns one CSV record into WorkOrder field values, or row errors."""

    def __init__(self, *, shop: Shop, header: list[str]) -> None:
        self.shop = shop
        self.tz = shop.tz
        self.header = [h.strip().lstrip("\ufeff") for h in header]
        self.max_year = shop.local_now().year + 1
        ranked: dict[str, list[tuple[int, int]]] = {}
        self.ignored: list[str] = []
        for index, name in enumerate(self.header):
            if match := _HEADER_KEYS.get(_key(name)):
                canon, rank = match
                ranked.setdefault(canon, []).append((rank, index))
            elif name:
                self.ignored.append(name)
        self.columns = {canon: [index for _rank, index in sorted(found)] for canon, found in ranked.items()}
        self.promised_date, self.promised_time = self._promised_columns()
        self.missing = [
            label for canon, label in (("number", "RO number"), ("status", "Status")) if canon not in self.columns
        ]

        cols = self.columns
        fields = []
        if {"customer_name", "first_name", "last_name"} & cols.keys():
            fields += ["customer_name", "customer_last_name"]
        if "customer_phone" in cols:
            fields.append("customer_phone")
        for part in ("vehicle_year", "vehicle_make", "vehicle_model"):
            if part in cols or "vehicle" in cols:
                fields.append(part)
        if "vehicle_plate" in cols:
            fields.append("vehicle_plate")
        if "vin" in cols:
            fields.append("vin_last6")
        fields.append("status")
        for name in ("services", "status_note", "external_id"):
            if name in cols:
                fields.append(name)
        if self.promised_date:
            fields.append("promised_at")
        self.fields = fields
        self._closing: dict[int, dt.time] | None = None
        # Statuses, years and promised dates repeat down a file; parse each distinct text once.
        self._status_of = functools.lru_cache(maxsize=1024)(lambda label: _STATUS_KEYS.get(_key(label)))
        self._year_of = functools.lru_cache(maxsize=1024)(functools.partial(_parse_year, max_year=self.max_year))
        self._promised_at = functools.lru_cache(maxsize=4096)(self._read_promised)

    def _promised_columns(self) -> tuple[list[int], list[int]]:
        """Promised date+time as two columns ('Promised Date', 'Promised Time') or one."""
        indexes = self.columns.get("promised", [])
        times = [i for i in indexes if "time" in _key(self.header[i])]
        dates = [i for i in indexes if i not in times]
        if times and dates:
            return dates, times
        return indexes, []

    def _get(self, cells: list[str], canon: str) -> tuple[str, str]:
        """(first non-empty value among the columns for `canon`, that column's header name)."""
        indexes = self.columns.get(canon, [])
        return self._first(cells, indexes)

    def _first(self, cells: list[str], indexes: list[int]) -> tuple[str, str]:
        for i in indexes:
            if i < len(cells):
                value = cells[i].strip()
                if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
                    value = value[1:]  # our own export's formula escape
                if value:
                    return value, self.header[i]
        return "", self.header[indexes[0]] if indexes else ""

    def parse(self, cells: list[str], line: int) -> tuple[str, dict[str, Any], list[RowError]]:
        errors: list[RowError] = []
        values: dict[str, Any] = {}

        def error(column: str, reason: str) -> None:
            errors.append(RowError(line, column, reason))

        if "\x00" in "".join(cells):
            index = next(i for i, cell in enumerate(cells) if "\x00" in cell)
            error(self.header[index] if index < len(self.header) else "", "contains a NUL character (binary data?)")
            return "", {}, errors

        number, column = self._get(cells, "number")
        if not number:
            error(column, "RO number is missing")
        elif len(number) > _MAX_LENGTH["number"]:
            error(column, f"longer than {_MAX_LENGTH['number']} characters")

        fields = self.fields
        if "customer_name" in fields:
            name, column = self._get(cells, "customer_name")
            if not name:
                first, column = self._get(cells, "first_name")
                last, last_column = self._get(cells, "last_name")
                name = " ".join(part for part in (first, last) if part)
                column = column or last_column
            name = " ".join(name.split())
            if len(name) > _MAX_LENGTH["customer_name"]:
                error(column, f"longer than {_MAX_LENGTH['customer_name']} characters")
            values["customer_name"] = name
            values["customer_last_name"] = WorkOrder.last_name_of(name)

        if "customer_phone" in fields:
            raw, column = self._get(cells, "customer_phone")
            phone = phone_to_e164(raw, self.shop.country) if raw else ""
            if phone is None:
                error(column, "not a usable phone number")
            values["customer_phone"] = phone or ""

        if "vehicle_year" in fields or "vehicle_make" in fields or "vehicle_model" in fields:
            self._vehicle(cells, values, error)

        for canon, name in (("vehicle_plate", "vehicle_plate"), ("external_id", "external_id")):
            if name in fields:
                value, column = self._get(cells, canon)
                if len(value) > _MAX_LENGTH[name]:
                    error(column, f"longer than {_MAX_LENGTH[name]} characters")
                values[name] = value
        if "vin_last6" in fields:
            vin, _column = self._get(cells, "vin")
            values["vin_last6"] = re.sub(r"[^0-9A-Za-z]", "", vin).upper()[-6:]

        label, column = self._get(cells, "status")
        status = self._status_of(label)
        if not label:
            error(column, "status is empty")
        elif status is None:
            error(column, f"unknown status {label[:40]!r}")
        values["status"] = status

        for name in ("services", "status_note"):
            if name in fields:
                values[name] = self._get(cells, name)[0]

        if "promised_at" in fields:
            values["promised_at"] = self._promised(cells, error)

        return number, values, errors

    def _vehicle(self, cells: list[str], values: dict[str, Any], error: Callable[[str, str], None]) -> None:
        year, year_column = self._get(cells, "vehicle_year")
        make, make_column = self._get(cells, "vehicle_make")
        model, model_column = self._get(cells, "vehicle_model")
        vehicle, vehicle_column = self._get(cells, "vehicle")
        if vehicle:  # separate Year/Make/Model columns win; "Vehicle" fills what they leave empty
            v_year, v_make, v_model = split_vehicle(vehicle)
            if not year and v_year:
                year, year_column = v_year, vehicle_column
            make, make_column = (make, make_column) if make else (v_make, vehicle_column)
            model, model_column = (model, model_column) if model else (v_model, vehicle_column)
        if "vehicle_year" in self.fields:
            values["vehicle_year"] = None
            if year:
                parsed = self._year_of(year)
                if parsed is None:
                    error(year_column, f"not a vehicle year between 1900 and {self.max_year}: {year[:20]!r}")
                values["vehicle_year"] = parsed
        for name, value, column in (("vehicle_make", make, make_column), ("vehicle_model", model, model_column)):
            if name not in self.fields:
                continue
            if len(value) > _MAX_LENGTH[name]:
                error(column, f"longer than {_MAX_LENGTH[name]} characters")
            values[name] = value

    def _promised(self, cells: list[str], error: Callable[[str, str], None]) -> dt.datetime | None:
        date_text, date_column = self._first(cells, self.promised_date)
        time_text, time_column = self._first(cells, self.promised_time)
        value, problem = self._promised_at(date_text, time_text)
        if problem:
            in_time_column, reason = problem
            error(time_column if in_time_column else date_column, reason)
        return value

    def _read_promised(self, date_text: str, time_text: str) -> tuple[dt.datetime | None, tuple[bool, str] | None]:
        """(aware datetime or None, None) or (None, (is the problem in the time column, reason))."""
        if not date_text:
            return None, ((True, "a promised time without a date") if time_text else None)
        parsed = parse_datetime_text(date_text)
        if parsed is None:
            return None, (
                False,
                f"not a date we can read: {date_text[:40]!r} (use MM/DD/YYYY, YYYY-MM-DD or Nov 4 2026)",
            )
        if isinstance(parsed, dt.datetime):
            day, clock, tzinfo = parsed.date(), parsed.timetz().replace(tzinfo=None), parsed.tzinfo
        else:
            day, clock, tzinfo = parsed, self._closing_time(parsed.weekday()), None
        if time_text:
            separate = parse_time_text(time_text)
            if separate is None:
                return None, (True, f"not a time we can read: {time_text[:20]!r}")
            clock = separate
        return dt.datetime.combine(day, clock, tzinfo=tzinfo or self.tz), None

    def _closing_time(self, weekday: int) -> dt.time:
        if self._closing is None:
            self._closing = {}
            for day, closes in BusinessHours.objects.filter(shop=self.shop).values_list("weekday", "closes_at"):
                self._closing[day] = max(closes, self._closing.get(day, closes))
        return self._closing.get(weekday, DATE_ONLY_FALLBACK_CLOSE)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
def split_vehicle(text: str) -> tuple[str, str, str]:
    """'2018 Honda Civic' → ('2018', 'Honda', 'Civic'); 'Land Rover Range Rover Sport' → ('', 'Land
    Rover', 'Range Rover Sport'); "'18 Mercedes-Benz C300" → ('18', 'Mercedes-Benz', 'C300')."""
    tokens = text.replace(",", " ").split()
    year = ""
    if tokens and re.fullmatch(r"\d{4}|'?\d{2}", tokens[0]):
        year = tokens.pop(0).lstrip("'")
    if len(tokens) >= 2 and (tokens[0].lower(), tokens[1].lower()) in MULTI_WORD_MAKES:
        return year, " ".join(tokens[:2]), " ".join(tokens[2:])
    return year, (tokens[0] if tokens else ""), " ".join(tokens[1:])


_US_TEN_DIGITS = re.compile(r"\(?([2-9]\d\d)\)?[ .-]?(\d{3})[ .-]?(\d{4})")


def phone_to_e164(raw: str, region: str) -> str | None:
    """`shops.phones.to_e164`, with a shortcut for the shape most US exports use, `(355) 604-0791`:
    phonenumbers' parser is half of the time spent on a row, and for a US ten-digit number whose area
    code starts 2-9 it can only answer `+1` and those digits. Everything else goes to `to_e164`."""
    if region == "US" and (match := _US_TEN_DIGITS.fullmatch(raw)):
        return "+1" + "".join(match.groups())
    return to_e164(raw, region)


def _parse_year(text: str, *, max_year: int) -> int | None:
    text = text.strip().removesuffix(".0")
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
    elif re.fullmatch(r"\d{2}", text):  # '18 → 2018, '98 → 1998
        year = 2000 + int(text)
        if year > max_year:
            year -= 100
    else:
        return None
    return year if 1900 <= year <= max_year else None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY_PREFIX = re.compile(r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+", re.I)
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})(?!\d)")
_NAMED_DATE = re.compile(r"([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", re.I)
_DAY_NAMED_DATE = re.compile(r"(\d{1,2})\s+([a-z]{3,9})\.?,?\s+(\d{4})", re.I)
_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2})(?:\.\d+)?)?\s*(?:([ap])\.?\s*m?\.?)?", re.I)


def parse_datetime_text(text: str) -> dt.datetime | dt.date | None:
    """A date (no time given) or a datetime (naive, or aware when an offset is given); None if unreadable.

    US month-first (`11/04/2026 10:00 AM`, `11/4/26 14:30`), ISO (`2026-11-04`, `2026-11-04T10:00-05:00`)
    and written-out dates (`Nov 4 2026`, `4 November 2026`, `Wed, Nov 4, 2026 3pm`).
    """
    text = _WEEKDAY_PREFIX.sub("", text.strip(), count=1)
    if _ISO_DATE.match(text):
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if re.search(r"\d[T ]\d", text) else parsed.date()
    for pattern, order in ((_ISO_DATE, "ymd"), (_US_DATE, "mdy"), (_NAMED_DATE, "bdy"), (_DAY_NAMED_DATE, "dby")):
        match = pattern.match(text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        month = _MONTHS.get(parts["b"].lower()) if "b" in parts else int(parts["m"])
        if month is None:
            return None
        year = int(parts["y"]) + (2000 if len(parts["y"]) == 2 else 0)
        try:
            date = dt.date(year, month, int(parts["d"]))
        except ValueError:
            return None
        rest = text[match.end() :].strip().lstrip("T,@").strip()
        rest = re.sub(r"^at\s+", "", rest, flags=re.I)
        if not rest:
            return date
        clock = parse_time_text(rest)
        return dt.datetime.combine(date, clock) if clock else None
    return None


def parse_time_text(text: str) -> dt.time | None:
    """'10:00 AM', '10am', '2:30 p.m.', '14:30', '14:30:00' → time; a bare '10' is ambiguous → None."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        return None
    hour, minute, second, meridiem = match.groups()
    h, m, s = int(hour), int(minute or 0), int(second or 0)
    if meridiem:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if meridiem.lower() == "p" else 0)
    elif minute is None:
        return None
    try:
        return dt.time(h, m, s)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Background imports (dashboard upload) and the admin's preview → confirm
# ---------------------------------------------------------------------------------------------
def start_work_order_import(*, shop: Shop, uploaded_by: Any, filename: str, content: bytes) -> WorkOrderImport:
    """Store an uploaded CSV and queue its import (after the transaction commits). Returns the row,
    whose status/rows_done/rows_total a progress page can poll."""
    from shops.tasks import import_work_orders_task

    with transaction.atomic():
        job = WorkOrderImport.objects.create(
            shop=shop, uploaded_by=uploaded_by, filename=filename[:255], content=content
        )
        transaction.on_commit(lambda: import_work_orders_task.delay(job.pk))
    return job


def preview_work_order_import(
    *, shop: Shop, uploaded_by: Any, filename: str, content: bytes
) -> tuple[WorkOrderImport, ImportReport]:
    """Store an upload for the admin's confirm step (status `preview`: no worker picks it up) and
    return it with the dry-run report. Previews nobody confirmed within a day are deleted."""
    WorkOrderImport.objects.filter(
        status=WorkOrderImport.Status.PREVIEW, created_at__lt=timezone.now() - dt.timedelta(days=1)
    ).delete()
    job = WorkOrderImport.objects.create(
        shop=shop,
        uploaded_by=uploaded_by,
        filename=filename[:255],
        content=content,
        status=WorkOrderImport.Status.PREVIEW,
    )
    return job, import_work_orders(shop=shop, file=content, dry_run=True)


def run_work_order_import(
    *, import_id: int, claim_from: str = WorkOrderImport.Status.PENDING
) -> WorkOrderImport | None:
    """Claim the stored upload (`claim_from` → running, one conditional UPDATE, so two workers or a
    double click never import it twice), import it, and store the outcome. Returns the finished row,
    or None when someone else already claimed it. Crashes are recorded as `failed`, not raised."""
    claimed = WorkOrderImport.objects.filter(pk=import_id, status=claim_from).update(
        status=WorkOrderImport.Status.RUNNING
    )
    if not claimed:
        return None
    job = WorkOrderImport.objects.select_related("shop").get(pk=import_id)
    rows = WorkOrderImport.objects.filter(pk=import_id)

    def progress(done: int, total: int | None) -> None:
        rows.update(rows_done=done, rows_total=total)

    try:
        report = import_work_orders(shop=job.shop, file=bytes(job.content), source="csv", progress=progress)
    except Exception:
        logger.exception("work order import %s crashed", import_id)
        rows.update(status=WorkOrderImport.Status.FAILED, finished_at=timezone.now())
    else:
        rows.update(
            status=WorkOrderImport.Status.DONE,
            created=report.created,
            updated=report.updated,
            skipped=report.skipped,
            errors=[
                {"line": e.line, "column": e.column, "reason": e.reason}
                for e in report.errors[: WorkOrderImport.MAX_ERRORS]
            ],
            rejected=report.rejected or "",
            content=b"",  # the customers' phone numbers need not outlive the import
            finished_at=timezone.now(),
        )
    job.refresh_from_db()
    return job
