from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from twilio.request_validator import RequestValidator

from shops.tests.factories import ShopFactory
from telephony.signatures import Verdict, check_signature, check_websocket
from telephony.tests.fakes import AUTH_TOKEN, PUBLIC_BASE_URL, call_params, twiml

pytestmark = pytest.mark.django_db

VOICE = "/telephony/twilio/voice/"
STREAM = "/telephony/twilio/stream/"


@pytest.fixture
def shop():
    return ShopFactory(phone_number="+15557000000")


def test_it_matches_twilios_published_test_vector(settings):
    settings.TWILIO_AUTH_TOKEN = "12345"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert check_signature(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") is Verdict.VALID
    assert check_signature(url, {**params, "Digits": "1235"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") is Verdict.INVALID


def test_it_accepts_a_request_signed_over_the_public_url(twilio, shop):
    response = twilio.post(VOICE, call_params())
    twiml(response)


def test_it_refuses_a_forged_signature(twilio, shop):
    response = twilio.post(VOICE, call_params(), signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403


def test_it_refuses_a_request_signed_with_another_token(twilio, shop):
    params = call_params()
    signature = RequestValidator("someone-elses-token").compute_signature(PUBLIC_BASE_URL + VOICE, params)
    assert twilio.post(VOICE, params, signature=signature).status_code == 403


def test_it_refuses_a_missing_signature(twilio, shop):
    response = twilio.post(VOICE, call_params(), sign=False)
    assert response.status_code == 403


def test_it_refuses_parameters_changed_after_signing(twilio, shop):
    params = call_params()
    signature = twilio.sign(PUBLIC_BASE_URL + VOICE, params)
    response = twilio.post(VOICE, {**params, "From": "+15550000000"}, signature=signature)
    assert response.status_code == 403


def test_it_checks_against_the_public_url_not_what_django_sees_behind_the_proxy(twilio, shop):
    # Django runs behind a TLS-terminating proxy and sees http://testserver/...; Twilio signed the public URL.
    params = call_params()
    internal = twilio.sign("http://testserver" + VOICE, params)
    assert twilio.post(VOICE, params, signature=internal).status_code == 403
    assert twilio.post(VOICE, params).status_code == 200


def test_it_honours_a_public_path_prefix_the_proxy_strips(twilio, shop, settings):
    settings.PUBLIC_BASE_URL = "https://example.com/receptionist"
    params = call_params()
    signature = twilio.sign("https://example.com/receptionist" + VOICE, params)
    root = twiml(twilio.post(VOICE, params, signature=signature))
    assert root.find("Connect/Stream").get("url") == "wss://example.com/receptionist/telephony/twilio/stream/"
    assert root.find("Connect").get("action") == "https://example.com/receptionist/telephony/twilio/connect-action/"


def test_it_signs_repeated_form_keys_like_the_sdk(client, shop):
    body = urlencode([*call_params().items(), ("StirVerstat", "TN-Validation-Passed-A"), ("StirVerstat", "x")])
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + VOICE, QueryDict(body))
    response = client.post(
        VOICE, data=body, content_type="application/x-www-form-urlencoded", headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200


def test_it_accepts_get_webhooks_signed_over_the_url_with_its_query(twilio, shop):
    root = twiml(twilio.get(VOICE, call_params()))
    assert root.find("Connect/Stream") is not None


def test_it_never_logs_the_callers_number_from_a_get_query(twilio, shop, client, caplog):
    with caplog.at_level(logging.WARNING, logger="telephony.signatures"):
        response = client.get(f"{VOICE}?{urlencode(call_params())}", headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
    assert response.status_code == 403
    assert "bad signature" in caplog.text
    assert "5555550123" not in caplog.text


def test_it_answers_503_when_no_auth_token_is_configured_outside_debug(twilio, shop, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.DEBUG = False
    response = twilio.post(VOICE, call_params(), signature="anything")
    assert response.status_code == 503


def test_it_accepts_unsigned_requests_in_debug_without_a_token_and_warns_loudly(twilio, shop, settings, caplog):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.DEBUG = True
    with caplog.at_level(logging.WARNING, logger="telephony.signatures"):
        response = twilio.post(VOICE, call_params(), sign=False)
    assert response.status_code == 200
    assert "UNSIGNED" in caplog.text


def test_it_refuses_unsigned_requests_in_debug_once_a_token_is_set(twilio, shop, settings):
    settings.DEBUG = True
    assert twilio.post(VOICE, call_params(), sign=False).status_code == 403


def test_it_refuses_other_methods(twilio, shop, client):
    assert client.put(VOICE).status_code == 405


# ---------------------------------------------------------------------------------------------
# The media-stream WebSocket upgrade: signed over the wss:// URL with no params.
# ---------------------------------------------------------------------------------------------
def _scope(path: str = STREAM, signature: str | None = None, **extra) -> dict:
    headers = [(b"host", b"10.0.0.5:8000")]
    if signature is not None:
        headers.append((b"x-twilio-signature", signature.encode()))
    return {"type": "websocket", "path": path, "query_string": b"", "headers": headers, **extra}


def test_it_matches_the_wss_handshake_vector_from_protocols(settings):
    settings.TWILIO_AUTH_TOKEN = "12345"
    settings.PUBLIC_BASE_URL = "https://example.com"
    assert check_websocket(_scope("/media-stream", "XFfwGS2Ev7f9qAP9MmRoMS7C724=")) is Verdict.VALID


def test_it_accepts_a_handshake_signed_over_the_public_wss_url():
    signature = RequestValidator(AUTH_TOKEN).compute_signature("wss://receptionist.example.com" + STREAM, {})
    assert check_websocket(_scope(signature=signature)) is Verdict.VALID


def test_it_refuses_a_handshake_signed_over_https_or_unsigned():
    https = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + STREAM, {})
    assert check_websocket(_scope(signature=https)) is Verdict.INVALID
    assert check_websocket(_scope()) is Verdict.MISSING


def test_it_refuses_handshakes_without_a_token_outside_debug_and_lets_them_through_in_debug(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.DEBUG = False
    assert check_websocket(_scope(signature="x")) is Verdict.NOT_CONFIGURED
    assert not Verdict.NOT_CONFIGURED.accepted
    settings.DEBUG = True
    assert check_websocket(_scope()) is Verdict.UNCHECKED
    assert Verdict.UNCHECKED.accepted
