"""Twilio's REST API: the only module that calls out to Twilio (live-call control and SMS).

Off, and saying so, without credentials: building `TwilioCallControl` without TWILIO_ACCOUNT_SID and
TWILIO_AUTH_TOKEN raises `TwilioNotConfigured`. Tests pass a fake `twilio.http.HttpClient` that records
requests, so nothing leaves the machine.

The SDK is synchronous; async callers (the media consumer) run these methods in a worker thread
(`asgiref.sync.sync_to_async(..., thread_sensitive=False)`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from shops.phones import mask

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
_CALL_NOT_FOUND = 20404


class TwilioNotConfigured(ImproperlyConfigured):
    """Twilio credentials are missing, so calls cannot be controlled or texts sent."""


def twilio_configured() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)


class TwilioCallControl:
    """Transfer or end a live call, send a text."""

    def __init__(self, *, account_sid: str, auth_token: str, http_client: HttpClient | None = None) -> None:
        if not account_sid or not auth_token:
            raise TwilioNotConfigured(
                "Twilio is off: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to control calls and send texts."
            )
        self._client = Client(
            account_sid,
            auth_token,
            http_client=http_client or TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS),
        )

    @classmethod
    def from_settings(cls, *, http_client: HttpClient | None = None) -> TwilioCallControl:
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN, http_client=http_client
        )

    def transfer(
        self, call_sid: str, *, to_number: str, action_url: str, timeout: int = 20, say: str | None = None
    ) -> None:
        """Replace the call's TwiML with `<Dial>` to `to_number` (ringing `timeout` seconds; Twilio then
        requests `action_url` with DialCallStatus). Ends an active media stream. Raises
        TwilioRestException if Twilio refuses (e.g. the call has already ended)."""
        vr = VoiceResponse()
        if say:
            vr.say(say)
        vr.dial(to_number, timeout=timeout, action=action_url, method="POST")
        self._client.calls(call_sid).update(twiml=str(vr))
        logger.info("call %s: transfer to %s requested", call_sid, mask(to_number))

    def hang_up(self, call_sid: str) -> bool:
        """End the call. Returns False when Twilio says it has already ended (not found), True otherwise."""
        try:
            self._client.calls(call_sid).update(status="completed")
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code == _CALL_NOT_FOUND:
                logger.info("call %s: already ended", call_sid)
                return False
            raise
        logger.info("call %s: hang-up requested", call_sid)
        return True

    def send_sms(self, *, to: str, from_: str, body: str) -> str:
        """Send a text; returns the message SID (`SM…`)."""
        message = self._client.messages.create(to=to, from_=from_, body=body)
        logger.info("SMS %s to %s queued", message.sid, mask(to))
        return str(message.sid)
