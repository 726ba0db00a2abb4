from __future__ import annotations

import logging

from celery import shared_task

from calls.models import CallLog
from calls.summaries import summarize
from receptionist.logs import call_logging

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=60, time_limit=90)
def summarize_call(call_id: int, refresh: bool = False) -> bool:
    """Write the summary of a finished call. Safe to run twice: only an empty summary is filled,
    unless `refresh` (the call gained something after it ended, e.g. a callback message).

    Returns True if this run wrote it.
    """
    call = CallLog.objects.filter(pk=call_id, ended_at__isnull=False).first()
    if call is None or (call.summary and not refresh):
        return False
    with call_logging(call_sid=call.call_sid, shop=call.shop.slug):
        text = summarize(call)
        rows = CallLog.objects.filter(pk=call_id)
        written = (rows if refresh else rows.filter(summary="")).update(summary=text)
        logger.info("call %s summary %s", call_id, "written" if written else "already there")
    return bool(written)
