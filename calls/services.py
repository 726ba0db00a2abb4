"""Writes to call records, shared by every channel: chat now, browser voice and Twilio calls later.

Each service is keyword-only and safe to repeat where the outside world repeats itself (Twilio retries
webhooks; a status callback may arrive after the stream said goodbye): `call_start` opens a call or
returns the one open for `call_sid`, `call_end` only fills what is still empty. Writes that must land
together run in one transaction; the per-call ones every phone call makes (open, take over, close) are
single conditional statements instead, each complete on its own. Dashboards are told about a call
starting and ending after the transaction commits.

The `acall_*` wrappers are for async code (consumers, `VoiceSession`, async views). They run the sync
service in the thread Django's own async ORM methods use; a long-lived consumer should still close
stale connections at its own boundaries (call start/end), as `database_sync_to_async` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Field, JSONField, Max, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls.live import call_changed
from calls.models import CallLog, CallTurn, ToolCall
from calls.tasks import queue_summary
from shops.models import Shop
from shops.phones import to_e164

# Intents that say little about why someone called: a call's primary intent is its first other one.
_BACKGROUND_INTENTS = frozenset({"UNKNOWN", "GOODBYE"})
SUMMARY_MAX = 500


class StaleCallState(Exception):
    """Another turn of the same call was written since this one read the call's state."""


@dataclass(frozen=True)
class ToolCallData:
    """One tool call as the conversation reports it (what `call_add_tool_call` stores)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result_summary: str = ""
    ok: bool = True
    latency_ms: int = 0


def primary_intent(intents: Sequence[str]) -> str:
    """The call's reason: its first intent other than UNKNOWN/GOODBYE, else its first intent, else ''."""
    return next((i for i in intents if i not in _BACKGROUND_INTENTS), intents[0] if intents else "")


def _notify(call: CallLog) -> None:
    shop_id, call_id = call.shop_id, call.pk
    transaction.on_commit(lambda: call_changed(shop_id=shop_id, call_id=call_id))


def call_start(
    *,
    shop: Shop,
    call_sid: str,
    channel: str,
    caller_number: str | None,
    engine: str,
    started_at: dt.datetime | None = None,
    state: dict[str, Any] | None = None,
    status: str = CallLog.Status.IN_PROGRESS,
) -> CallLog:
    """Open the CallLog for `call_sid`, or return the one already open for it. A phone call opens as
    `ringing` (the webhook, before anyone speaks); the conversation that takes it over (an `engine` or
    a `state` given) makes it `in_progress` (call_take_over).

    The caller's number is stored in E.164 ('' when withheld or unusable). Raises ValueError if the
    call_sid is already recorded for another shop.

    Statements, because every phone call runs this twice at its start: a take-over of the webhook's
    CallLog is one UPDATE and one SELECT; a new call is one INSERT (in its own transaction, so a
    repeated webhook's duplicate call_sid falls back to the stored call without spoiling an outer
    one). Django's get_or_create would SELECT first and wrap the INSERT in a savepoint.
    """
    taking_over = state is not None or bool(engine)
    if taking_over:
        taken = CallLog.objects.filter(call_sid=call_sid, shop=shop).update(**_take_over_changes(engine, state or {}))
        if taken:
            return CallLog.objects.get(call_sid=call_sid)
    try:
        with transaction.atomic():
            call = CallLog.objects.create(
                shop=shop,
                call_sid=call_sid,
                channel=channel,
                status=status,
                caller_number=(to_e164(caller_number, shop.country) or "") if caller_number else "",
                engine=engine,
                started_at=started_at or timezone.now(),
                state=state or {},
            )
            _notify(call)
    except IntegrityError:
        stored = CallLog.objects.filter(call_sid=call_sid).first()
        if stored is None:
            raise  # not the unique call_sid: a real error
        if stored.shop_id != shop.pk:
            raise ValueError(f"call {call_sid} belongs to another shop") from None
        # Opened a moment ago by a repeated webhook (or by the take-over's race with it).
        return call_take_over(call=stored, engine=engine, state=state or {}) if taking_over else stored
    return call


def _while_empty(field: str, value: str) -> Case:
    """An UPDATE value: `value` where the text column `field` is empty, the stored text otherwise."""
    column = cast(Field, CallLog._meta.get_field(field))  # a concrete column, not a relation
    return Case(When(**{field: ""}, then=Value(value, output_field=column)), default=F(field), output_field=column)


