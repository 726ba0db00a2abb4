"""Queued work through the real broker: with REDIS_URL the tasks go through Redis to a worker."""

from __future__ import annotations

import logging
import threading

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.utils import timezone

from calls.models import CallLog
from calls.tasks import summarize_call
from calls.tests.factories import CallLogFactory
from receptionist.celery import app
from shops.importing import start_work_order_import
from shops.models import WorkOrder, WorkOrderImport
from shops.tasks import import_work_orders_task
from shops.tests.factories import ShopFactory

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: the embedded default runs tasks eagerly"),
]


@pytest.fixture
def worker():
    root_level = logging.root.level  # the test worker sets the root logger to its own level
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as running:
            yield running
    finally:
        logging.root.setLevel(root_level)


def test_it_imports_an_uploaded_csv_through_redis_and_a_worker(worker):
    shop = ShopFactory()
    csv = (
        b"RO Number,Customer Name,Customer Phone,Vehicle,Status\n5001,Ana Lee,(555) 555-0142,2019 Ford F-150,Complete\n"
    )
    finished = threading.Event()

    def on_finished(sender=None, **kwargs):
        if sender is not None and sender.name == import_work_orders_task.name:
            finished.set()

    task_postrun.connect(on_finished, weak=False)
    try:
        upload = start_work_order_import(shop=shop, uploaded_by=None, filename="wo.csv", content=csv)
        assert finished.wait(timeout=30), "the worker never ran the import"
    finally:
        task_postrun.disconnect(on_finished)
    upload.refresh_from_db()
    assert upload.status == WorkOrderImport.Status.DONE
    assert WorkOrder.objects.get(shop=shop, number="5001").status == WorkOrder.Status.READY_FOR_PICKUP


def test_it_summarises_a_call_through_redis_and_a_worker(worker):
    call = CallLogFactory(ended_at=timezone.now(), outcome=CallLog.Outcome.CALLER_HUNG_UP)
    assert summarize_call.delay(call.pk).get(timeout=30) is True
    call.refresh_from_db()
    assert call.summary == "No request from the caller. The caller hung up."
