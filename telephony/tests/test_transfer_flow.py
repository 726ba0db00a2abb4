from __future__ import annotations

import pytest

from calls.models import CallLog
from calls.tests.factories import CallLogFactory
from shops.tests.factories import ShopFactory
from telephony.tests.fakes import call_params, twiml, verbs

pytestmark = pytest.mark.django_db

BASE = "https://receptionist.example.com"
CONNECT_ACTION = "/telephony/twilio/connect-action/"
DIAL_ACTION = "/telephony/twilio/dial-action/"
MESSAGE = "/telephony/twilio/message/{}/"


@pytest.fixture
def call():
    shop = ShopFactory(phone_number="+15557000000", transfer_number="+15557009999", name="Elm Street Auto")
    return CallLogFactory(shop=shop, caller_number="+15555550123", status=CallLog.Status.IN_PROGRESS)


def _post(twilio, path, call, **extra):
    params = call_params(CallSid=call.call_sid, CallStatus="in-progress", **extra)
    return twilio.post(path, params)


def _answer(twilio, call, step, **extra):
    return twiml(_post(twilio, MESSAGE.format(step), call, **extra))


# ---------------------------------------------------------------------------------------------
# connect-action: the media stream ended
# ---------------------------------------------------------------------------------------------
def test_it_dials_the_shop_when_the_session_asked_for_a_transfer(twilio, call):
    call.outcome = CallLog.Outcome.TRANSFERRED
    call.save()
    root = twiml(_post(twilio, CONNECT_ACTION, call))
    assert verbs(root) == ["Dial"]
    dial = root.find("Dial")
    assert dial.text == "+15557009999"
    assert dial.get("timeout") == "20"
    assert dial.get("action") == f"{BASE}/telephony/twilio/dial-action/"


@pytest.mark.parametrize("outcome", [CallLog.Outcome.RESOLVED, CallLog.Outcome.CALLBACK_REQUESTED])
def test_it_hangs_up_when_the_session_finished_the_call(twilio, call, outcome):
    call.outcome = outcome
    call.save()
    assert verbs(twiml(_post(twilio, CONNECT_ACTION, call))) == ["Hangup"]


def test_it_apologises_and_puts_the_caller_through_when_the_stream_dropped(twilio, call):
    root = twiml(_post(twilio, CONNECT_ACTION, call))
    assert verbs(root) == ["Say", "Dial"]
    assert "sorry" in root.find("Say").text.lower()
    assert root.find("Dial").text == "+15557009999"
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.TRANSFERRED
    assert "without an outcome" in call.error


def test_it_keeps_the_error_the_session_recorded_when_it_failed(twilio, call):
    call.outcome = CallLog.Outcome.FAILED
    call.error = "OpenAI Realtime closed the socket"
    call.save()
    root = twiml(_post(twilio, CONNECT_ACTION, call))
    assert verbs(root) == ["Say", "Dial"]
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.TRANSFERRED
    assert call.error == "OpenAI Realtime closed the socket"


def test_it_hangs_up_when_the_caller_is_already_gone(twilio, call):
    call.outcome = CallLog.Outcome.TRANSFERRED
    call.save()
    root = twiml(twilio.post(CONNECT_ACTION, call_params(CallSid=call.call_sid, CallStatus="completed")))
    assert verbs(root) == ["Hangup"]


def test_it_takes_a_message_when_a_transfer_is_asked_for_but_the_shop_has_no_line(twilio, call):
    call.shop.transfer_number = ""
    call.shop.save()
    call.outcome = CallLog.Outcome.TRANSFERRED
    call.save()
    root = twiml(_post(twilio, CONNECT_ACTION, call))
    assert verbs(root)[:2] == ["Say", "Gather"]


def test_it_offers_a_message_when_the_stream_dropped_and_the_shop_has_no_line(twilio, call):
    call.shop.transfer_number = ""
    call.shop.save()
    root = twiml(_post(twilio, CONNECT_ACTION, call))
    assert verbs(root)[:2] == ["Say", "Gather"]
    call.refresh_from_db()
    assert call.outcome == ""
    assert "message" in call.error


def test_it_puts_an_unlogged_call_through_to_the_shop_it_dialled(twilio, call):
    params = call_params(CallSid="CA" + "7" * 32, CallStatus="in-progress")
    root = twiml(twilio.post(CONNECT_ACTION, params))
    assert root.find("Dial").text == "+15557009999"


def test_it_refuses_an_unsigned_connect_action(twilio, call):
    params = call_params(CallSid=call.call_sid, CallStatus="in-progress")
    assert twilio.post(CONNECT_ACTION, params, sign=False).status_code == 403


