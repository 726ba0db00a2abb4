from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from calls.models import CallLog
from calls.retention import transcripts_delete_expired
from calls.summaries import summarize
from receptionist.logs import call_logging

logger = logging.getLogger(__name__)

# A call's summary is queued when it ends; one still missing after this long was lost on the way (the
# broker was down, the worker died mid-task) and the sweep below queues it again.
SUMMARY_GRACE = dt.timedelta(minutes=5)
# ...looking this far back: far less than transcript retention, whose deleted summaries stay empty.
SUMMARY_LOOKBACK = dt.timedelta(days=1)


@shared_task(soft_time_limit=60, time_limit=90)
def summarize_call(call_id: int, refresh: bool = False) -> bool:
    """Write the summary of a finished call. Safe to run twice: only an empty summary is filled,
    unless `refresh` (the call gained something after it ended, e.g. a callback message).

    Returns True if this run wrote it.
    """
    # A call whose transcript retention deleted has nothing left to summarise.
    call = CallLog.objects.filter(pk=call_id, ended_at__isnull=False, transcript_deleted_at__isnull=True).first()
    if call is None or (call.summary and not refresh):
        return False
    with call_logging(call_sid=call.call_sid, shop=call.shop.slug):
        text = summarize(call)
        rows = CallLog.objects.filter(pk=call_id)
        written = (rows if refresh else rows.filter(summary="")).update(summary=text)
        logger.info("call %s summary %s", call_id, "written" if written else "already there")
    return bool(written)


@shared_task(soft_time_limit=30 * 60, time_limit=35 * 60)
def delete_expired_transcripts() -> int:
    """Daily (CELERY_BEAT_SCHEDULE): calls.retention with TRANSCRIPT_RETENTION_DAYS. Returns the count."""
    return transcripts_delete_expired(days=settings.TRANSCRIPT_RETENTION_DAYS)


def queue_summary(call_id: int, *, refresh: bool = False) -> bool:
    """Queue `summarize_call` for a call that just ended (from `transaction.on_commit`). Never raises:
    with the broker down the call must still close, so the failure is logged and
    `summarize_missed_calls` queues it again later. Publishing is tried once (`retry=False`), bounded
    by the broker's socket timeouts (settings.CELERY_BROKER_TRANSPORT_OPTIONS).

    Returns True if the task was handed to the broker (or run, when tasks run eagerly).
    """
    try:
        # ignore_result: nobody waits for it, and asking the result backend to listen for it would
        # retry a Redis that is down for 20 s.
        summarize_call.apply_async((call_id,), {"refresh": refresh}, retry=False, ignore_result=True)
    except Exception:
        logger.warning("summary of call %s not queued; the sweep will queue it again", call_id, exc_info=True)
        return False
    return True


@shared_task(soft_time_limit=60, time_limit=90)
def summarize_missed_calls() -> int:
    """Every few minutes (CELERY_BEAT_SCHEDULE): queue the summary of each call that ended more than
    SUMMARY_GRACE ago (and less than SUMMARY_LOOKBACK) and still has none. Safe to run twice and to
    overlap a summary already queued: `summarize_call` only fills an empty summary.

    Returns how many summaries it queued.
    """
    now = timezone.now()
    missing = list(
        CallLog.objects.filter(
            summary="", ended_at__lte=now - SUMMARY_GRACE, ended_at__gte=now - SUMMARY_LOOKBACK
        ).values_list("pk", flat=True)
    )
    for call_id in missing:
        summarize_call.apply_async((call_id,), ignore_result=True)
    if missing:
        logger.warning("queued %s call summaries that were missing", len(missing))
    return len(missing)


@shared_task(soft_time_limit=120, time_limit=150)
def close_stale_calls() -> int:
    """Every few minutes (CELERY_BEAT_SCHEDULE): close the calls no process and no status callback will
    close (calls.services.calls_close_stale). Safe to run twice. Returns how many it closed."""
    from calls.services import calls_close_stale  # calls.services imports this module

    closed = calls_close_stale()
    if closed:
        logger.warning("closed %s stale calls (no end recorded, no status callback)", closed)
    return closed