def _take_over_changes(engine: str, state: dict[str, Any]) -> dict[str, Any]:
    """The UPDATE of a take-over: each column changes only while it is still empty (CASE per column)."""
    changes: dict[str, Any] = {
        "state": Case(When(state={}, then=Value({"v": 0, **state}, output_field=JSONField())), default=F("state")),
        "status": Case(
            When(status=CallLog.Status.RINGING, then=Value(CallLog.Status.IN_PROGRESS)), default=F("status")
        ),
        "updated_at": timezone.now(),
    }
    if engine:
        changes["engine"] = _while_empty("engine", engine)
    return changes


def call_take_over(*, call: CallLog, engine: str, state: dict[str, Any]) -> CallLog:
    """Give a CallLog opened without a conversation (the Twilio webhook's: no engine, state `{}`) the
    engine and the first state of the conversation that takes it over. Each is written only while it
    is still empty (a conditional UPDATE), so a second taker never overwrites the first; the stored
    state always has a version (`v`, 0 to start), which `call_record_exchange` checks.

    Returns the call with its stored engine and state.
    """
    CallLog.objects.filter(pk=call.pk).update(**_take_over_changes(engine, state))
    call.refresh_from_db(fields=["engine", "state", "status"])
    return call


def call_add_turn(*, call: CallLog, role: str, text: str, intent: str = "", latency_ms: int | None = None) -> CallTurn:
    """Append one utterance (caller as recognised, or the receptionist's reply) to the transcript."""
    return CallTurn.objects.create(call=call, role=role, text=text, intent=intent, latency_ms=latency_ms)


def call_add_tool_call(
    *,
    call: CallLog,
    name: str,
    arguments: dict[str, Any] | None = None,
    result_summary: str = "",
    ok: bool = True,
    latency_ms: int = 0,
) -> ToolCall:
    return ToolCall.objects.create(
        call=call,
        name=name,
        arguments=arguments or {},
        result_summary=result_summary[:SUMMARY_MAX],
        ok=ok,
        latency_ms=max(0, latency_ms),
    )


def call_record_intent(*, call: CallLog, intent: str) -> list[str]:
    """Add `intent` to the call's intents (each once, in order) and recompute the primary intent.

    Returns the call's intents. Locks the row so two writers never drop each other's intents.
    """
    with transaction.atomic():
        row = CallLog.objects.select_for_update().only("intents").get(pk=call.pk)
        intents = list(row.intents or [])
        if intent and intent not in intents:
            intents.append(intent)
            CallLog.objects.filter(pk=call.pk).update(
                intents=intents, intent=primary_intent(intents), updated_at=timezone.now()
            )
    call.intents, call.intent = intents, primary_intent(intents)
    return intents


def call_record_exchange(
    *,
    call: CallLog,
    caller_text: str,
    reply_text: str,
    intent: str,
    latency_ms: int,
    tool_calls: Iterable[ToolCallData] = (),
    state: dict[str, Any],
    expected_version: int,
    confidence: float | None = None,
    end_outcome: str = "",
    ended_at: dt.datetime | None = None,
) -> None:
    """Store one conversational turn at once: the caller's words (unless `caller_text` is empty: they
    are already recorded), the reply, its tool calls, the
    intent and the conversation state for the next turn — and, with `end_outcome`, close the call
    (`call_end`) in the same transaction, so a call's last turn costs one commit, not two.

    `state["v"]` is the state's version: the write happens only if the stored version is still
    `expected_version` (and stores `expected_version + 1`), so two requests racing on one session
    never interleave. Raises StaleCallState when another turn got there first.
    """
    intents = list(call.intents or [])
    if intent and intent not in intents:
        intents.append(intent)
    new_state = {**state, "v": expected_version + 1}
    with transaction.atomic():
        changes: dict[str, Any] = {
            "state": new_state,
            "intents": intents,
            "intent": primary_intent(intents),
            "updated_at": timezone.now(),
            "first_response_ms": Coalesce(F("first_response_ms"), Value(latency_ms)),
        }
        if confidence is not None:
            changes["confidence"] = confidence
        if not CallLog.objects.filter(pk=call.pk, state__v=expected_version).update(**changes):
            raise StaleCallState(call.call_sid)
        said = [CallTurn(call=call, role=CallTurn.Role.CALLER, text=caller_text, intent=intent)] if caller_text else []
        reply = CallTurn(call=call, role=CallTurn.Role.ASSISTANT, text=reply_text, intent=intent, latency_ms=latency_ms)
        CallTurn.objects.bulk_create([*said, reply])
        ToolCall.objects.bulk_create(
            ToolCall(
                call=call,
                name=t.name,
                arguments=t.arguments,
                result_summary=t.result_summary[:SUMMARY_MAX],
                ok=t.ok,
                latency_ms=max(0, t.latency_ms),
            )
            for t in tool_calls
        )
        if end_outcome:
            call_end(call=call, outcome=end_outcome, ended_at=ended_at)
    call.state, call.intents, call.intent = new_state, intents, primary_intent(intents)
    if call.first_response_ms is None:
        call.first_response_ms = latency_ms


