"""CallLog writes the Twilio webhooks need, on top of calls.services (call_start / call_end).

Transfer intent contract (no extra field): the media session sets `CallLog.outcome = "transferred"`
(committed) *before* it closes the stream; `connect-action` then answers with `<Dial>`. Any other outcome
set by the session (resolved, callback_requested, …) means "hang up"; no outcome (or `failed`) means the
stream dropped and the caller is put through to the shop.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from calls import live
from calls.models import CallLog
from calls.services import call_end, call_start
from calls.tasks import queue_summary
from receptionist.logs import bind_call
from shops.models import Shop
from shops.phones import mask, to_e164

logger = logging.getLogger(__name__)

Outcome = CallLog.Outcome

# What Twilio's final `CallStatus` says about a call whose session left no outcome.
# completed: the call was answered and ended without the session deciding anything → the caller hung up.
# busy / no-answer / canceled: the caller never got (or gave up before) an answer → abandoned.
# failed: Twilio could not complete the call → failed.
OUTCOME_FOR_FINAL_STATUS = {
    "completed": Outcome.CALLER_HUNG_UP,
    "busy": Outcome.ABANDONED,
    "no-answer": Outcome.ABANDONED,
    "canceled": Outcome.ABANDONED,
    "failed": Outcome.FAILED,
}

# Values Twilio puts in `From` when the caller withheld their number (keypad spellings of ANONYMOUS,
# RESTRICTED, UNKNOWN, BLOCKED, UNAVAILABLE); they look like phone numbers but are not.
_WITHHELD_NUMBERS = {"+266696687", "+7378742833", "+8656696", "+2562533", "+86282452253"}


def _changed(call: CallLog) -> None:
    transaction.on_commit(lambda: live.call_changed(shop_id=call.shop_id, call_id=call.pk))


def shop_for_called_number(to: str | None) -> Shop | None:
    """The shop whose receptionist number was dialled (Twilio's `To`), or None."""
    number = to_e164(to)
    if number is None:
        return None
    return Shop.objects.filter(phone_number=number).first()


def caller_e164(raw_from: str | None, region: str) -> str:
    """The caller's number as E.164, or "" for browser clients (`client:…`), SIP and withheld numbers."""
    raw = (raw_from or "").strip()
    if not raw or ":" in raw or raw in _WITHHELD_NUMBERS:
        return ""
    return to_e164(raw, region) or ""


def phone_call_start(*, shop: Shop, call_sid: str, caller_number: str) -> CallLog:
    """Return the CallLog of an incoming phone call, opening it the first time (calls.services.call_start:
    idempotent on call_sid, because Twilio may repeat a webhook). The engine is left blank; the media
    session records the one it picks."""
    call = call_start(
        shop=shop,
        call_sid=call_sid,
        channel=CallLog.Channel.PHONE,
        caller_number=caller_number,
        engine="",
        status=CallLog.Status.RINGING,
    )
    logger.info("call %s for shop %s from %s", call_sid, shop.pk, mask(caller_number))
    return call


def phone_call_status(*, call_sid: str, call_status: str, duration_seconds: int | None) -> CallLog | None:
    """Apply a Twilio status callback. Returns the CallLog, or None for a call we never logged.

    A final status (completed, busy, no-answer, canceled, failed) closes the call through
    calls.services.call_end, which fills only what is still empty: ended_at, duration, status completed
    and the outcome (OUTCOME_FOR_FINAL_STATUS when the session left none). When this callback is what
    closes the call, Twilio's own CallDuration replaces the estimate from our start time. Running it
    twice changes nothing the first run set. Other statuses are ignored. Log lines from here on name
    the call's shop.
    """
    call = CallLog.objects.select_related("shop").filter(call_sid=call_sid).first() if call_sid else None
    if call is None:
        return None
    bind_call(shop=call.shop.slug)
    outcome = OUTCOME_FOR_FINAL_STATUS.get(call_status)
    if outcome is None or (call.ended_at is not None and call.outcome):
        return call  # not final, or the session closed the call already: nothing is left to fill
    call_end(call=call, outcome=outcome, duration_seconds=duration_seconds)
    return call


def call_stream_dropped(*, call: CallLog, put_through: bool) -> None:
    """The media stream ended without the session deciding what next: note it in `error` (unless an
    error is already recorded) and, when the caller is being put through to the shop, make the
    outcome transferred (design.md: a transfer, however it happens, says so)."""
    with transaction.atomic():
        call = CallLog.objects.select_for_update().get(pk=call.pk)
        fields: list[str] = []
        if put_through and call.outcome != Outcome.TRANSFERRED:
            call.outcome = Outcome.TRANSFERRED
            fields.append("outcome")
        if not call.error:
            call.error = "Media stream ended without an outcome; " + (
                "caller put through to the shop." if put_through else "caller offered to leave a message."
            )
            fields.append("error")
        if fields:
            call.save(update_fields=[*fields, "updated_at"])
            _changed(call)


def call_transfer_failed(*, call: CallLog) -> None:
    """Nobody at the shop picked up: the call is no longer "transferred". Clearing the outcome lets the
    message flow record callback_requested, or the status callback caller_hung_up if they hang up."""
    updated = CallLog.objects.filter(pk=call.pk, outcome=Outcome.TRANSFERRED).update(
        outcome="", updated_at=timezone.now()
    )
    if updated:
        _changed(call)


def callback_request_save(
    *, call: CallLog, name: str | None = None, number: str | None = None, reason: str | None = None
) -> CallLog:
    """Store what the caller left for a callback (only the parts given); once anything is stored the
    call's outcome is callback_requested. Returns the updated CallLog."""
    values = {"callback_name": name, "callback_number": number, "callback_reason": reason}
    with transaction.atomic():
        call = CallLog.objects.select_for_update().get(pk=call.pk)
        fields: list[str] = []
        for field, value in values.items():
            if value is None:
                continue
            # Speech can run long; a CharField must not overflow (callback_reason is a TextField).
            max_length = getattr(CallLog._meta.get_field(field), "max_length", None)
            value = value.strip()[:max_length] if max_length else value.strip()
            if value and getattr(call, field) != value:
                setattr(call, field, value)
                fields.append(field)
        if fields and call.outcome != Outcome.CALLBACK_REQUESTED:
            call.outcome = Outcome.CALLBACK_REQUESTED
            fields.append("outcome")
        if fields:
            call.save(update_fields=[*fields, "updated_at"])
            _changed(call)
            if call.ended_at is not None:
                # The summary was written when the stream ended, before the message was left.
                call_id = call.pk
                transaction.on_commit(lambda: queue_summary(call_id, refresh=True))
    return call
