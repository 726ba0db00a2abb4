"""Fake Twilio for tests: signed webhook requests exactly as Twilio makes them (form-encoded, signed over
the public URL), TwiML parsing helpers, and a fake REST HTTP client that records what the SDK sends."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode

from django.test import Client
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "a" * 32
PUBLIC_BASE_URL = "https://receptionist.example.com"


def call_params(**overrides: str) -> dict[str, str]:
    """What Twilio posts for a fresh inbound call (protocols.md A1)."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+15555550123",
        "Caller": "+15555550123",
        "To": "+15557000000",
        "Called": "+15557000000",
        "FromCity": "SPRINGFIELD",
    }
    params.update(overrides)
    return params


@dataclass
class FakeTwilio:
    """Makes webhook requests the way Twilio does (POST form body or GET query), signed with the token."""

    client: Client
    token: str = AUTH_TOKEN

    def sign(self, url: str, params: dict[str, str] | None = None) -> str:
        return RequestValidator(self.token).compute_signature(url, params or {})

    def post(self, path: str, params: dict[str, str], *, signature: str | None = None, sign: bool = True):
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = (
                signature if signature is not None else self.sign(PUBLIC_BASE_URL + path, params)
            )
        return self.client.post(
            path, data=urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers
        )

    def get(self, path: str, params: dict[str, str]):
        url_path = f"{path}?{urlencode(params)}"
        signature = self.sign(PUBLIC_BASE_URL + url_path)
        return self.client.get(url_path, headers={"X-Twilio-Signature": signature})


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's answer, not untrusted input
    assert root.tag == "Response"
    return root


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


@dataclass
class RecordedRequest:
    method: str
    url: str
    data: dict


class FakeTwilioHttp(HttpClient):
    """Stands in for the network under `twilio.rest.Client`: records each request and answers with a
    canned JSON body like the real API (`{"sid": ..., "status": ...}`)."""

    def __init__(self, status: int = 200, body: dict | None = None) -> None:
        super().__init__(logging.getLogger("fake-twilio"), is_async=False)
        self.status = status
        self.body = body if body is not None else {"sid": "CA" + "0" * 32, "status": "in-progress"}
        self.requests: list[RecordedRequest] = []

    def request(
        self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False
    ):
        self.requests.append(RecordedRequest(method=method, url=uri, data=dict(data or {})))
        return Response(self.status, json.dumps(self.body))
