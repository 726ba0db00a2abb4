from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.base.exceptions import TwilioRestException

from telephony.tests.fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioHttp
from telephony.twilio_api import TwilioCallControl, TwilioNotConfigured, twilio_configured

CALL = "CA" + "1" * 32
CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL}.json"
DIAL_ACTION = "https://receptionist.example.com/telephony/twilio/dial-action/"


def _control(http: FakeTwilioHttp) -> TwilioCallControl:
    return TwilioCallControl.from_settings(http_client=http)


def test_it_transfers_a_live_call_by_replacing_its_twiml_with_a_dial():
    http = FakeTwilioHttp()
    _control(http).transfer(CALL, to_number="+15557009999", action_url=DIAL_ACTION, timeout=25)

    [request] = http.requests
    assert request.method == "POST"
    assert request.url == CALL_URL
    assert set(request.data) == {"Twiml"}
    root = ET.fromstring(request.data["Twiml"])  # noqa: S314 - the document we just built
    assert [child.tag for child in root] == ["Dial"]
    dial = root.find("Dial")
    assert dial.text == "+15557009999"
    assert dial.get("timeout") == "25"
    assert dial.get("action") == DIAL_ACTION


def test_it_can_say_something_before_the_transfer():
    http = FakeTwilioHttp()
    _control(http).transfer(CALL, to_number="+15557009999", action_url=DIAL_ACTION, say="Connecting you now.")
    root = ET.fromstring(http.requests[0].data["Twiml"])  # noqa: S314
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert root.find("Dial").get("timeout") == "20"


def test_it_hangs_up_a_live_call():
    http = FakeTwilioHttp(body={"sid": CALL, "status": "completed"})
    assert _control(http).hang_up(CALL) is True
    [request] = http.requests
    assert (request.method, request.url, request.data) == ("POST", CALL_URL, {"Status": "completed"})


def test_it_treats_a_call_twilio_no_longer_knows_as_already_ended():
    http = FakeTwilioHttp(status=404, body={"code": 20404, "message": "Not found", "status": 404})
    assert _control(http).hang_up(CALL) is False


def test_it_reports_other_refusals():
    http = FakeTwilioHttp(status=400, body={"code": 21220, "message": "Call is not in-progress", "status": 400})
    with pytest.raises(TwilioRestException):
        _control(http).hang_up(CALL)
    with pytest.raises(TwilioRestException):
        _control(http).transfer(CALL, to_number="+15557009999", action_url=DIAL_ACTION)


def test_it_sends_a_text():
    http = FakeTwilioHttp(status=201, body={"sid": "SM" + "3" * 32, "status": "queued"})
    sid = _control(http).send_sms(to="+15555550123", from_="+15557000000", body="Your Civic is ready.")
    assert sid == "SM" + "3" * 32
    [request] = http.requests
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.data == {"To": "+15555550123", "From": "+15557000000", "Body": "Your Civic is ready."}


@pytest.mark.parametrize(("sid", "token"), [("", AUTH_TOKEN), (ACCOUNT_SID, ""), ("", "")])
def test_it_is_off_and_says_so_without_credentials(settings, sid, token):
    settings.TWILIO_ACCOUNT_SID = sid
    settings.TWILIO_AUTH_TOKEN = token
    assert not twilio_configured()
    with pytest.raises(TwilioNotConfigured, match="TWILIO_ACCOUNT_SID"):
        TwilioCallControl.from_settings(http_client=FakeTwilioHttp())


def test_it_is_on_with_credentials():
    assert twilio_configured()