# ---------------------------------------------------------------------------------------------
# dial-action: the shop's line answered, or not
# ---------------------------------------------------------------------------------------------
def test_it_hangs_up_after_the_shop_took_the_call(twilio, call):
    call.outcome = CallLog.Outcome.TRANSFERRED
    call.save()
    root = twiml(_post(twilio, DIAL_ACTION, call, DialCallStatus="completed", DialCallDuration="95"))
    assert verbs(root) == ["Hangup"]
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.TRANSFERRED


@pytest.mark.parametrize("dial_status", ["no-answer", "busy", "failed"])
def test_it_offers_to_take_a_message_when_nobody_picks_up(twilio, call, dial_status):
    call.outcome = CallLog.Outcome.TRANSFERRED
    call.save()
    root = twiml(_post(twilio, DIAL_ACTION, call, DialCallStatus=dial_status))
    assert verbs(root) == ["Say", "Gather", "Redirect"]
    gather = root.find("Gather")
    assert gather.get("input") == "speech"
    assert gather.get("action") == f"{BASE}/telephony/twilio/message/name/"
    assert gather.get("actionOnEmptyResult") == "true"
    call.refresh_from_db()
    assert call.outcome == ""  # no longer "transferred"; the message or the status callback decides


def test_it_takes_name_number_and_reason_and_stores_a_callback_request(twilio, call):
    call.outcome = CallLog.Outcome.TRANSFERRED
    call.save()
    twiml(_post(twilio, DIAL_ACTION, call, DialCallStatus="no-answer"))

    root = _answer(twilio, call, "name", SpeechResult="Jane Doe", Confidence="0.92")
    gather = root.find("Gather")
    assert "dtmf" in gather.get("input")
    assert gather.get("finishOnKey") == "#"
    assert gather.get("action") == f"{BASE}/telephony/twilio/message/number/"

    root = _answer(twilio, call, "number", Digits="5555550177")
    assert root.find("Gather").get("action") == f"{BASE}/telephony/twilio/message/reason/"

    root = _answer(twilio, call, "reason", SpeechResult="Is my Civic ready?")
    assert verbs(root) == ["Say", "Hangup"]
    assert "Jane Doe" in root.find("Say").text
    assert "Elm Street Auto" in root.find("Say").text

    call.refresh_from_db()
    assert call.callback_name == "Jane Doe"
    assert call.callback_number == "+15555550177"
    assert call.callback_reason == "Is my Civic ready?"
    assert call.outcome == CallLog.Outcome.CALLBACK_REQUESTED

    # The call then ends; the status callback keeps the outcome.
    twilio.post("/telephony/twilio/status/", call_params(CallSid=call.call_sid, CallStatus="completed"))
    call.refresh_from_db()
    assert call.outcome == CallLog.Outcome.CALLBACK_REQUESTED


def test_it_understands_a_spoken_callback_number(twilio, call):
    _answer(twilio, call, "number", SpeechResult="It's 555-555-0177.")
    call.refresh_from_db()
    assert call.callback_number == "+15555550177"


def test_it_uses_the_number_they_call_from_when_they_just_press_pound(twilio, call):
    _answer(twilio, call, "number", Digits="")
    call.refresh_from_db()
    assert call.callback_number == "+15555550123"
    assert call.outcome == CallLog.Outcome.CALLBACK_REQUESTED


def test_it_moves_on_when_the_caller_says_nothing(twilio, call):
    root = _answer(twilio, call, "name")  # actionOnEmptyResult / Redirect: no SpeechResult
    assert root.find("Gather").get("action") == f"{BASE}/telephony/twilio/message/number/"
    call.refresh_from_db()
    assert call.callback_name == ""
    assert call.outcome == ""


def test_it_does_not_offer_the_calling_number_when_it_was_withheld(twilio, call):
    call.caller_number = ""
    call.save()
    root = _answer(twilio, call, "name", SpeechResult="Jane")
    assert "press pound" not in root.find("Gather/Say").text


def test_it_checks_the_signature_on_every_message_step(twilio, call):
    params = call_params(CallSid=call.call_sid, SpeechResult="Mallory")
    for step in ("name", "number", "reason"):
        assert twilio.post(MESSAGE.format(step), params, signature="Zm9yZ2Vk").status_code == 403
    call.refresh_from_db()
    assert (call.callback_name, call.callback_number, call.callback_reason) == ("", "", "")


def test_it_knows_only_three_message_steps(twilio, call):
    assert _post(twilio, MESSAGE.format("password"), call).status_code == 404


def test_it_keeps_a_rambling_answer_within_the_field(twilio, call):
    _answer(twilio, call, "name", SpeechResult="Jane " * 100)
    call.refresh_from_db()
    assert len(call.callback_name) <= 120
    assert call.callback_name.startswith("Jane Jane")
