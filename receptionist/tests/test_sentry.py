"""Optional Sentry: off without SENTRY_DSN; with it, events leave with phone numbers masked."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sentry_sdk

from receptionist.logs import call_logging
from receptionist.sentry import before_send, init_sentry

ROOT = Path(__file__).resolve().parents[2]
CALL_SID = "CA" + "5" * 32


def test_it_is_off_without_a_dsn(settings):
    assert settings.SENTRY_DSN == ""
    assert init_sentry("") is False
    assert not sentry_sdk.get_client().is_active()


def test_before_send_masks_phone_numbers_everywhere_in_an_event_and_tags_the_call():
    event = {
        "message": "caller +15555550123 hung up",
        "request": {
            "url": "https://receptionist.example.com/telephony/twilio/voice/",
            "query_string": "From=%2B15555550123&To=%2B15557000000",
            "data": {"From": "+15555550123", "CallSid": CALL_SID},
        },
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "value": "duplicate key (caller_number)=(+15555550123)",
                    "stacktrace": {"frames": [{"vars": {"caller_number": "'+15555550123'", "n": 3}}]},
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": "call back at (555) 555-0188"}]},
        "tags": {"engine": "local"},
    }
    with call_logging(call_sid=CALL_SID, shop="elm-street-auto"):
        sent = before_send(event, {})

    text = json.dumps(sent, ensure_ascii=False)
    assert "5555550123" not in text and "5550188" not in text
    assert sent["message"] == "caller •••0123 hung up"
    assert sent["request"]["data"] == {"From": "•••0123", "CallSid": CALL_SID}
    assert sent["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"] == {"caller_number": "'•••0123'", "n": 3}
    assert sent["tags"] == {"engine": "local", "call_sid": CALL_SID, "shop": "elm-street-auto"}


class _FakeSentry(BaseHTTPRequestHandler):
    """Sentry's ingest endpoint on 127.0.0.1: keeps each envelope it is sent."""

    envelopes: list[bytes] = []
    received = threading.Event()

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        _FakeSentry.envelopes.append(body)
        _FakeSentry.received.set()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


SCRIPT = """
import django
django.setup()
import sentry_sdk
from receptionist.logs import call_logging
with call_logging(call_sid="%s", shop="elm-street-auto"):
    try:
        raise ValueError("no work order for caller +15555550123")
    except ValueError:
        sentry_sdk.capture_exception()
sentry_sdk.flush(5)
"""


@pytest.mark.slow
def test_a_process_started_with_a_dsn_reports_errors_with_django_and_celery_and_numbers_masked():
    _FakeSentry.envelopes, _FakeSentry.received = [], threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSentry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")},
        "DJANGO_SETTINGS_MODULE": "receptionist.settings",
        "SECRET_KEY": "sentry-test-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/1",
    }
    try:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-c", SCRIPT % CALL_SID], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert _FakeSentry.received.wait(10), "no event reached the fake Sentry"
    finally:
        server.shutdown()

    items = [json.loads(line) for line in _FakeSentry.envelopes[0].splitlines() if line.startswith(b"{")]
    event = next(item for item in items if "exception" in item)
    assert event["exception"]["values"][0]["value"] == "no work order for caller •••0123"
    assert "5555550123" not in _FakeSentry.envelopes[0].decode()
    assert event["tags"]["call_sid"] == CALL_SID and event["tags"]["shop"] == "elm-street-auto"
    assert {"django", "celery"} <= set(event["sdk"]["integrations"])
    assert "user" not in event or "ip_address" not in event["user"]
