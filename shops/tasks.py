"""Background work for shops: importing an uploaded CSV of work orders."""

from __future__ import annotations

from celery import shared_task

from shops.importing import run_work_order_import


# A big export takes a while; the project-wide limits (300/360 s) are sized for short jobs.
@shared_task(soft_time_limit=1800, time_limit=1860, ignore_result=True)
def import_work_orders_task(import_id: int) -> None:
    """Import the stored upload `import_id`; a second run finds it claimed and does nothing."""
    run_work_order_import(import_id=import_id)
