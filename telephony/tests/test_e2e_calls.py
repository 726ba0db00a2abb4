"""Whole phone calls through the whole stack: telephony.simulator plays Twilio against Daphne.

Two Daphne servers run in subprocesses on their own database (a fresh SQLite file, or a fresh
PostgreSQL database next to DATABASE_URL's), seeded with the demo shop (John Smith's Civic, RO 1001,
ready for pickup, customer phone +15555550123) and a shop whose calls last 4 seconds:

* `offline`: VOICE_ENGINE=local (endpointer → PocketSphinx → rules → espeak-ng);
* `realtime`: VOICE_ENGINE=openai against the fake OpenAI Realtime server this test runs on a fixed port
  (voice.testing.fake_realtime, one per test, scripted per test).

Synthetic speech is recognised unreliably (protocols.md D), so offline calls assert coarse facts (a caller
turn and an answer were recorded, audio followed each line); exact content is checked with the Realtime
fake, whose transcripts and tool calls are scripted. Server and test meet only over HTTP/WebSocket and
the database: what the server recorded is read by a helper process on the server's settings, once the
server has logged the end of the stream (no polling).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from telephony.simulator import Press, Probe, Say, SimulatorConfig, _post_form, parse_twiml, place_call
from tests.databases import own_database_url
from voice.audio import pcm16_to_mulaw
from voice.testing.fake_realtime import FakeRealtime, Turn

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AUTH_TOKEN = "e2e-twilio-auth-token"
SHOP = "+15555550100"  # the demo shop
SHORT_SHOP = "+15555550300"  # max_call_seconds = 4
JOHN = "+15555550123"  # John Smith: his number is on RO 1001
STRANGER = "+15555550987"
SHOP_LINE = "+15555550199"
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAKE_REALTIME_PORT = free_port()

SETUP = """
from shops.demo import seed_demo
from shops.models import Shop
demo = seed_demo().shop
Shop.objects.filter(phone_number="+15555550300").delete()
short = Shop.objects.create(name="Quick Stop Auto", slug="quick-stop", phone_number="+15555550300",
                            transfer_number="+15555550399", timezone=demo.timezone, max_call_seconds=4)
print("ok")
"""

# A long-lived process on the server's settings that answers "what did the server record for this call".
RECORDS = """
import json, sys
import django
django.setup()
from django.db import close_old_connections
from telephony.simulator import call_record
print("ready", flush=True)
for line in sys.stdin:
    close_old_connections()
    print(json.dumps(call_record(line.strip())), flush=True)