def call_record_first_response(*, call: CallLog, first_response_ms: int) -> None:
    """Store the voice measure of the call's first response: end of the caller's first utterance →
    first audio byte of the reply sent. It replaces the brain's latency that `call_record_exchange`
    stored as a stand-in (chat has no audio, so there that latency is the first response)."""
    ms = max(0, round(first_response_ms))
    CallLog.objects.filter(pk=call.pk).update(first_response_ms=ms, updated_at=timezone.now())
    call.first_response_ms = ms


def merge_usage(total: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """Add `usage` into `total` (numbers summed, nested dicts merged, strings replaced); returns `total`."""
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            current = total.get(key, 0)
            total[key] = (current if isinstance(current, int | float) else 0) + value
        elif isinstance(value, dict):
            if not isinstance(total.get(key), dict):
                total[key] = {}
            merge_usage(total[key], value)
        elif isinstance(value, str):
            total[key] = value
    return total


def call_add_usage(*, call: CallLog, usage: dict[str, Any]) -> dict[str, Any]:
    """Add a model's usage (tokens, audio seconds, responses) to what the call already used; returns
    the call's total. Locks the row so two writers never drop each other's counts."""
    if not usage:
        return dict(call.usage or {})
    with transaction.atomic():
        row = CallLog.objects.select_for_update().only("usage").get(pk=call.pk)
        total = merge_usage(dict(row.usage or {}), usage)
        CallLog.objects.filter(pk=call.pk).update(usage=total, updated_at=timezone.now())
    call.usage = total
    return total


def call_record_fallback(*, call: CallLog, engine: str, reason: str) -> None:
    """Record that the call switched engines mid-call (the first reason is kept)."""
    CallLog.objects.filter(pk=call.pk).update(engine=engine, updated_at=timezone.now())
    CallLog.objects.filter(pk=call.pk, fallback_reason="").update(fallback_reason=reason[:255])
    call.engine = engine
    call.fallback_reason = call.fallback_reason or reason[:255]


def call_end(
    *,
    call: CallLog,
    outcome: str,
    ended_at: dt.datetime | None = None,
    error: str = "",
    duration_seconds: int | None = None,
) -> bool:
    """Close the call: end time, duration, outcome (and error), each only if not already set, and
    queue its summary (after commit) when this call is the one that closed it. `duration_seconds` is
    the length the phone company measured (Twilio's CallDuration), when known; otherwise the time
    from the call's start to `ended_at`. `call` is refreshed with what is stored.

    Returns True if this call closed it, False if it was already closed (the outcome may still be
    filled in if it was missing).

    Every call ends here, often twice (the media session and Twilio's status callback race), so closing
    an open call is one UPDATE (outcome and error each only while empty) and the refresh; a call already
    closed gets the same fill-ins in an UPDATE of their own.
    """
    ended_at = ended_at or timezone.now()
    if duration_seconds is None:
        duration_seconds = round((ended_at - call.started_at).total_seconds())
    rows = CallLog.objects.filter(pk=call.pk)
    changes: dict[str, Any] = {
        "ended_at": ended_at,
        "duration_seconds": max(0, duration_seconds),
        "status": CallLog.Status.COMPLETED,
        "updated_at": timezone.now(),
    }
    fill = {"outcome": _while_empty("outcome", outcome)}
    missing = Q(outcome="")
    if error:
        fill["error"] = _while_empty("error", error)
        missing |= Q(error="")
    closed = rows.filter(ended_at__isnull=True).update(**changes, **fill)
    filled = 0 if closed else rows.filter(missing).update(**fill)
    if closed or filled:
        _notify(call)
    if closed:
        call_id = call.pk
        transaction.on_commit(lambda: queue_summary(call_id))
    call.refresh_from_db(fields=["ended_at", "duration_seconds", "status", "outcome", "error"])
    return bool(closed)


# A call still open this long past its shop's max_call_seconds has no process left to close it (the
# server died with it) and its status callback is not coming (lost, or never sent).
STALE_CALL_MARGIN = dt.timedelta(minutes=10)
STALE_CALL_ERROR = "Closed by the stale-call sweep: no end was recorded (server process lost, no status callback)."


def calls_close_stale(*, now: dt.datetime | None = None, margin: dt.timedelta = STALE_CALL_MARGIN) -> int:
    """Close the calls left open (ringing or in progress) with no activity for longer than their shop's
    max_call_seconds plus `margin` — longer than any live call can last, or a chat session anyone is
    still in. Each is closed through `call_end` (safe next to a late status callback: only what is still
    empty is filled): ended at its last activity (the row's or its last turn's update), outcome `failed`
    for a voice call (we lost it), `abandoned` for a chat (the visitor left), the error says why, and
    its summary is queued. Returns how many calls this run closed."""
    now = now or timezone.now()
    open_calls = CallLog.objects.filter(ended_at__isnull=True).select_related("shop")
    closed = 0
    for seconds in open_calls.values_list("shop__max_call_seconds", flat=True).distinct().order_by():
        cutoff = now - dt.timedelta(seconds=seconds) - margin
        stale = open_calls.filter(shop__max_call_seconds=seconds, updated_at__lt=cutoff).annotate(
            last_turn=Max("turns__created_at")
        )
        for call in stale.filter(Q(last_turn__isnull=True) | Q(last_turn__lt=cutoff)):
            last_activity = max(t for t in (call.started_at, call.updated_at, call.last_turn) if t is not None)
            chat = call.channel == CallLog.Channel.CHAT
            outcome = CallLog.Outcome.ABANDONED if chat else CallLog.Outcome.FAILED
            closed += call_end(call=call, outcome=outcome, ended_at=last_activity, error=STALE_CALL_ERROR)
    return closed


# ---------------------------------------------------------------------------------------------
# Async wrappers for the voice pipeline and async views
# ---------------------------------------------------------------------------------------------
async def acall_start(
    *,
    shop: Shop,
    call_sid: str,
    channel: str,
    caller_number: str | None,
    engine: str,
    started_at: dt.datetime | None = None,
    state: dict[str, Any] | None = None,
) -> CallLog:
    return await sync_to_async(call_start)(
        shop=shop,
        call_sid=call_sid,
        channel=channel,
        caller_number=caller_number,
        engine=engine,
        started_at=started_at,
        state=state,
    )


async def acall_add_turn(
    *, call: CallLog, role: str, text: str, intent: str = "", latency_ms: int | None = None
) -> CallTurn:
    return await sync_to_async(call_add_turn)(call=call, role=role, text=text, intent=intent, latency_ms=latency_ms)


async def acall_add_tool_call(
    *,
    call: CallLog,
    name: str,
    arguments: dict[str, Any] | None = None,
    result_summary: str = "",
    ok: bool = True,
    latency_ms: int = 0,
) -> ToolCall:
    return await sync_to_async(call_add_tool_call)(
        call=call, name=name, arguments=arguments, result_summary=result_summary, ok=ok, latency_ms=latency_ms
    )


async def acall_record_intent(*, call: CallLog, intent: str) -> list[str]:
    return await sync_to_async(call_record_intent)(call=call, intent=intent)


async def acall_record_exchange(
    *,
    call: CallLog,
    caller_text: str,
    reply_text: str,
    intent: str,
    latency_ms: int,
    tool_calls: Iterable[ToolCallData] = (),
    state: dict[str, Any],
    expected_version: int,
    confidence: float | None = None,
    end_outcome: str = "",
    ended_at: dt.datetime | None = None,
) -> None:
    await sync_to_async(call_record_exchange)(
        call=call,
        caller_text=caller_text,
        reply_text=reply_text,
        intent=intent,
        latency_ms=latency_ms,
        tool_calls=list(tool_calls),
        state=state,
        expected_version=expected_version,
        confidence=confidence,
        end_outcome=end_outcome,
        ended_at=ended_at,
    )


async def acall_record_fallback(*, call: CallLog, engine: str, reason: str) -> None:
    await sync_to_async(call_record_fallback)(call=call, engine=engine, reason=reason)


async def acall_take_over(*, call: CallLog, engine: str, state: dict[str, Any]) -> CallLog:
    return await sync_to_async(call_take_over)(call=call, engine=engine, state=state)


async def acall_record_first_response(*, call: CallLog, first_response_ms: int) -> None:
    await sync_to_async(call_record_first_response)(call=call, first_response_ms=first_response_ms)


async def acall_add_usage(*, call: CallLog, usage: dict[str, Any]) -> dict[str, Any]:
    return await sync_to_async(call_add_usage)(call=call, usage=usage)


async def acall_end(*, call: CallLog, outcome: str, ended_at: dt.datetime | None = None, error: str = "") -> bool:
    return await sync_to_async(call_end)(call=call, outcome=outcome, ended_at=ended_at, error=error)
