"""The TwiML documents we answer Twilio with, built with the SDK's `VoiceResponse` (escaping included).

Every document ends in something audible or a hang-up: a caller never sits in silence.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

from calls.models import CallLog
from shops.models import Shop
from telephony.signatures import public_url_for, public_ws_url

# The media-stream WebSocket route (telephony/routing.py, added with the consumer, must serve this path).
STREAM_PATH = "/telephony/twilio/stream/"
TRANSFER_RING_SECONDS = 20
MESSAGE_STEPS = ("name", "number", "reason")


def stream_url() -> str:
    return public_ws_url(STREAM_PATH)


def _dial_shop(vr: VoiceResponse, shop: Shop) -> None:
    """Ring the shop's line; when that leg ends Twilio asks dial-action what next."""
    vr.dial(
        shop.transfer_number,
        timeout=TRANSFER_RING_SECONDS,
        action=public_url_for("telephony:twilio-dial-action"),
        method="POST",
    )


def unknown_number() -> VoiceResponse:
    vr = VoiceResponse()
    vr.say("Sorry, this number is not set up with our receptionist service. Please check the number and try again.")
    vr.hangup()
    return vr


def ring_through(shop: Shop) -> VoiceResponse:
    """AI switched off: straight to the shop's line, or a polite goodbye if it has none."""
    vr = VoiceResponse()
    if shop.transfer_number:
        vr.say(f"Thanks for calling {shop.name}. Connecting you now.")
        vr.dial(shop.transfer_number)
    else:
        vr.say(f"Thanks for calling {shop.name}. We can't take your call right now. Please call back later.")
        vr.hangup()
    return vr


def connect_stream(*, shop: Shop, call: CallLog, token: str) -> VoiceResponse:
    """`<Connect action=…><Stream url="wss://…">` with the call's `<Parameter>`s (never a query string:
    Twilio drops it), then a fallback.

    With `action` set, Twilio asks connect-action what to do when the stream ends, so the fallback after
    `</Connect>` is defensive: it only plays if Twilio moves on without the action (e.g. the action
    request cannot be made), and guarantees a dropped stream never leaves the caller in silence.
    """
    vr = VoiceResponse()
    connect = Connect(action=public_url_for("telephony:twilio-connect-action"), method="POST")
    stream = connect.stream(url=stream_url())
    stream.parameter(name="callSid", value=call.call_sid)
    stream.parameter(name="shopId", value=str(shop.pk))
    stream.parameter(name="shopSlug", value=shop.slug)
    stream.parameter(name="caller", value=call.caller_number)
    stream.parameter(name="token", value=token)
    vr.append(connect)
    _apology_then_shop(vr, shop)
    return vr


def _apology_then_shop(vr: VoiceResponse, shop: Shop) -> None:
    if shop.transfer_number:
        vr.say("Sorry, I'm having trouble on my end. Let me connect you to the shop.")
        _dial_shop(vr, shop)
    else:
        _message_intro(vr, "Sorry, I'm having trouble on my end.")


def transfer(shop: Shop) -> VoiceResponse:
    """The session asked for a person (connect-action after outcome "transferred")."""
    vr = VoiceResponse()
    if shop.transfer_number:
        _dial_shop(vr, shop)
    else:
        _message_intro(vr, "Sorry, there's nobody available to take your call right now.")
    return vr


def stream_dropped(shop: Shop) -> VoiceResponse:
    vr = VoiceResponse()
    _apology_then_shop(vr, shop)
    return vr


def hang_up() -> VoiceResponse:
    vr = VoiceResponse()
    vr.hangup()
    return vr


def sorry_goodbye() -> VoiceResponse:
    vr = VoiceResponse()
    vr.say("Sorry, something went wrong. Please call back in a few minutes. Goodbye.")
    vr.hangup()
    return vr


def nobody_answered(shop: Shop) -> VoiceResponse:
    vr = VoiceResponse()
    _message_intro(vr, f"Sorry, nobody at {shop.name} could pick up right now.")
    return vr


# ---------------------------------------------------------------------------------------------
# Taking a message with <Gather input="speech">: name → number → reason → thank you.
# (Interim: the media-stream session may take over this conversation later.)
# ---------------------------------------------------------------------------------------------
def _message_intro(vr: VoiceResponse, apology: str) -> None:
    vr.say(f"{apology} I can take a message and have someone call you back.")
    _ask(vr, "name", "Please tell me your name.")


def _ask(vr: VoiceResponse, step: str, prompt: str, *, keypad: bool = False) -> None:
    action = public_url_for("telephony:twilio-message", step=step)
    gather = Gather(
        input="dtmf speech" if keypad else "speech",
        action=action,
        method="POST",
        timeout=8 if keypad else 5,
        speech_timeout="auto",
        finish_on_key="#" if keypad else None,
        action_on_empty_result=True,
        language="en-US",
    )
    gather.say(prompt)
    vr.append(gather)
    # actionOnEmptyResult makes Twilio call the action even on silence; should it not, the redirect
    # lands on the same step with no answer, which moves on (no loops).
    vr.redirect(action, method="POST")


def ask_number(*, caller_known: bool) -> VoiceResponse:
    vr = VoiceResponse()
    prompt = "Thanks. What's the best number to call you back? You can say it, or type it followed by the pound key."
    if caller_known:
        prompt += " To use the number you're calling from, just press pound."
    _ask(vr, "number", prompt, keypad=True)
    return vr


def ask_reason() -> VoiceResponse:
    vr = VoiceResponse()
    _ask(vr, "reason", "And briefly, what is your call about?")
    return vr


def message_taken(*, shop: Shop, name: str) -> VoiceResponse:
    vr = VoiceResponse()
    thanks = f"Thank you, {name}." if name else "Thank you."
    vr.say(f"{thanks} I've passed your message to {shop.name}, and someone will call you back. Goodbye.")
    vr.hangup()
    return vr
