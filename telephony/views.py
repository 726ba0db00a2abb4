"""Twilio webhooks: how a phone call reaches the receptionist, and what happens when the stream ends.

Every view is signature-checked (telephony.signatures.twilio_webhook: 403 bad/missing signature, 503 no
auth token outside DEBUG), CSRF-exempt, and accepts POST or GET (whichever the number is configured for).

    caller dials the shop's receptionist number
      │
      ▼
    POST /telephony/twilio/voice/            find the shop by `To`
      ├─ unknown number   → <Say> sorry </Say><Hangup/>
      ├─ AI off           → <Say/><Dial>transfer_number</Dial>     (or <Say/><Hangup/> without one)
      └─ AI on            → CallLog (ringing, phone, caller E.164 or "")
                            <Connect action=".../connect-action/">
                              <Stream url="wss://<public host>/telephony/twilio/stream/">
                                <Parameter> callSid, shopId, shopSlug, caller, token (telephony.tokens)
                            </Connect>
                            <Say/><Dial action=".../dial-action/">   (defensive fallback, see twiml.py)
      ▼
    media stream (telephony.consumers, built on top of this) runs the VoiceSession, then closes the
    stream after setting CallLog.outcome: "transferred" = put me through; anything else = done.
      ▼
    POST /telephony/twilio/connect-action/   Twilio asks what next
      ├─ caller already gone (CallStatus completed) → <Hangup/>
      ├─ outcome transferred → <Dial timeout=20 action=".../dial-action/">transfer_number</Dial>
      ├─ other outcome (resolved, callback_requested, …) → <Hangup/>
      └─ no outcome / failed (stream dropped) → apology + <Dial> the shop (error noted, outcome transferred),
                                                or the message chain below when the shop has no line
      ▼
    POST /telephony/twilio/dial-action/      the shop's line answered or not
      ├─ DialCallStatus completed/answered → <Hangup/>
      └─ no-answer/busy/failed/canceled → take a message:
    POST /telephony/twilio/message/<name|number|reason>/   <Gather input="speech"> chain
         name (SpeechResult) → number (Digits or speech; # = the number they call from) → reason
         → callback_name / callback_number / callback_reason, outcome callback_requested, thank you, hang up.
         (Interim: once the media-stream session can take messages itself, it may replace this chain.)

    POST /telephony/twilio/status/           call status callback → closes the CallLog (fill gaps only),
                                             204 always (also for calls we never logged).

Transfers can also be started mid-call through the REST API (telephony.twilio_api.TwilioCallControl.
transfer with action_url = dial-action), which ends the stream without a connect-action request.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict

from calls.models import CallLog
from receptionist.logs import bind_call, call_logging
from shops.phones import mask, to_e164
from telephony import services, twiml
from telephony.signatures import twilio_webhook
from telephony.tokens import issue_stream_token

logger = logging.getLogger(__name__)

# Session outcomes after which connect-action simply hangs up.
_FINISHED_OUTCOMES = {
    CallLog.Outcome.RESOLVED,
    CallLog.Outcome.CALLBACK_REQUESTED,
    CallLog.Outcome.CALLER_HUNG_UP,
    CallLog.Outcome.ABANDONED,
}
_DIAL_CONNECTED = {"completed", "answered"}


def _params(request: HttpRequest) -> QueryDict:
    return request.POST if request.method == "POST" else request.GET


def _twiml(response: object) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml")


def _logs_call(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Log lines written while a (signed) webhook is handled carry its CallSid and, once the call is
    known, the shop's slug (receptionist.logs): one indexed lookup per webhook."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        call_sid = _params(request).get("CallSid", "")
        shop = None
        if call_sid:
            shop = CallLog.objects.filter(call_sid=call_sid).values_list("shop__slug", flat=True).first()
        with call_logging(call_sid=call_sid, shop=shop):
            return view(request, *args, **kwargs)

    return wrapped


def _call_for(params: QueryDict) -> CallLog | None:
    call_sid = params.get("CallSid", "")
    if not call_sid:
        return None
    return CallLog.objects.select_related("shop").filter(call_sid=call_sid).first()


@twilio_webhook
def voice(request: HttpRequest) -> HttpResponse:
    params = _params(request)
    call_sid = params.get("CallSid", "")
    # A new call: no CallLog to name the shop yet (so no `_logs_call` lookup); the shop is bound once found.
    with call_logging(call_sid=call_sid):
        return _answer(params, call_sid)


def _answer(params: QueryDict, call_sid: str) -> HttpResponse:
    shop = services.shop_for_called_number(params.get("To"))
    if shop is None:
        logger.warning("call %s to unknown number %s", call_sid, params.get("To", ""))
        return _twiml(twiml.unknown_number())
    bind_call(shop=shop.slug)
    if not shop.ai_enabled:
        logger.info("call %s for shop %s: AI off, ringing through", call_sid, shop.pk)
        return _twiml(twiml.ring_through(shop))
    if not call_sid:
        return HttpResponse("CallSid is required.", status=400, content_type="text/plain")
    caller = services.caller_e164(params.get("From"), shop.country)
    call = services.phone_call_start(shop=shop, call_sid=call_sid, caller_number=caller)
    token = issue_stream_token(call_sid=call_sid, shop_id=shop.pk)
    return _twiml(twiml.connect_stream(shop=shop, call=call, token=token))


@twilio_webhook
def status(request: HttpRequest) -> HttpResponse:
    params = _params(request)
    call_sid = params.get("CallSid", "")
    call_status = params.get("CallStatus", "")
    try:
        duration: int | None = int(params.get("CallDuration", ""))
    except ValueError:
        duration = None
    # Every call ends with this request: the shop is bound from the one lookup the service makes
    # (no `_logs_call` lookup before it).
    with call_logging(call_sid=call_sid):
        call = services.phone_call_status(call_sid=call_sid, call_status=call_status, duration_seconds=duration)
        if call is None:
            logger.info("status callback %s for call %s we never logged", call_status, call_sid or "(none)")
    return HttpResponse(status=204)


@twilio_webhook
@_logs_call
def connect_action(request: HttpRequest) -> HttpResponse:
    params = _params(request)
    if params.get("CallStatus") == "completed":
        return _twiml(twiml.hang_up())
    call = _call_for(params)
    if call is None:
        shop = services.shop_for_called_number(params.get("To"))
        logger.warning("connect-action for call %s we never logged", params.get("CallSid", ""))
        return _twiml(twiml.stream_dropped(shop) if shop else twiml.sorry_goodbye())
    if call.outcome == CallLog.Outcome.TRANSFERRED:
        logger.info("call %s: transferring to the shop", call.call_sid)
        return _twiml(twiml.transfer(call.shop))
    if call.outcome in _FINISHED_OUTCOMES:
        return _twiml(twiml.hang_up())
    logger.warning("call %s: media stream ended without an outcome (%s)", call.call_sid, call.outcome or "none")
    services.call_stream_dropped(call=call, put_through=bool(call.shop.transfer_number))
    return _twiml(twiml.stream_dropped(call.shop))


@twilio_webhook
@_logs_call
def dial_action(request: HttpRequest) -> HttpResponse:
    params = _params(request)
    dial_status = params.get("DialCallStatus", "")
    if dial_status in _DIAL_CONNECTED or params.get("CallStatus") == "completed":
        return _twiml(twiml.hang_up())
    call = _call_for(params)
    if call is None:
        logger.warning("dial-action (%s) for call %s we never logged", dial_status, params.get("CallSid", ""))
        return _twiml(twiml.sorry_goodbye())
    logger.info("call %s: the shop did not pick up (%s); taking a message", call.call_sid, dial_status)
    services.call_transfer_failed(call=call)
    return _twiml(twiml.nobody_answered(call.shop))


def _spoken_number(text: str, region: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    if text.strip().startswith("+"):
        digits = "+" + digits
    return to_e164(digits, region) if digits else None


@twilio_webhook
@_logs_call
def message(request: HttpRequest, step: str) -> HttpResponse:
    params = _params(request)
    call = _call_for(params)
    if call is None:
        logger.warning("message step %s for call %s we never logged", step, params.get("CallSid", ""))
        return _twiml(twiml.sorry_goodbye())
    speech = params.get("SpeechResult", "").strip()
    if step == "name":
        services.callback_request_save(call=call, name=speech)
        return _twiml(twiml.ask_number(caller_known=bool(call.caller_number)))
    if step == "number":
        heard = params.get("Digits", "").strip() or speech
        number = _spoken_number(heard, call.shop.country) if heard else None
        if number is None:
            if heard:
                logger.info("call %s: could not read a callback number from the caller's answer", call.call_sid)
            # The number they call from; failing that, whatever digits we heard (staff can still read them).
            number = call.caller_number or re.sub(r"\D", "", heard)
        logger.info("call %s: callback number %s", call.call_sid, mask(number))
        services.callback_request_save(call=call, number=number)
        return _twiml(twiml.ask_reason())
    call = services.callback_request_save(call=call, reason=speech)
    return _twiml(twiml.message_taken(shop=call.shop, name=call.callback_name))
