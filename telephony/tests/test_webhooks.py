from __future__ import annotations

import pytest

from calls.models import CallLog
from shops.tests.factories import ShopFactory
from telephony.tests.fakes import call_params, twiml, verbs
from telephony.tokens import StreamTokenReused, StreamTokenWrongCall, redeem_stream_token

pytestmark = pytest.mark.django_db

VOICE = "/telephony/twilio/voice/"
BASE = "https://receptionist.example.com"
CALL = "CA" + "1" * 32


@pytest.fixture
def shop():
    return ShopFactory(phone_number="+15557000000", transfer_number="+15557009999", slug="elm-street")


def test_it_says_sorry_and_hangs_up_for_a_number_no_shop_uses(twilio, shop):
    root = twiml(twilio.post(VOICE, call_params(To="+15557001234")))
    assert verbs(root) == ["Say", "Hangup"]
    assert not CallLog.objects.exists()


def test_it_rings_the_shop_straight_through_when_ai_is_off(twilio, shop):
    shop.ai_enabled = False
    shop.save()
    root = twiml(twilio.post(VOICE, call_params()))
    assert verbs(root) == ["Say", "Dial"]
    assert root.find("Dial").text == "+15557009999"
    assert not CallLog.objects.exists()


def test_it_says_goodbye_when_ai_is_off_and_there_is_no_line_to_ring(twilio, shop):
    shop.ai_enabled = False
    shop.transfer_number = ""
    shop.save()
    root = twiml(twilio.post(VOICE, call_params()))
    assert verbs(root) == ["Say", "Hangup"]
    assert shop.name in root.find("Say").text


def test_it_connects_the_call_to_a_media_stream_with_signed_parameters(twilio, shop):
    response = twilio.post(VOICE, call_params())
    root = twiml(response)

    connect = root.find("Connect")
    assert connect.get("action") == f"{BASE}/telephony/twilio/connect-action/"
    stream = connect.find("Stream")
    assert stream.get("url") == "wss://receptionist.example.com/telephony/twilio/stream/"
    assert "?" not in stream.get("url")
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters["callSid"] == CALL
    assert parameters["shopId"] == str(shop.pk)
    assert parameters["shopSlug"] == "elm-street"
    assert parameters["caller"] == "+15555550123"

    # The token opens this call's stream, once, and no other call's.
    with pytest.raises(StreamTokenWrongCall):
        redeem_stream_token(parameters["token"], call_sid="CA" + "2" * 32)
    assert redeem_stream_token(parameters["token"], call_sid=CALL) == shop.pk
    with pytest.raises(StreamTokenReused):
        redeem_stream_token(parameters["token"], call_sid=CALL)


def test_it_never_leaves_silence_after_the_stream(twilio, shop):
    root = twiml(twilio.post(VOICE, call_params()))
    assert verbs(root) == ["Connect", "Say", "Dial"]
    dial = root.find("Dial")
    assert dial.text == "+15557009999"
    assert dial.get("action") == f"{BASE}/telephony/twilio/dial-action/"


def test_it_offers_to_take_a_message_after_the_stream_when_the_shop_has_no_line(twilio, shop):
    shop.transfer_number = ""
    shop.save()
    root = twiml(twilio.post(VOICE, call_params()))
    assert verbs(root)[:3] == ["Connect", "Say", "Gather"]
    assert root.find("Gather").get("action") == f"{BASE}/telephony/twilio/message/name/"


def test_it_logs_the_call_as_ringing_on_the_phone_channel(twilio, shop):
    # Ringing until the media stream's conversation takes the call over (issue 5: status `ringing`).
    twilio.post(VOICE, call_params(From="(555) 555-0123"))
    call = CallLog.objects.get()
    assert call.call_sid == CALL
    assert call.shop == shop
    assert call.channel == CallLog.Channel.PHONE
    assert call.status == CallLog.Status.RINGING
    assert call.engine == ""  # the media session records the engine it picks
    assert call.caller_number == "+15555550123"
    assert call.started_at is not None
    assert call.ended_at is None


def test_it_finds_the_shop_whatever_way_the_number_is_written(twilio, shop):
    twilio.post(VOICE, call_params(To="+1 (555) 700-0000"))
    assert CallLog.objects.get().shop == shop


@pytest.mark.parametrize("caller", ["client:alice", "sip:bob@example.com", "anonymous", "+266696687", ""])
def test_it_stores_no_number_for_browser_sip_and_withheld_callers(twilio, shop, caller):
    root = twiml(twilio.post(VOICE, call_params(From=caller)))
    assert CallLog.objects.get().caller_number == ""
    parameters = {p.get("name"): p.get("value") for p in root.findall("Connect/Stream/Parameter")}
    assert parameters["caller"] == ""


def test_it_keeps_one_record_when_twilio_repeats_the_webhook(twilio, shop):
    first = twiml(twilio.post(VOICE, call_params()))
    second = twiml(twilio.post(VOICE, call_params()))
    assert CallLog.objects.count() == 1
    tokens = [r.find("Connect/Stream/Parameter[@name='token']").get("value") for r in (first, second)]
    assert all(redeem_stream_token(token, call_sid=CALL) == shop.pk for token in tokens)


def test_it_answers_in_twiml(twilio, shop):
    response = twilio.post(VOICE, call_params())
    assert response["Content-Type"] == "text/xml"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response>')
