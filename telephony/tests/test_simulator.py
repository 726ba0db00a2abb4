"""The fake Twilio caller (telephony.simulator) against a small scripted relay in this process: what it
sends is what Twilio sends (signed webhook, signed handshake, message shapes, strings for numbers,
continuous 20 ms frames), and it plays our audio like Twilio's player (marks, clear)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from django.core.management import CommandError, call_command
from twilio.request_validator import RequestValidator
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from telephony.simulator import (
    SILENCE_FRAME,
    CallResult,
    Player,
    Press,
    Probe,
    Say,
    SimulatorConfig,
    percentile,
    place_call,
    place_calls,
    summarize,
)

TOKEN = "simulator-test-token"
TIMEOUT = 10
LOUD = bytes([0x10, 0x90]) * 80  # a loud μ-law frame (speech to any energy detector)


@dataclass
class FakeRelay:
    """Answers the voice webhook with <Connect><Stream>, greets, answers each caller line (loud frames
    followed by silence) with `reply_ms` of audio and a mark, and can end the call itself."""

    greeting_ms: int = 200
    reply_ms: int = 200
    close_after_replies: int | None = None  # close the stream once this many replies have been marked played
    clear_on_speech: bool = False  # barge-in: `clear` when the caller starts talking over us
    refuse_stream: bool = False
    ai_off: bool = False
    requests: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    handshake_signature: str | None = None
    echoed: list[str] = field(default_factory=list)
    replies: int = 0

    async def __aenter__(self) -> FakeRelay:
        self._http = await asyncio.start_server(self._http_client, "127.0.0.1", 0)
        self.http_port = self._http.sockets[0].getsockname()[1]
        self._ws = await serve(self._stream, "127.0.0.1", 0, process_request=self._upgrade, compression=None)
        self.ws_port = next(iter(self._ws.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ws.close()
        await self._ws.wait_closed()
        self._http.close()
        await self._http.wait_closed()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/stream"

    def signed(self, url: str, params: dict[str, str], signature: str | None) -> bool:
        return signature == RequestValidator(TOKEN).compute_signature(url, params)

    async def _http_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = (await reader.readexactly(int(headers.get("content-length", 0)))).decode()
        params = dict(parse_qsl(body))
        self.requests.append((path, params, headers.get("x-twilio-signature")))
        if not self.signed(self.base_url + path, params, headers.get("x-twilio-signature")):
            status, text = "403 Forbidden", "bad signature"
        elif path == "/telephony/twilio/voice/" and self.ai_off:
            status, text = "200 OK", "<Response><Say>Connecting you now.</Say><Dial>+15557009999</Dial></Response>"
        elif path == "/telephony/twilio/voice/":
            status, text = (
                "200 OK",
                (
                    '<?xml version="1.0" encoding="UTF-8"?><Response>'
                    f'<Connect action="{self.base_url}/connect-action/"><Stream url="{self.stream_url}">'
                    f'<Parameter name="callSid" value="{params["CallSid"]}" /><Parameter name="token" value="t0k" />'
                    "</Stream></Connect><Say>fallback</Say></Response>"
                ),
            )
        elif path == "/connect-action/":
            status, text = "200 OK", "<Response><Dial>+15557009999</Dial></Response>"
        else:
            status, text = "204 No Content", ""
        data = text.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()

    def _upgrade(self, connection: ServerConnection, request: Any) -> Any:
        self.handshake_signature = request.headers.get("X-Twilio-Signature")
        if self.refuse_stream or not self.signed(self.stream_url, {}, self.handshake_signature):
            return connection.respond(403, "no\n")
        return None

    async def _stream(self, ws: ServerConnection) -> None:
        sid = ""
        speaking = False
        quiet = 0

        async def say(ms: int, mark: str) -> None:
            audio = b"\x55" * (8 * ms)
            for i in range(0, len(audio), 160):
                payload = base64.b64encode(audio[i : i + 160]).decode()
                await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}}))
            await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": mark}}))

        try:
            async for raw in ws:
                message = json.loads(raw)
                self.received.append(message)
                event = message["event"]
                if event == "start":
                    sid = message["streamSid"]
                    await say(self.greeting_ms, "greeting")
                elif event == "media":
                    loud = base64.b64decode(message["media"]["payload"]) != SILENCE_FRAME
                    if loud and not speaking:
                        speaking = True
                        if self.clear_on_speech:
                            await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
                    quiet = 0 if loud else quiet + 1
                    if speaking and quiet >= 10:  # 200 ms of silence: the caller finished
                        speaking = False
                        self.replies += 1
                        await say(self.reply_ms, f"reply-{self.replies}")
                elif event == "mark":
                    self.echoed.append(message["mark"]["name"])
                    if self.close_after_replies is not None and message["mark"]["name"] == (
                        f"reply-{self.close_after_replies}"
                    ):
                        await ws.close()
                elif event == "dtmf":
                    await say(self.reply_ms, "transfer")
                    await ws.close()
        except ConnectionClosed:
            pass

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["event"] == name]


def config_for(relay: FakeRelay, **overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "base_url": relay.base_url,
        "auth_token": TOKEN,
        "paced": False,
        "quiet_ms": 300,
        "tail_ms": 400,
        "response_timeout": 5,
        "call_timeout": 30,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


LINE = Say("hello", frames=(LOUD,) * 10)


# ---------------------------------------------------------------------------------------------
# Twilio's side of the wire
# ---------------------------------------------------------------------------------------------
async def test_it_posts_a_signed_inbound_call_webhook_like_twilio():
    async with FakeRelay() as relay:
        result = await place_call(config_for(relay, to="+15555550100", from_="+15555550123"))
    path, params, _ = relay.requests[0]
    assert path == "/telephony/twilio/voice/"
    assert params["CallSid"].startswith("CA") and len(params["CallSid"]) == 34
    assert params["AccountSid"].startswith("AC") and len(params["AccountSid"]) == 34
    assert params["CallStatus"] == "ringing"
    assert params["Direction"] == "inbound"
    assert params["ApiVersion"] == "2010-04-01"
    assert (params["From"], params["Caller"], params["To"], params["Called"]) == (
        "+15555550123",
        "+15555550123",
        "+15555550100",
        "+15555550100",
    )
    assert result.webhook_status == 200
    assert result.twiml_verbs == ["Connect", "Say"]
    assert result.stream_parameters["callSid"] == params["CallSid"]


async def test_it_opens_the_stream_with_a_signed_handshake_and_twilios_first_messages():
    async with FakeRelay() as relay:
        result = await place_call(config_for(relay))
    assert relay.handshake_signature == RequestValidator(TOKEN).compute_signature(relay.stream_url, {})
    connected, start = relay.received[0], relay.received[1]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    body = start["start"]
    assert body["streamSid"] == start["streamSid"] and body["streamSid"].startswith("MZ")
    assert body["callSid"] == result.call_sid
    assert body["tracks"] == ["inbound"]
    assert body["customParameters"] == {"callSid": result.call_sid, "token": "t0k"}
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


async def test_it_sends_numbered_20_ms_frames_all_call_long_and_stops_at_the_end():
    async with FakeRelay() as relay:
        result = await place_call(config_for(relay), [LINE])
    media = relay.events("media")
    assert len(media) == result.caller_frames
    for n, message in enumerate(media, start=1):
        m = message["media"]
        assert (m["track"], m["chunk"], m["timestamp"]) == ("inbound", str(n), str((n - 1) * 20))
        assert len(base64.b64decode(m["payload"])) == 160
    sequence = [int(m["sequenceNumber"]) for m in relay.received if "sequenceNumber" in m]
    assert sequence == list(range(1, len(sequence) + 1))
    assert relay.received[-1]["event"] == "stop"
    assert relay.received[-1]["stop"]["callSid"] == result.call_sid
    assert result.closed_by == "caller"
    assert result.ok, result.errors


async def test_it_reports_the_receptionists_answers_and_their_latency():
    async with FakeRelay(reply_ms=300) as relay:
        result = await place_call(config_for(relay), [LINE, Say("again", frames=(LOUD,) * 5)])
    assert result.ok, result.errors
    assert result.greeting_ms is not None
    assert [e.said for e in result.exchanges] == ["hello", "again"]
    for exchange in result.exchanges:
        assert exchange.first_audio_ms is not None and exchange.first_audio_ms >= 0
        assert exchange.audio_ms == pytest.approx(300, abs=20)
    assert result.audio_ms == pytest.approx(200 + 300 + 300, abs=40)


async def test_it_echoes_marks_after_the_audio_before_them_has_played_in_real_time():
    async with FakeRelay(greeting_ms=400) as relay:
        began = time.perf_counter()
        result = await place_call(config_for(relay, realtime_playback=True))
    assert "greeting" in relay.echoed
    assert result.marks_echoed == result.marks
    # 400 ms of greeting had to "play" before its mark came back.
    assert result.duration_s >= 0.4
    assert time.perf_counter() - began >= 0.4


async def test_it_clears_its_playback_and_echoes_pending_marks_at_once_on_clear():
    async with FakeRelay(greeting_ms=5000, clear_on_speech=True) as relay:
        barge_in = Say("stop talking", frames=(LOUD,) * 10, over_greeting=True)
        result = await place_call(config_for(relay, realtime_playback=True), [barge_in])
    assert result.clears == 1
    # The 5 s greeting was cut short: its mark came back long before it could have played.
    assert relay.echoed[0] == "greeting"
    assert result.duration_s < 5
    assert result.ok, result.errors


async def test_it_follows_connect_action_when_the_server_ends_the_stream():
    async with FakeRelay(close_after_replies=1) as relay:
        result = await place_call(config_for(relay), [LINE, Say("never said", frames=(LOUD,) * 5)])
    assert result.closed_by == "server"
    assert [e.said for e in result.exchanges] == ["hello"]
    assert result.after_stream_verbs == ["Dial"]
    assert result.after_stream_dial == "+15557009999"
    paths = [path for path, _, _ in relay.requests]
    assert paths == ["/telephony/twilio/voice/", "/connect-action/", "/telephony/twilio/status/"]
    action = relay.requests[1][1]
    assert action["CallStatus"] == "in-progress"
    status = relay.requests[2][1]
    assert status["CallStatus"] == "completed" and int(status["CallDuration"]) >= 1


async def test_it_presses_keys_as_dtmf_messages():
    async with FakeRelay() as relay:
        result = await place_call(config_for(relay), [Press("0")])
    (dtmf,) = relay.events("dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "0"}
    assert result.closed_by == "server"
    assert result.exchanges[0].said == "[pressed 0]"
    assert result.exchanges[0].first_audio_ms is not None


async def test_it_hangs_up_when_told_to():
    async with FakeRelay() as relay:
        result = await place_call(config_for(relay, hangup_after=0.3), [Say("long", frames=(LOUD,) * 1000)])
    assert result.closed_by == "caller"
    assert relay.received[-1]["event"] == "stop"


async def test_it_reports_a_refused_stream_and_a_refused_webhook():
    async with FakeRelay(refuse_stream=True) as relay:
        refused = await place_call(config_for(relay))
        forged = await place_call(config_for(relay, auth_token="not-the-token"))
    assert refused.stream_refused == 403
    assert not refused.ok
    assert forged.webhook_status == 403
    assert forged.stream_url == ""
    assert not forged.ok


async def test_it_reports_a_webhook_that_never_answers_as_such_not_as_a_call_that_ran_long():
    accepted = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = SimulatorConfig(base_url=f"http://127.0.0.1:{port}", auth_token=TOKEN, http_timeout=0.3)
        result = await place_call(config)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
    assert not result.ok
    assert result.errors == [
        f"WebhookUnanswered: POST http://127.0.0.1:{port}/telephony/twilio/voice/ got no answer: timed out"
    ]


async def test_it_reports_a_call_that_twilio_answers_without_a_stream():
    async with FakeRelay(ai_off=True) as relay:
        result = await place_call(config_for(relay), [LINE])
    assert result.ok
    assert (result.twiml_verbs, result.say, result.dial) == (["Say", "Dial"], ["Connecting you now."], "+15557009999")
    assert result.stream_url == "" and relay.received == []


async def test_it_places_concurrent_calls_and_summarises_them():
    async with FakeRelay() as relay:
        results = await place_calls(config_for(relay), [LINE], calls=4, concurrency=2)
    assert len({r.call_sid for r in results}) == 4
    summary = summarize(results)
    assert summary.calls == 4 and summary.failures == 0
    assert summary.answer_ms_p50 is not None and summary.answer_ms_p99 is not None


class StampingProbe(Probe):
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.received: list[str] = []

    def outgoing_frame(self, index: int, frame: bytes) -> bytes:
        return index.to_bytes(4, "big") + frame[4:]

    def frame_sent(self, payload: str, at: float) -> None:
        self.sent.append(payload)

    def media_received(self, payload: str, at: float) -> None:
        self.received.append(payload)


async def test_it_lets_a_benchmark_mark_every_frame_and_time_both_directions():
    probe = StampingProbe()
    async with FakeRelay() as relay:
        result = await place_call(config_for(relay), [LINE], probe=probe)
    media = [base64.b64decode(m["media"]["payload"]) for m in relay.events("media")]
    assert [int.from_bytes(frame[:4], "big") for frame in media] == list(range(len(media)))
    assert probe.sent == [m["media"]["payload"] for m in relay.events("media")]
    assert len(probe.received) == result.media_frames > 0


# ---------------------------------------------------------------------------------------------
# The player and the numbers, without a network
# ---------------------------------------------------------------------------------------------
def test_it_plays_audio_in_order_and_releases_marks_when_their_audio_has_played():
    player = Player(realtime=True)
    assert player.media(1600, now=10.0) == 10.0  # 200 ms
    assert player.mark("a", now=10.0) == []
    assert player.media(800, now=10.05) == pytest.approx(10.2)  # queued behind the first piece
    assert player.mark("b", now=10.05) == []
    assert player.due(10.19) == []
    assert player.due(10.2) == ["a"]
    assert player.next_due() == pytest.approx(10.3)
    assert player.due(10.31) == ["b"]
    assert player.idle(10.31)
    assert player.mark("c", now=11.0) == ["c"]  # nothing playing: echoed at once


def test_it_echoes_every_pending_mark_on_clear():
    player = Player(realtime=True)
    player.media(8000, now=0.0)
    player.mark("x", now=0.0)
    player.mark("y", now=0.0)
    assert player.clear(now=0.1) == ["x", "y"]
    assert player.idle(0.1)


def test_it_plays_instantly_without_realtime_playback():
    player = Player(realtime=False)
    player.media(8000, now=1.0)
    assert player.mark("x", now=1.0) == ["x"]


def test_it_computes_percentiles_and_failures():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 101)), 99) == 99
    greeted = CallResult(call_sid="CA1", webhook_status=200, stream_url="ws://x/", greeting_ms=10.0)
    results = [greeted, CallResult(call_sid="CA2", errors=["boom"])]
    summary = summarize(results)
    assert (summary.calls, summary.failures, summary.errors) == (2, 1, ["boom"])


# ---------------------------------------------------------------------------------------------
# manage.py simulate_call
# ---------------------------------------------------------------------------------------------
async def test_the_command_places_a_call_and_prints_it_as_json():
    out = io.StringIO()
    async with FakeRelay() as relay:
        args = ["--url", relay.base_url, "--public-url", relay.base_url, "--auth-token", TOKEN]
        args += ["--say", "hello there", "--dtmf", "0", "--unpaced", "--no-transcript-from-db", "--json"]
        await asyncio.to_thread(call_command, "simulate_call", *args, stdout=out)
    result = json.loads(out.getvalue())
    assert [e["said"] for e in result["exchanges"]] == ["hello there", "[pressed 0]"]
    assert result["exchanges"][0]["first_audio_ms"] is not None
    assert result["after_stream_verbs"] == ["Dial"]
    assert relay.events("dtmf")[0]["dtmf"]["digit"] == "0"


async def test_the_command_fails_when_the_call_fails():
    async with FakeRelay(refuse_stream=True) as relay:
        args = ["--url", relay.base_url, "--public-url", relay.base_url, "--auth-token", TOKEN, "--unpaced"]
        with pytest.raises(CommandError):
            await asyncio.to_thread(
                call_command, "simulate_call", *args, "--no-transcript-from-db", stdout=io.StringIO()
            )
