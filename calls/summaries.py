"""After-call summaries: what the owner reads in the call list instead of the whole transcript.

Deterministic by default (from intents, tool calls and outcome — no network, same input same text).
With OPENAI_API_KEY set, a model writes it from the transcript; any failure there falls back to the
deterministic summary, so a call never stays without one.
"""

from __future__ import annotations

import logging

from django.conf import settings

from calls.models import CallLog
from shops.phones import mask

logger = logging.getLogger(__name__)

INTENT_PHRASES = {
    "CHECK_STATUS": "asked about their vehicle's status",
    "GET_HOURS": "asked about hours",
    "GET_LOCATION": "asked for the address or directions",
    "GET_SERVICES": "asked about services",
    "TRANSFER_HUMAN": "asked for a person",
}
OUTCOME_PHRASES: dict[str, str] = {
    CallLog.Outcome.RESOLVED: "Handled by the receptionist.",
    CallLog.Outcome.TRANSFERRED: "Transferred to the shop.",
    CallLog.Outcome.CALLBACK_REQUESTED: "Left a callback request.",
    CallLog.Outcome.CALLER_HUNG_UP: "The caller hung up.",
    CallLog.Outcome.FAILED: "The call failed.",
    CallLog.Outcome.ABANDONED: "The call was abandoned.",
}
SUMMARY_PROMPT = (
    "Summarise this auto-repair shop phone call for the shop owner in at most two short sentences: why "
    "the customer called, what they were told, and what happens next. No phone numbers. Plain text."
)


def deterministic_summary(call: CallLog) -> str:
    """One or two sentences from the call's intents, tool results and outcome."""
    asked = [INTENT_PHRASES[i] for i in call.intents or [] if i in INTENT_PHRASES]
    parts = []
    if asked:
        parts.append(f"Caller {_join(asked)}.")
    elif call.turns.filter(role="caller").exists():
        parts.append("Caller's request was not understood.")
    else:
        parts.append("No request from the caller.")
    status_results = [
        t.result_summary
        for t in call.tool_calls.filter(name="get_work_order_status", ok=True)
        if t.result_summary and "not verified" not in t.result_summary
    ]
    if status_results:
        parts.append(f"Status given: {status_results[-1].rstrip('.')}.")
    elif call.tool_calls.filter(name__in=["lookup_work_order", "get_work_order_status"], ok=False).exists():
        parts.append("The caller could not be verified, so no work-order details were shared.")
    if call.outcome == CallLog.Outcome.CALLBACK_REQUESTED:
        who = call.callback_name or "The caller"
        number = f" at {mask(call.callback_number)}" if call.callback_number else ""
        reason = f": {call.callback_reason.strip().rstrip('.')}" if call.callback_reason.strip() else ""
        parts.append(f"{who} asked for a callback{number}{reason}.")
    elif call.outcome:
        parts.append(OUTCOME_PHRASES.get(call.outcome, ""))
    if call.fallback_reason:
        parts.append("The AI switched to the offline engine during the call.")
    return " ".join(p for p in parts if p)[:500]


def model_summary(call: CallLog) -> str | None:
    """A summary written by the OpenAI model from the transcript, or None if that is not possible."""
    if not settings.OPENAI_API_KEY:
        return None
    transcript = "\n".join(f"{turn.role}: {turn.text}" for turn in call.turns.order_by("id")[:80])
    if not transcript:
        return None
    from openai import OpenAI, OpenAIError

    try:
        client = OpenAI(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=1,
        )
        completion = client.chat.completions.create(
            model=settings.OPENAI_MODEL,
            messages=[{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": transcript}],
            temperature=0.2,
        )
        text = (completion.choices[0].message.content or "").strip() if completion.choices else ""
    except (OpenAIError, ValueError):
        logger.warning("model summary failed for call %s; using the deterministic one", call.pk, exc_info=True)
        return None
    return " ".join(text.split())[:500] or None


def summarize(call: CallLog) -> str:
    return model_summary(call) or deterministic_summary(call)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
