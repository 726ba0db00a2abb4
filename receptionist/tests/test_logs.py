"""Structured logs: JSON lines that name the call and shop they belong to, caller numbers masked."""

from __future__ import annotations

import contextvars
import logging

import pytest
from django.utils import timezone

from calls.tasks import summarize_call
from calls.tests.factories import CallLogFactory
from receptionist.logs import JsonFormatter, TextFormatter, bind_call, call_logging, mask_phone_numbers
from shops.tests.factories import ShopFactory
from telephony.tests.fakes import AUTH_TOKEN, PUBLIC_BASE_URL, FakeTwilio, call_params

pytestmark = pytest.mark.django_db

logger = logging.getLogger("receptionist.tests")
CALL_SID = "CA" + "7" * 32


@pytest.fixture
def twilio(client, settings) -> FakeTwilio:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    return FakeTwilio(client)


def test_it_logs_json_outside_debug():
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler.formatter, JsonFormatter)


def test_it_logs_an_incoming_call_as_json_with_its_call_sid_and_shop_and_the_caller_masked(twilio, console_log):
    shop = ShopFactory(slug="elm-street-auto", phone_number="+15557000000", ai_enabled=True)

    response = twilio.post("/telephony/twilio/voice/", call_params(CallSid=CALL_SID, From="+15555550123"))

    assert response.status_code == 200
    [line] = [line for line in console_log() if line["logger"] == "telephony.services"]
    assert line["call_sid"] == CALL_SID
    assert line["shop"] == shop.slug
    assert line["level"] == "INFO"
    assert line["time"]
    assert "•••0123" in line["message"]
    assert "5555550123" not in str(console_log())


def test_it_names_the_call_in_a_later_webhook_found_by_its_call_sid(twilio, console_log):
    shop = ShopFactory(slug="quick-stop", phone_number="+15557000000")
    CallLogFactory(shop=shop, call_sid=CALL_SID)

    twilio.post("/telephony/twilio/connect-action/", call_params(CallSid=CALL_SID, CallStatus="in-progress"))

    [line] = [line for line in console_log() if "without an outcome" in line["message"]]
    assert (line["call_sid"], line["shop"]) == (CALL_SID, "quick-stop")


def test_it_names_the_call_in_a_celery_task_about_it(console_log):
    call = CallLogFactory(shop=ShopFactory(slug="bay-auto"), ended_at=timezone.now(), outcome="resolved")

    assert summarize_call(call.pk) is True

    [line] = [line for line in console_log() if line["logger"] == "calls.tasks"]
    assert (line["call_sid"], line["shop"]) == (call.call_sid, "bay-auto")


def test_it_leaves_the_call_out_of_lines_logged_outside_a_call(console_log):
    with call_logging(call_sid=CALL_SID, shop="elm-street-auto"):
        logger.warning("inside")
    contextvars.Context().run(logger.warning, "outside")

    inside, outside = [line for line in console_log() if line["logger"] == "receptionist.tests"]
    assert (inside["call_sid"], inside["shop"]) == (CALL_SID, "elm-street-auto")
    assert "call_sid" not in outside and "shop" not in outside


def test_a_block_names_only_its_own_call_and_restores_the_one_around_it():
    from receptionist.logs import current_call

    def run():
        bind_call(call_sid="CA-around", shop="around-shop")
        with call_logging(call_sid=CALL_SID):
            inside = current_call()
            bind_call(shop="elm-street-auto")
            added = current_call()
        return inside, added, current_call()

    inside, added, after = contextvars.Context().run(run)
    assert (inside.call_sid, inside.shop) == (CALL_SID, "")
    assert (added.call_sid, added.shop) == (CALL_SID, "elm-street-auto")
    assert (after.call_sid, after.shop) == ("CA-around", "around-shop")


def test_a_binding_made_before_a_task_starts_follows_it():
    import asyncio

    from receptionist.logs import current_call

    async def scenario():
        bind_call(call_sid=CALL_SID, shop="elm-street-auto")
        seen = await asyncio.create_task(asyncio.sleep(0, result=current_call()))
        return seen

    seen = contextvars.Context().run(asyncio.run, scenario())
    assert seen is not None and (seen.call_sid, seen.shop) == (CALL_SID, "elm-street-auto")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("caller +15555550123 called", "caller •••0123 called"),
        ("GET /telephony/twilio/voice/?From=%2B15555550123&To=%2B15557000000", "From=•••0123&To=•••0000"),
        ("call back at (555) 555-0188 please", "call back at •••0188 please"),
        ("or 555.555.0177, or 1-555-555-0166", "or •••0177, or •••0166"),
    ],
)
def test_it_masks_phone_numbers_anywhere_in_a_line(text, masked):
    assert masked in mask_phone_numbers(text)
    assert not any(digits in mask_phone_numbers(text) for digits in ("5550123", "5550188", "5550177", "5550166"))


def test_it_leaves_ids_counts_and_times_alone():
    text = "call CA0123456789abcdef0123456789abcdef took 1234567890 frames at 2026-11-26 04:10:00 from 10.0.0.5"
    assert mask_phone_numbers(text) == text


def test_it_masks_a_number_in_an_exception_and_in_the_readable_format():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", ("+15555550123",), None)
    try:
        raise ValueError("duplicate caller +15555550123")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    record.call_sid, record.shop = CALL_SID, "elm-street-auto"

    text = TextFormatter().format(record)
    as_json = JsonFormatter().format(record)

    assert f"x [{CALL_SID} elm-street-auto] failed for •••0123" in text
    for output in (text, as_json):
        assert "5555550123" not in output
        assert "duplicate caller •••0123" in output


@pytest.mark.slow
def test_the_production_web_server_writes_every_line_as_json_with_numbers_masked(tmp_path):
    """The Procfile's uvicorn configures its own text logging before it loads the app; its lines (the
    access log carries webhook query strings) must come out as ours."""
    import json
    import os
    import queue
    import socket
    import subprocess
    import sys
    import threading
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_FORMAT", "DJANGO_SETTINGS_MODULE"}},
        "SECRET_KEY": "uvicorn-log-test-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    uvicorn = Path(sys.executable).parent / "uvicorn"
    command = [str(uvicorn), "receptionist.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(  # noqa: S603
        [*command, "--loop", "uvloop", "--ws", "websockets-sansio", "--proxy-headers"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True).start()
    seen: list[str] = []
    try:
        while not any("Uvicorn running on" in line for line in seen):
            seen.append(lines.get(timeout=30))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?From=%2B15555550123", timeout=10) as r:  # noqa: S310
            assert r.status == 200
        while not any("/healthz" in line for line in seen):
            seen.append(lines.get(timeout=10))
    finally:
        server.terminate()
        server.wait(10)

    records = [json.loads(line) for line in seen if line.strip()]  # every line is JSON
    [access] = [r for r in records if r["logger"] == "uvicorn.access"]
    assert "From=•••0123" in access["message"]
    assert "5555550123" not in "".join(seen)
    assert any(r["logger"] == "uvicorn.error" and "startup complete" in r["message"] for r in records)
    assert not any("color_message" in r for r in records)