"""


# ---------------------------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY="e2e-calls-secret-key-not-for-production",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "e" * 32,
        CELERY_TASK_ALWAYS_EAGER="1",
        # The after-call summary may ask the OpenAI text API: a closed local port, never OpenAI's host.
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.pop("OPENAI_API_KEY", None)
    with own_database_url("e2e_calls", tmp_path_factory.mktemp("e2e-calls")) as database_url:
        env["DATABASE_URL"] = database_url
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)  # noqa: S603
        out = subprocess.run(  # noqa: S603
            [*manage, "shell", "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        )
        assert out.stdout.strip().endswith("ok"), out.stderr
        yield env


class Server:
    """Daphne in a subprocess; its log is kept, and a test can wait for a line (no polling)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "PUBLIC_BASE_URL": self.url}
        daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
        self.proc = subprocess.Popen(  # noqa: S603
            [daphne, "-b", "127.0.0.1", "-p", str(self.port), "receptionist.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.wait_for_log(r"Listening on TCP address", START_TIMEOUT) or self.proc.poll() is not None:
            self.stop()
            pytest.fail("Daphne did not start:\n" + "".join(self.log[-40:]))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.log.append(line)
                self._changed.notify_all()
        with self._changed:
            self.log.append("<exited>")
            self._changed.notify_all()

    def wait_for_log(self, pattern: str, timeout: float) -> bool:
        regex = re.compile(pattern)
        with self._changed:
            return self._changed.wait_for(
                lambda: any(regex.search(line) for line in self.log) or "<exited>" in self.log, timeout
            ) and any(regex.search(line) for line in self.log)

    def stream_closed(self, call_sid: str, timeout: float = 30) -> None:
        """The consumer logs this after the session has stopped and written everything."""
        assert self.wait_for_log(rf"media stream for call {call_sid} closed", timeout), "".join(self.log[-30:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def offline(server_env) -> Iterator[Server]:
    server = Server({**server_env, "VOICE_ENGINE": "local"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def realtime(server_env) -> Iterator[Server]:
    server = Server(
        {
            **server_env,
            "VOICE_ENGINE": "openai",
            "OPENAI_API_KEY": "test",
            "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{FAKE_REALTIME_PORT}/v1",
        }
    )
    yield server
    server.stop()


@pytest.fixture
async def fake():
    """The fake OpenAI Realtime server the `realtime` Daphne talks to; a test sets `fake.script`."""
    async with FakeRealtime(port=FAKE_REALTIME_PORT) as server:
        yield server


@pytest.fixture(scope="module")
def records(server_env) -> Iterator[Any]:
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", RECORDS],
        cwd=ROOT,
        env={**server_env, "DJANGO_SETTINGS_MODULE": "receptionist.settings"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = proc.stdin, proc.stdout
    assert stdout is not None and stdin is not None
    assert stdout.readline().strip() == "ready"

    def read(call_sid: str) -> dict[str, Any] | None:
        stdin.write(call_sid + "\n")
        stdin.flush()
        return json.loads(stdout.readline())

    yield read
    stdin.close()
    proc.wait(10)


def caller(server: Server, **overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "base_url": server.url,
        "auth_token": AUTH_TOKEN,
        "to": SHOP,
        "from_": JOHN,
        "paced": False,
        "quiet_ms": 1500,
        "tail_ms": 1000,
        "response_timeout": 20,
        "call_timeout": 90,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


def tone_frames(ms: int = 800) -> tuple[bytes, ...]:
    """A loud μ-law tone: speech to the fake Realtime server's energy VAD."""
    pcm = struct.pack(f"<{8 * ms}h", *(int(8000 * math.sin(2 * math.pi * 300 * i / 8000)) for i in range(8 * ms)))
    audio = pcm16_to_mulaw(pcm)
    return tuple(audio[i : i + 160] for i in range(0, len(audio), 160))


def spoken(text: str, **kwargs: Any) -> Say:
    """A caller line for the Realtime fake: a tone (its VAD hears it); the transcript is scripted."""
    return Say(text, frames=tone_frames(), **kwargs)


def turns(record: dict[str, Any], role: str) -> list[str]:
    return [t["text"] for t in record["turns"] if t["role"] == role]


def tools(record: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [t for t in record["tool_calls"] if t["name"] == name]


# ---------------------------------------------------------------------------------------------
# The offline engine
# ---------------------------------------------------------------------------------------------
async def test_it_answers_each_line_of_a_call_offline(offline, records):
    result = await place_call(caller(offline), [Say("is my civic ready"), Say("what are your hours")])
    offline.stream_closed(result.call_sid)
    assert result.ok, result.errors
    assert result.greeting_ms is not None
    assert all(e.first_audio_ms is not None and e.audio_ms > 500 for e in result.exchanges), result.exchanges
    record = records(result.call_sid)
    assert record["engine"] == "local"
    assert len(turns(record, "caller")) >= 2
    assert len(turns(record, "assistant")) >= 3  # the greeting and an answer to each line
    assert record["outcome"] == "caller_hung_up"
    assert record["status"] == "completed"


async def test_it_puts_the_caller_through_when_they_press_0(offline, records):
    result = await place_call(caller(offline), [Press("0")])
    offline.stream_closed(result.call_sid)
    assert result.closed_by == "server"
    assert result.exchanges[0].first_audio_ms is not None  # "let me connect you" before the stream closed
    assert result.after_stream_verbs == ["Dial"]
    assert result.after_stream_dial == SHOP_LINE
    record = records(result.call_sid)
    assert record["outcome"] == "transferred"
    assert tools(record, "transfer_to_human")[0]["ok"]


async def test_it_says_goodbye_and_hangs_up_at_the_shops_max_call_length(offline, records):
    result = await place_call(caller(offline, to=SHORT_SHOP, realtime_playback=True, hold=True, hangup_after=40))
    offline.stream_closed(result.call_sid)
    assert result.closed_by == "server"
    assert result.duration_s < 30
    assert result.marks_echoed == result.marks  # the goodbye had played before the stream closed
    assert result.after_stream_verbs == ["Hangup"]
    record = records(result.call_sid)
    assert record["outcome"] == "resolved"
    assert record["duration_seconds"] is not None and record["duration_seconds"] >= 4


async def test_it_refuses_a_forged_webhook(offline, records):
    result = await place_call(caller(offline, auth_token="not-the-auth-token"))
    assert result.webhook_status == 403
    assert result.stream_url == ""
    assert records(result.call_sid) is None


async def test_it_closes_a_stream_whose_token_is_bad(offline):
    config = caller(offline)
    params = {
        "AccountSid": config.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + uuid.uuid4().hex,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": JOHN,
        "To": SHOP,
    }
    voice_url = offline.url + "/telephony/twilio/voice/"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(voice_url, params)
    status, body = _post_form(voice_url, params, signature, 10)
    assert status == 200
    stream = parse_twiml(body).find("Connect/Stream")
    url = stream.get("url")
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}

    with pytest.raises(InvalidStatus) as refused:  # no signature on the handshake
        await connect(url, open_timeout=10)
    assert refused.value.response.status_code == 403

    headers = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, {})}
    async with connect(url, additional_headers=headers, open_timeout=10) as ws:
        start = {
            "streamSid": "MZ" + uuid.uuid4().hex,
            "accountSid": config.account_sid,
            "callSid": params["CallSid"],
            "tracks": ["inbound"],
            "customParameters": {**parameters, "token": parameters["token"][:-3] + "xyz"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(
            json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": start["streamSid"], "start": start})
        )
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4403


# ---------------------------------------------------------------------------------------------
# The OpenAI Realtime engine (fake server, scripted)
# ---------------------------------------------------------------------------------------------
def _speak(output: Any) -> str:
    """The fake's reply after a tool call: what the tool said to say (as a model would)."""
    if isinstance(output, dict):
        return output.get("speak") or json.dumps(output)
    return str(output)


async def test_it_tells_a_caller_whose_number_matches_the_status_of_their_car(realtime, fake, records):
    fake.script = [
        Turn(transcript="is my civic ready", tool_call=("get_work_order_status", {}), reply=_speak),
    ]
    result = await place_call(caller(realtime, from_=JOHN), [spoken("is my civic ready")])
    realtime.stream_closed(result.call_sid)
    assert result.ok, result.errors
    assert result.exchanges[0].first_audio_ms is not None
    record = records(result.call_sid)
    assert record["engine"] == "openai"
    assert "is my civic ready" in turns(record, "caller")
    (status,) = tools(record, "get_work_order_status")
    assert status["ok"]
    assert status["result"] == "RO 1001: ready_for_pickup"
    output = next(iter(fake.connection.function_outputs.values()))
    output = json.loads(output) if isinstance(output, str) else output
    assert "ready for pickup" in json.dumps(output).lower()
    assert record["intent"] == "CHECK_STATUS"


async def test_it_asks_a_caller_it_cannot_verify_for_details_instead(realtime, fake, records):
    fake.script = [
        Turn(transcript="is my civic ready", tool_call=("get_work_order_status", {}), reply=_speak),
    ]
    result = await place_call(caller(realtime, from_=STRANGER), [spoken("is my civic ready")])
    realtime.stream_closed(result.call_sid)
    assert result.ok, result.errors
    record = records(result.call_sid)
    (status,) = tools(record, "get_work_order_status")
    assert not status["ok"]
    assert status["result"] == "not verified"
    output = json.dumps(next(iter(fake.connection.function_outputs.values()))).lower()
    assert "ready_for_pickup" not in output and "ready for pickup" not in output
    assert "last name" in " ".join(turns(record, "assistant")).lower()


async def test_it_tells_anyone_the_hours(realtime, fake, records):
    fake.script = [Turn(transcript="when are you open", tool_call=("get_business_hours", {}), reply=_speak)]
    result = await place_call(caller(realtime, from_=STRANGER), [spoken("when are you open")])
    realtime.stream_closed(result.call_sid)
    record = records(result.call_sid)
    (hours,) = tools(record, "get_business_hours")
    assert hours["ok"]
    assert "GET_HOURS" in record["intents"]


async def test_it_puts_the_caller_through_when_they_ask_for_a_person(realtime, fake, records):
    fake.script = [
        Turn(
            transcript="can I talk to a person",
            tool_call=("transfer_to_human", {"reason": "caller asked"}),
            reply="Connecting you now.",
        )
    ]
    result = await place_call(caller(realtime), [spoken("can I talk to a person")])
    realtime.stream_closed(result.call_sid)
    assert result.closed_by == "server"
    assert result.after_stream_verbs == ["Dial"]
    assert result.after_stream_dial == SHOP_LINE
    record = records(result.call_sid)
    assert record["outcome"] == "transferred"


async def test_it_stops_talking_when_the_caller_talks_over_the_greeting(realtime, fake, records):
    fake.script = [Turn(transcript="sorry, hello?", reply="Hi, how can I help?")]
    barge_in = spoken("sorry, hello?", over_greeting=True)
    result = await place_call(caller(realtime, realtime_playback=True), [barge_in])
    realtime.stream_closed(result.call_sid)
    assert result.clears >= 1
    assert result.marks_echoed == result.marks  # a clear echoes every pending mark
    assert result.exchanges[0].first_audio_ms is not None  # and it answered the caller


class Heard(Probe):
    """Every media frame the caller received, with its arrival time (perf_counter)."""

    def __init__(self) -> None:
        self.media: list[tuple[float, str]] = []
        self.first = asyncio.Event()

    def media_received(self, payload: str, at: float) -> None:
        self.media.append((at, payload))
        self.first.set()

    def first_not_from(self, fake: FakeRealtime, after: float) -> float | None:
        """When the first frame after `after` that the Realtime server did not send arrived (the offline voice)."""
        realtime_audio = {e["delta"] for c in fake.connections for e in c.sent_events("response.output_audio.delta")}
        return next((at for at, payload in self.media if at >= after and payload not in realtime_audio), None)


async def test_it_carries_on_offline_when_the_realtime_server_dies_mid_call(realtime, fake, records):
    """The socket drops mid-reply: the caller hears the offline voice within 1.5 s of the drop (measured at
    the caller: drop → first media frame the Realtime server did not send), and the call is logged as a
    fallback. The μ-law the offline voice sends is told apart from Realtime's by payload."""
    fake.script = [Turn(transcript="is my civic ready", reply="Let me look that up for you, one moment.", drop_after=1)]
    heard = Heard()
    result = await place_call(caller(realtime), [spoken("is my civic ready"), Say("what are your hours")], probe=heard)
    realtime.stream_closed(result.call_sid)
    assert result.ok, result.errors
    dropped = fake.connection.dropped_at
    assert dropped is not None
    offline_at = heard.first_not_from(fake, dropped)
    assert offline_at is not None
    assert (offline_at - dropped) * 1000 < 1500
    assert result.dead_air_ms < 3000
    later = result.exchanges[1]
    assert later.first_audio_ms is not None and later.audio_ms > 500  # the offline engine answered
    record = records(result.call_sid)
    assert record["fallback_reason"]
    assert record["engine"] == "local"
    print(f"drop → offline voice {(offline_at - dropped) * 1000:.0f} ms; dead air {result.dead_air_ms:.0f} ms")
