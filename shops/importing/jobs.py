"""Background imports (dashboard upload → Celery) and the admin's preview → confirm."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from shops.importing.report import ImportReport
from shops.importing.service import import_work_orders
from shops.models import Shop, WorkOrderImport

logger = logging.getLogger("shops.importing")


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
