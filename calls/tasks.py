from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from calls.models import CallLog
from calls.retention import transcripts_delete_expired
from calls.summaries import summarize
from receptionist.logs import call_logging

logger = logging.getLogger(__name__)


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


@shared_task(soft_time_limit=120, time_limit=150)
def close_stale_calls() -> int:
    """Every few minutes (CELERY_BEAT_SCHEDULE): close the calls no process and no status callback will
    close (calls.services.calls_close_stale). Safe to run twice. Returns how many it closed."""
    from calls.services import calls_close_stale  # calls.services imports this module

    closed = calls_close_stale()
    if closed:
        logger.warning("closed %s stale calls (no end recorded, no status callback)", closed)
    return closed
