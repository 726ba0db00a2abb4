"""`import_work_orders`: stream a CSV export into a shop's work orders, in batches."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import IO, Any, BinaryIO

from django.db import DataError, IntegrityError, transaction

from shops.importing.files import NotCsv, Unreadable, count_lines, numbered, open_binary, open_csv
from shops.importing.report import PREVIEW_ROWS, ImportReport, RowError
from shops.importing.rows import RowParser
from shops.models import Shop, WorkOrder

logger = logging.getLogger("shops.importing")

Progress = Callable[[int, int | None], None]


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
        with open_binary(file) as stream:
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
        total_lines = count_lines(stream) if self.progress else None
        try:
            reader = open_csv(stream)
        except NotCsv as exc:
            self.report.rejected = exc.reason
            return
        rows = numbered(reader)

        try:
            header_line, header = next(((n, row) for n, row in rows if any(c.strip() for c in row)), (0, []))
        except Unreadable as exc:
            self.report.rejected = f"This does not read as a CSV file ({exc.reason})."
            return
        if not header:
            self.report.rejected = "The file is empty."
            return
        parser = RowParser(shop=self.shop, header=header)
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
        except Unreadable as exc:  # e.g. a cell over the csv module's size limit; keep what came before
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
