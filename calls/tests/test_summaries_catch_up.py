"""Celery (its broker, its workers) down: calls still close, and their summaries catch up when it returns.

A call's summary is queued when the call ends; if that fails (broker down) or the task is lost (worker
killed), `summarize_missed_calls` — on celery beat every 5 minutes — queues it again for every call
that ended more than SUMMARY_GRACE ago without one. `summarize_call` only fills an empty summary, so
queuing twice is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.utils import timezone

from calls.models import CallLog
from calls.services import call_end
from calls.tasks import SUMMARY_GRACE, SUMMARY_LOOKBACK, summarize_call, summarize_missed_calls
from calls.tests.factories import CallLogFactory
from receptionist.celery import app
from tests.faults import RedisServer, celery_broker, production_redis_settings

pytestmark = pytest.mark.django_db


def ended(ago: dt.timedelta, **fields) -> CallLog:
    now = timezone.now()
    return CallLogFactory(
        started_at=now - ago - dt.timedelta(minutes=2), ended_at=now - ago, outcome=CallLog.Outcome.RESOLVED, **fields
    )


def test_it_summarises_calls_that_ended_without_a_summary():
    missed = ended(SUMMARY_GRACE + dt.timedelta(minutes=1))
    just_ended = ended(dt.timedelta(seconds=30))  # its own summary may still be on the way
    summarised = ended(dt.timedelta(hours=1), summary="Asked about hours.")
    too_old = ended(SUMMARY_LOOKBACK + dt.timedelta(hours=1))  # beyond the sweep (retention may have emptied it)
    still_open = CallLogFactory(ended_at=None)

    assert summarize_missed_calls() == 1  # tasks run eagerly in tests: the summary is written now

    for call in (missed, just_ended, summarised, too_old, still_open):
        call.refresh_from_db()
    assert missed.summary
    assert just_ended.summary == "" and too_old.summary == "" and still_open.summary == ""
    assert summarised.summary == "Asked about hours."
    assert summarize_missed_calls() == 0  # nothing left: running it again changes nothing


@pytest.fixture
def broker():
    server = RedisServer()
    if not server.available():
        pytest.skip("redis-server is not installed")
    server.start()
    try:
        with celery_broker(production_redis_settings(server.url)):
            yield server
    finally:
        server.close()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_it_summarises_a_call_that_ended_while_the_broker_was_down(broker, caplog):
    call = CallLogFactory(started_at=timezone.now() - dt.timedelta(minutes=1))
    broker.stop()
    with caplog.at_level(logging.WARNING):
        assert call_end(call=call, outcome=CallLog.Outcome.CALLER_HUNG_UP) is True  # the call closes regardless
    assert f"summary of call {call.pk} not queued" in caplog.text
    call.refresh_from_db()
    assert call.ended_at is not None and call.summary == ""

    # The broker and a worker come back; beat's next sweep finds the call (ended > SUMMARY_GRACE ago).
    broker.start()
    CallLog.objects.filter(pk=call.pk).update(ended_at=timezone.now() - SUMMARY_GRACE - dt.timedelta(seconds=1))
    summarised = threading.Event()

    def on_task_done(sender=None, args=None, **kwargs):
        if sender is not None and sender.name == summarize_call.name and args and args[0] == call.pk:
            summarised.set()

    task_postrun.connect(on_task_done, weak=False)
    root_level = logging.root.level  # the test worker sets the root logger to its own level
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            summarize_missed_calls.delay()  # what beat sends
            assert summarised.wait(timeout=30), "the worker never summarised the call"
    finally:
        task_postrun.disconnect(on_task_done)
        logging.root.setLevel(root_level)
    call.refresh_from_db()
    assert call.summary == "No request from the caller. The caller hung up."
