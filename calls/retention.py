"""Transcript retention: what callers said is deleted TRANSCRIPT_RETENTION_DAYS after their call ended.

Deleted (everything that repeats or derives from the conversation, or is a caller's message):
  - the transcript: every CallTurn;
  - the summary (written from the transcript) and the conversation's working memory (`state`: names,
    RO numbers and vehicles the caller gave while being verified);
  - the callback message: callback_name, callback_number, callback_reason;
  - tool calls' arguments and result summaries (what was looked up and what the work order said).
Kept, so analytics and billing do not change: the CallLog row itself (shop, channel, caller_number,
started/ended, duration, engine and fallback, intents, confidence, outcome, first_response_ms, usage,
error) and each tool call's name, ok and latency. `transcript_deleted_at` records when it happened.

A call that never got an `ended_at` (a crashed process) counts from its `started_at`.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calls.models import CallLog, CallTurn, ToolCall

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


def transcripts_delete_expired(*, days: int, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Delete the transcripts of calls that ended more than `days` days before `now`, `batch_size`
    calls per transaction (short locks, bounded memory). `days` 0 keeps everything.

    Safe to run twice or in two workers at once: each batch locks its rows (skipping those another
    worker holds), only rows with no `transcript_deleted_at` are cleared, and deleting what is already
    gone changes nothing.
    Returns how many calls this run cleared.
    """
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=days)
    expired = CallLog.objects.filter(
        Q(ended_at__lt=cutoff) | Q(ended_at__isnull=True, started_at__lt=cutoff),
        transcript_deleted_at__isnull=True,
    )
    cleared, last = 0, 0
    while True:
        ids = list(expired.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        last = ids[-1]
        with transaction.atomic():
            claimed = list(
                CallLog.objects.filter(pk__in=ids, transcript_deleted_at__isnull=True)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)
            )
            CallTurn.objects.filter(call_id__in=claimed).delete()
            ToolCall.objects.filter(call_id__in=claimed).update(arguments={}, result_summary="")
            cleared += CallLog.objects.filter(pk__in=claimed, transcript_deleted_at__isnull=True).update(
                summary="",
                state={},
                callback_name="",
                callback_number="",
                callback_reason="",
                transcript_deleted_at=now,
            )
        if len(ids) < batch_size:
            break
    logger.info("transcript retention (%d days): cleared %d calls that ended before %s", days, cleared, cutoff)
    return cleared
