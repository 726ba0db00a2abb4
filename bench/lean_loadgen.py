"""A lean load generator for bench/calls.py (`--loadgen lean`): the same calls on the wire as the full one
(telephony.simulator callers, voice.testing.fake_realtime), for a fraction of its CPU, so that the relay
under test, not the load generator, owns the two cores.

Callers: one asyncio process runs `--count` calls. Call setup (signed webhook, TwiML, status callback)
reuses the simulator's code; the media stream is a raw asyncio Protocol with hand-written RFC 6455 client
framing. One ticker per process fires every 5 ms and sends the 20 ms frame of the calls in that 5 ms
bucket (4 phases, no burst of all calls at once); the same tick echoes the marks whose audio has played
(at most 5 ms after the simulator would). Frames are pre-encoded text around a 12-character marker:
speech frames carry marker tag 2, silence tag 0, so the fake's VAD reads 2 base64 characters.

Fake: a raw asyncio WebSocket server sending the full fake's GA Realtime events for its empty bench script
(no transcription events: the full fake has no transcript to send either), every response `--reply-ms`
of μ-law tone in 100 ms chunks written as one burst, each chunk stamped marker(1, n). Responses are
written whole before the next client event is read, so none is ever active for `response.cancel`.
Not implemented (bench/calls.py never needs them): scripted turns, tool calls, text-only responses,
paced audio, `audio/pcm` output (chunks are always 800 bytes), error injection; wss:// streams.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import heapq
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

from bench.calls import (
    AUTH_TOKEN,
    KEY,
    caller_config,
    caller_steps,
    marker,
    tone,
)
from telephony.simulator import (
    BYTES_PER_MS,
    LATE_MS,
    SILENCE_FRAME,
    Player,
    SimulatorConfig,
    _call_params,
    _post_form,
    _swap_origin,
    parse_twiml,
    send_status_callback,
)
from voice.testing.fake_realtime import (
    DEFAULT_REPLY,
    SEMANTIC_VAD_DEFAULTS,
    SERVER_VAD_DEFAULTS,
    FakeConnection,
    ProtocolError,
    _merge,
    _quoted_line,
    response_usage,
)

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure fallback, slower but equivalent

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        """XOR `data` with the 4-byte `mask` repeated (RFC 6455 5.3)."""
        n = len(data)
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TICK = 0.005  # the ticker's period: 4 buckets per 20 ms frame
BUCKETS = 4
SPEECH_TAG = 2  # marker tag of caller speech frames (silence: 0)
SPEECH_PREFIX = base64.b64encode(marker(SPEECH_TAG, 0))[:2].decode()  # tag and first nibble: 2 characters
CLOSE_TIMEOUT = 10.0


def _quiet_b64(*nibbles: int) -> str:
    """base64 of marker bytes (0xF0 | nibble): 3 bytes, 4 characters, so markers are built from parts."""
    return base64.b64encode(bytes(0xF0 | n for n in nibbles)).decode()


# The last 3 marker bytes: the low 12 bits of the frame index (marker(tag, value) nibbles are tag, then
# value's 8 nibbles: process, process, call, call, index bits 15-12, 11-8, 7-4, 3-0).
MARKER_LOW = [_quiet_b64((i >> 8) & 15, (i >> 4) & 15, i & 15) for i in range(4096)]


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324 - the protocol's


@functools.cache
def frame_header(opcode: int, length: int, mask: bool) -> bytes:
    """A FIN frame header for `length` payload bytes (the 4 mask bytes follow when `mask`)."""
    bit = 0x80 if mask else 0
    if length < 126:
        return bytes((0x80 | opcode, bit | length))
    if length < 65536:
        return bytes((0x80 | opcode, bit | 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, bit | 127)) + length.to_bytes(8, "big")


class FrameReader:
    """Parses a WebSocket byte stream into messages: reassembles fragments, unmasks client frames and
    hands control frames (ping, pong, close) over separately."""

    def __init__(self, on_message: Callable[[int, bytes], None], on_control: Callable[[int, bytes], None]) -> None:
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.fragment_opcode = 0
        self.on_message = on_message
        self.on_control = on_control

    def feed(self, data: bytes) -> None:
        if self.buffer:  # the rest of a frame that came in pieces
            self.buffer += data
            data = bytes(self.buffer)
            self.buffer.clear()
        buf = data
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            masked = b1 & 0x80
            if masked:
                head += 4
            if n - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            if masked:
                payload = apply_mask(payload, buf[pos + head - 4 : pos + head])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode >= 8:
                self.on_control(opcode, payload)
            elif not b0 & 0x80:  # a fragment: keep until FIN
                if opcode:
                    self.fragment_opcode = opcode
                self.fragments.append(payload)
            elif opcode == 0:
                self.fragments.append(payload)
                self.on_message(self.fragment_opcode, b"".join(self.fragments))
                self.fragments = []
            else:
                self.on_message(opcode, payload)
        if pos < n:
            self.buffer += buf[pos:]


def mask_keys(size: int = 8192) -> Iterator[bytes]:
    """Mask keys for client frames, cut from bulk os.urandom buffers (RFC 6455 wants them unpredictable)."""
    while True:
        pool = os.urandom(size)
        yield from (pool[i : i + 4] for i in range(0, size, 4))


MASKS = mask_keys()


def client_frame(text: bytes, opcode: int = 1) -> bytes:
    """A masked client frame carrying `text`."""
    mask = next(MASKS)
    return frame_header(opcode, len(text), True) + mask + apply_mask(text, mask)


def server_frame(payload: bytes, opcode: int = 1) -> bytes:
    """An unmasked server frame carrying `payload`."""
    return frame_header(opcode, len(payload), False) + payload


# ---------------------------------------------------------------------------------------------
# Callers
# ---------------------------------------------------------------------------------------------
class CallSummary:
    """What call_summary() reports of a simulator call, kept as the lean call runs."""

    def __init__(self, call_sid: str) -> None:
        self.call_sid = call_sid
        self.errors: list[str] = []
        self.late_frames = 0
        self.media_frames = 0
        self.caller_behind = 0
        self.exchanges = 0
        self.answer_ms: list[float] = []
        self.greeting_ms: float | None = None
        self.closed_by = ""
        self.webhook_status = 0

    def as_dict(self) -> dict[str, Any]:
        ok = not self.errors and self.webhook_status == 200 and self.greeting_ms is not None
        return {
            "call_sid": self.call_sid,
            "ok": ok and self.closed_by == "caller",
            "errors": self.errors,
            "late_frames": self.late_frames,
            "media_frames": self.media_frames,
            "caller_behind": self.caller_behind,
            "exchanges": self.exchanges,
            "answer_ms": self.answer_ms,
            "greeting_ms": self.greeting_ms,
            "closed_by": self.closed_by,
        }


# Script states of a call (telephony.simulator._Call._script, as a state machine run on the call's slot).
GREETING, WAIT_DONE, SPEAKING, WAIT_ANSWER, DONE = range(5)


class LeanCall(asyncio.Protocol):
    """One call's media stream: RFC 6455 client, Twilio messages, the simulator's script and player."""

    def __init__(self, caller: LeanCallers, index: int, call_sid: str, parameters: dict[str, str]) -> None:
        self.caller = caller
        self.config = caller.config
        # marker(tag, process << 24 | call << 16 | frame) in base64, as MarkedCall stamps it, from parts.
        p = caller.process
        self.marker_head = {tag: _quiet_b64(tag, (p >> 4) & 15, p & 15) for tag in (0, SPEECH_TAG)}
        self.marker_mid = [_quiet_b64((index >> 4) & 15, index & 15, k) for k in range(16)]
        self.summary = CallSummary(call_sid)
        self.call_sid = call_sid
        self.parameters = parameters
        self.stream_sid = "MZ" + os.urandom(16).hex()
        self.transport: asyncio.Transport | None = None
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.handshake = bytearray()
        self.upgraded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reader = FrameReader(self._message, self._control)
        self.player = Player(realtime=True)
        self.close_timer: asyncio.TimerHandle | None = None
        self.seq = 0
        self.frame_index = 0
        # The media message's constant text before and after the varying fields.
        self.media_head = '{"event":"media","sequenceNumber":"'
        self.media_mid = f'","streamSid":"{self.stream_sid}","media":{{"track":"inbound","chunk":"'
        # script
        self.state = GREETING
        self.started_at = 0.0
        self.line = 0  # the next speech frame of the current line
        self.line_frames = 0
        self.ended_at = 0.0  # the current exchange's line ended (the greeting's: the stream's start)
        self.answered = True  # the current exchange has its first audio
        self.exchange_open = False  # a line has been said (answer_ms counts for lines only)
        self.last_media_at = float("-inf")
        self.response_start: float | None = None
        self.response_audio_ms = 0.0
        self.hung_up = False
        self.closing = False

    # -- transport -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        if self.upgraded.done():
            self.reader.feed(data)
            return
        self.handshake += data
        end = self.handshake.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.handshake[:end].decode("latin-1").split("\r\n")
        rest = bytes(self.handshake[end + 4 :])
        status = int(head[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        if status == 101 and headers.get("sec-websocket-accept") != accept_key(self.key):
            self.summary.errors.append("stream connection failed: wrong Sec-WebSocket-Accept")
            status = 0
        self.upgraded.set_result(status)
        if status == 101 and rest:
            self.reader.feed(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_result(0)
        self._closed()

    def send_text(self, text: str) -> None:
        """A text frame to the server, unless the call is closing."""
        if self.transport is not None and not self.closing:
            self.transport.write(client_frame(text.encode()))

    def send_event(self, event: str, body: dict[str, Any]) -> None:
        """A Twilio message as the simulator sends it: event, sequence number, stream, body."""
        self.seq += 1
        message = {"event": event, "sequenceNumber": str(self.seq), "streamSid": self.stream_sid, event: body}
        self.send_text(json.dumps(message, separators=(",", ":")))

    # -- inbound ------------------------------------------------------------------------------
    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 9 and self.transport is not None and not self.closing:  # ping
            self.transport.write(client_frame(payload, 10))
        elif opcode == 8:  # close
            if not self.hung_up:
                self.summary.closed_by = "server"
            if self.transport is not None:
                if not self.closing:
                    self.transport.write(client_frame(payload[:2], 8))
                self.transport.close()
            self._closed()

    def _message(self, opcode: int, payload: bytes) -> None:
        if self.hung_up:
            return  # the simulator stops reading once it hung up
        now = time.perf_counter()
        s = self.summary
        try:
            message = json.loads(payload)
            event = message["event"]
        except (ValueError, KeyError, TypeError):
            s.errors.append("server sent a frame that is not a Twilio message")
            return
        if event == "media":
            self._media(message, now)
        elif event == "mark":
            self._echo(self.player.mark(str(message.get("mark", {}).get("name", "")), now))
            if self.player.pending:
                self.caller.mark_due(self.player.pending[-1][0], self)
        elif event == "clear":
            self._echo(self.player.clear(now))
            self.response_start = None
        else:
            s.errors.append(f"server sent an unknown event {event!r}")
        if message.get("streamSid") != self.stream_sid:
            s.errors.append(f"server sent {event} for another stream")

    def _media(self, message: dict[str, Any], now: float) -> None:
        s = self.summary
        payload = message.get("media", {}).get("payload", "")
        try:
            nbytes = len(base64.b64decode(payload, validate=True))
        except (ValueError, TypeError):
            s.errors.append("server sent media that is not base64")
            return
        self.caller.received[payload[:KEY]] = now
        ms = nbytes / BYTES_PER_MS
        s.media_frames += 1
        self.player.media(nbytes, now)
        if s.greeting_ms is None:
            s.greeting_ms = (now - self.started_at) * 1000
        if not self.answered and now >= self.ended_at:
            self.answered = True
            if self.exchange_open:
                s.answer_ms.append((now - self.ended_at) * 1000)
        if self.response_start is None:
            self.response_start = now
            self.response_audio_ms = 0.0
        elif (now - self.response_start) * 1000 > self.response_audio_ms + LATE_MS:
            s.late_frames += 1
        self.response_audio_ms += ms
        self.last_media_at = now

    def _echo(self, names: list[str]) -> None:
        for name in names:
            self.send_event("mark", {"name": name})

    def marks_due(self, now: float) -> None:
        """Echo the marks whose audio has played by `now` (none left after a `clear`: it echoed them)."""
        if not self.closing:
            self._echo(self.player.due(now))

    # -- outbound, on the call's 20 ms slot -----------------------------------------------------
    def start(self) -> None:
        """`connected` and `start`, then the call joins the ticker."""
        self.send_text('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        start = {
            "streamSid": self.stream_sid,
            "accountSid": self.config.account_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "customParameters": self.parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        self.send_event("start", start)
        self.started_at = self.ended_at = time.perf_counter()
        self.answered = False
        self.caller.join(self)

    def slot(self, now: float) -> None:
        """This call's 20 ms slot: advance the script, send one frame."""
        self._advance(now)
        if self.state == DONE:
            return
        index = self.frame_index
        self.frame_index += 1
        speaking = self.state == SPEAKING
        tag = SPEECH_TAG if speaking else 0
        head = self.marker_head[tag] + self.marker_mid[(index >> 12) & 15] + MARKER_LOW[index & 0xFFF]
        tail = self.caller.line_tails[self.line] if speaking else self.caller.silence_tail
        self.seq += 1
        n = index + 1
        text = (
            f'{self.media_head}{self.seq}{self.media_mid}{n}","timestamp":"{index * 20}","payload":"{head}{tail}"}}}}'
        ).encode()
        mask = next(MASKS)
        self.transport.write(frame_header(1, len(text), True) + mask + apply_mask(text, mask))  # client_frame
        sent = time.perf_counter()
        self.caller.sent[head] = sent
        if speaking:
            self.line += 1
            if self.line == self.line_frames:  # the line ended: wait for the answer
                self.state = WAIT_ANSWER
                self.ended_at = sent
                self.answered = False
                self.response_start = None

    def _advance(self, now: float) -> None:
        c, s = self.config, self.summary
        if now - self.started_at >= c.hangup_after:
            self.hang_up()
            return
        if self.state == GREETING:
            if s.greeting_ms is not None:
                self.state = WAIT_DONE
            elif now > self.started_at + c.response_timeout:
                s.errors.append("no greeting")
                self.state = WAIT_DONE
        if self.state == WAIT_ANSWER:
            if self.last_media_at > self.ended_at:
                self.state = WAIT_DONE
            elif now > self.ended_at + c.response_timeout:
                s.errors.append(f"no answer to 'line {s.exchanges - 1}' within {c.response_timeout:.0f} s")
                self.hang_up()
                return
        if self.state == WAIT_DONE and now >= max(self.last_media_at, self.player.play_end) + c.quiet_ms / 1000:
            if s.exchanges >= len(self.caller.steps):
                self.hang_up()
                return
            s.exchanges += 1
            self.exchange_open = True
            self.state = SPEAKING
            self.line = 0
            self.line_frames = len(self.caller.line_tails)

    def hang_up(self) -> None:
        """`stop`, then the closing handshake (the server's close frame, or CLOSE_TIMEOUT)."""
        if self.hung_up or self.finished.done():
            return
        self.hung_up = True
        self.state = DONE
        self.summary.closed_by = self.summary.closed_by or "caller"
        self.send_event("stop", {"accountSid": self.config.account_sid, "callSid": self.call_sid})
        if self.transport is not None and not self.closing:
            self.transport.write(client_frame((1000).to_bytes(2, "big"), 8))
            self.closing = True
            self.close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.transport.abort)

    def _closed(self) -> None:
        self.state = DONE
        self.closing = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if not self.summary.closed_by:
            self.summary.closed_by = "server"
        if not self.finished.done():
            self.finished.set_result(None)


class LeanCallers:
    """The calls of one caller process and the one ticker that paces them all."""

    def __init__(self, args: Any) -> None:
        self.args = args
        self.process = args.index
        self.config: SimulatorConfig = caller_config(args, args.duration)
        self.signer = RequestValidator(AUTH_TOKEN)
        self.sent: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self.steps = caller_steps()
        # base64 of frame bytes 9..160 (9 is a multiple of 3: the marker's 12 characters just prefix it).
        frames = self.steps[0].frames or ()
        self.line_tails = [base64.b64encode(f[9:]).decode() for f in frames]
        self.silence_tail = base64.b64encode(SILENCE_FRAME[9:]).decode()
        self.buckets: list[list[LeanCall]] = [[] for _ in range(BUCKETS)]
        self.marks: list[tuple[float, int, LeanCall]] = []  # (due, n, call): a heap of marks waiting to be echoed
        self.mark_count = 0
        self.tick = 0
        self.origin = 0.0
        self.ticker: asyncio.TimerHandle | None = None

    def join(self, call: LeanCall) -> None:
        """The call sends its first frame on the next tick, and every 4th tick after that."""
        if self.ticker is None:
            loop = asyncio.get_running_loop()
            self.origin = loop.time()
            self.tick = 0
            self.ticker = loop.call_at(self.origin, self._tick)
        self.buckets[self.tick % BUCKETS].append(call)

    def mark_due(self, at: float, call: LeanCall) -> None:
        """`call` has a mark to echo at `at` (one heap for the process: no timer per mark)."""
        self.mark_count += 1
        heapq.heappush(self.marks, (at, self.mark_count, call))

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        behind = loop.time() - (self.origin + self.tick * TICK)
        bucket = self.buckets[self.tick % BUCKETS]
        now = time.perf_counter()
        for call in bucket:
            if behind > 0.1:
                call.summary.caller_behind += 1
            call.slot(now)
        bucket[:] = [c for c in bucket if c.state != DONE]
        marks = self.marks
        while marks and marks[0][0] <= now:  # echoed on the tick after their audio has played (<= 5 ms late)
            heapq.heappop(marks)[2].marks_due(now)
        if behind > 0.1:  # resynchronise, as the simulator's sender does (those frames are skipped)
            self.origin = loop.time() - self.tick * TICK
        self.tick += 1
        if any(self.buckets):
            self.ticker = loop.call_at(self.origin + self.tick * TICK, self._tick)
        else:
            self.ticker = None

    async def place(self, i: int) -> dict[str, Any]:
        """One call: webhook and TwiML as the simulator does, the lean media stream, the status callback."""
        c = self.config
        call_sid = "CA" + os.urandom(16).hex()
        summary = CallSummary(call_sid)
        call: LeanCall | None = None
        try:
            async with asyncio.timeout(c.call_timeout):
                params = _call_params(c, call_sid)
                url = c.voice_url()
                public = _swap_origin(url, c.public_url) if c.public_url else url
                signature = self.signer.compute_signature(public, params)
                status, body = await asyncio.to_thread(_post_form, url, params, signature, c.http_timeout)
                summary.webhook_status = status
                if status != 200:
                    summary.errors.append(f"voice webhook answered {status}")
                    return summary.as_dict()
                root = parse_twiml(body)
                stream = root.find("Connect/Stream")
                if stream is None:
                    return summary.as_dict()
                connect_el = root.find("Connect")
                action = connect_el.get("action", "") if connect_el is not None else ""
                public_stream = stream.get("url", "")
                parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
                call = LeanCall(self, i, call_sid, parameters)
                call.summary.webhook_status = status
                summary = call.summary
                await self._stream(call, c.stream_url or self._reachable(public_stream), public_stream)
                if action and summary.closed_by == "server":
                    await self._after_stream(call, action)
                duration = max(1, round(time.perf_counter() - call.started_at)) if call.started_at else 0
                await send_status_callback(c, call_sid, duration_s=duration)
        except TimeoutError:
            summary.errors.append(f"call did not finish within {c.call_timeout:.0f} s")
            if call is not None:
                call.hang_up()
        except Exception as exc:  # report, don't raise: a load run counts failures
            summary.errors.append(f"{exc.__class__.__name__}: {exc}")
            if call is not None:
                call.hang_up()
        return summary.as_dict()

    def _reachable(self, url: str) -> str:
        public = urlsplit(self.config.public_url).netloc
        if public and urlsplit(url).netloc == public:
            return _swap_origin(url, self.config.base_url, websocket=True)
        return url

    async def _stream(self, call: LeanCall, url: str, public_stream: str) -> None:
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: call, parts.hostname, parts.port or 80), timeout=10)
        except (OSError, TimeoutError) as exc:
            call.summary.errors.append(f"stream connection failed: {exc.__class__.__name__}: {exc}")
            return
        assert call.transport is not None
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        signature = self.signer.compute_signature(public_stream, {})
        call.transport.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {call.key}\r\nSec-WebSocket-Version: 13\r\n"
                f"X-Twilio-Signature: {signature}\r\n\r\n"
            ).encode()
        )
        try:
            status = await asyncio.wait_for(call.upgraded, timeout=10)
        except TimeoutError:
            call.summary.errors.append("stream connection failed: no handshake answer within 10 s")
            call.transport.abort()
            return
        if status != 101:  # refused (the simulator's stream_refused): no greeting, so not ok
            call.transport.close()
            return
        call.start()
        await call.finished

    async def _after_stream(self, call: LeanCall, action: str) -> None:
        """Twilio requests the <Connect action> URL when the server closes the stream."""
        c = self.config
        url = _swap_origin(action, c.base_url) if urlsplit(action).netloc == urlsplit(c.public_url).netloc else action
        params = _call_params(c, call.call_sid, CallStatus="in-progress")
        signature = self.signer.compute_signature(action, params)
        status, body = await asyncio.to_thread(_post_form, url, params, signature, c.http_timeout)
        if status != 200:
            call.summary.errors.append(f"connect-action answered {status}")
        else:
            parse_twiml(body)

    async def run(self) -> dict[str, Any]:
        args = self.args
        delay = args.t0 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

        async def one(i: int) -> dict[str, Any]:
            await asyncio.sleep(args.ramp * (i * args.processes + args.index) / max(1, args.total))
            return await self.place(i)

        calls = await asyncio.gather(*(one(i) for i in range(args.count)))
        return {"sent": self.sent, "received": self.received, "calls": calls}


async def run_lean_callers(args: Any) -> dict[str, Any]:
    """Role `callers` with `--loadgen lean`: the same JSON as bench.calls.run_callers."""
    return await LeanCallers(args).run()


# ---------------------------------------------------------------------------------------------
# Fake OpenAI Realtime
# ---------------------------------------------------------------------------------------------
# An append in the layouts relays send (ours compact, json.dumps' with spaces): the audio is read
# without json.loads. Anything else (another key order, escapes) goes through json.loads.
APPEND_HEADS = (b'{"type":"input_audio_buffer.append","audio":"', b'{"type": "input_audio_buffer.append", "audio": "')
RATE_LIMITS = {
    "type": "rate_limits.updated",
    "rate_limits": [
        {"name": "requests", "limit": 10000, "remaining": 9999, "reset_seconds": 0.006},
        {"name": "tokens", "limit": 2000000, "remaining": 1999000, "reset_seconds": 0.03},
    ],
}


class Timings:
    """What run_fake's TimedConnection records: append arrivals, delta sends, answers' first deltas."""

    def __init__(self, reply_ms: int) -> None:
        self.received: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self.first: list[str] = []
        self.counter = 0
        reply = tone(reply_ms, amplitude=6000, freq=440)
        # 100 ms chunks; the base64 of bytes 9.. of each is constant, its marker's 12 characters prefix it.
        self.tails = [base64.b64encode(reply[i + 9 : i + 800]).decode() for i in range(0, len(reply), 800)]
        self.chunk_ms = [len(reply[i : i + 800]) / 8 for i in range(0, len(reply), 800)]


class LeanRealtime(asyncio.Protocol):
    """One Realtime connection: the full fake's events for an empty script, written as text."""

    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self.default_reply = DEFAULT_REPLY
        self.transport: asyncio.Transport | None = None
        self.request = bytearray()
        self.open = False
        self.reader = FrameReader(self._message, self._control)
        self.ids = 0
        self.session: dict[str, Any] = {}
        self.items: dict[str, tuple[str, float]] = {}  # id -> (role, assistant audio ms)
        self.last_item: str | None = None
        # server VAD, as FakeConnection's
        self.input_ms = 0.0
        self.buffer_ms = 0.0
        self.speech_run = 0.0
        self.silence_run = 0.0
        self.in_speech = False
        self.speech_item: str | None = None
        self.vad = True
        self.silence_ms = 500
        self.create_response = True

    def _id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}_{self.ids:06d}"

    # -- transport -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        if self.open:
            # Most reads are one whole masked text frame of 126..65535 bytes (an append): no reassembly.
            if data[:2] == b"\x81\xfe" and len(data) == 8 + (data[2] << 8 | data[3]) and not self.reader.buffer:
                self._message(1, apply_mask(data[8:], data[4:8]))
            else:
                self.reader.feed(data)
            return
        self.request += data
        end = self.request.find(b"\r\n\r\n")
        if end >= 0:
            rest = bytes(self.request[end + 4 :])
            self._upgrade(self.request[:end].decode("latin-1").split("\r\n"))
            if self.open and rest:
                self.reader.feed(rest)

    def _upgrade(self, head: list[str]) -> None:
        """The handshake, with the full fake's checks: path, model, bearer token, no beta header."""
        assert self.transport is not None
        path = urlsplit(head[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        auth = headers.get("authorization", "")
        model = parse_qs(path.query).get("model", [""])[0]
        refusal = None
        if path.path.rstrip("/") != "/v1/realtime":
            refusal = f"404 Not Found\r\n\r\nUnknown path {path.path}"
        elif not model:
            refusal = "400 Bad Request\r\n\r\nMissing required query parameter: model"
        elif not (auth.startswith("Bearer ") and len(auth) > len("Bearer ")):
            refusal = "401 Unauthorized\r\n\r\nMissing bearer authentication in header"
        elif "sec-websocket-key" not in headers:
            refusal = "400 Bad Request\r\n\r\nNot a WebSocket handshake"
        if refusal is not None:
            status, _, body = refusal.partition("\r\n\r\n")
            body += "\n"
            self.transport.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
            )
            self.transport.close()
            return
        self.transport.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n\r\n".encode()
        )
        self.open = True
        self.session = FakeConnection._default_session(SimpleNamespace(_id=self._id, model=model))  # type: ignore[arg-type]
        if headers.get("openai-beta", "").startswith("realtime"):
            self.send_error(
                "The Realtime beta API shape is no longer supported; remove the OpenAI-Beta header.",
                code="beta_api_shape_disabled",
            )
            self.transport.write(server_frame((1008).to_bytes(2, "big") + b"beta shape disabled", 8))
            self.transport.close()
            return
        self.send({"type": "session.created", "session": self.session})

    def _control(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 9:
            self.transport.write(server_frame(payload, 10))
        elif opcode == 8:
            self.transport.write(server_frame(payload[:2], 8))
            self.transport.close()

    # -- sending -------------------------------------------------------------------------------
    def _frame(self, event: dict[str, Any]) -> bytes:
        event = {"type": event["type"], "event_id": self._id("event"), **event}
        return server_frame(json.dumps(event).encode())

    def send(self, event: dict[str, Any]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self._frame(event))

    def send_error(self, message: str, *, code: str | None = "invalid_value", param: str | None = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param, "event_id": None}
        self.send({"type": "error", "error": error})

    # -- client events ---------------------------------------------------------------------------
    def _message(self, opcode: int, payload: bytes) -> None:
        for head in APPEND_HEADS:
            if payload.startswith(head) and payload.endswith(b'"}'):
                audio = payload[len(head) : -2]
                if b'"' not in audio and b"\\" not in audio:
                    self._append(audio.decode())
                    return
        try:
            event = json.loads(payload)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            self.send_error("Invalid JSON in client event.", code="invalid_json")
            return
        kind = str(event.get("type"))
        handler = {
            "session.update": self._session_update,
            "input_audio_buffer.append": lambda e: self._append(str(e.get("audio", ""))),
            "input_audio_buffer.commit": self._manual_commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.truncate": self._truncate,
            "conversation.item.delete": self._item_delete,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }.get(kind)
        try:
            if handler is None:
                raise ProtocolError(f"Invalid value: '{kind}'. Unsupported event type.", param="type")
            handler(event)
        except ProtocolError as exc:
            error = {
                "type": "invalid_request_error",
                "code": exc.code,
                "message": str(exc),
                "param": exc.param,
                "event_id": event.get("event_id"),
            }
            self.send({"type": "error", "error": error})

    def _session_update(self, event: dict[str, Any]) -> None:
        # _validate_session needs nothing of a connection but the static _validate_format.
        patch = FakeConnection._validate_session(FakeConnection, event.get("session"))  # type: ignore[arg-type]
        td = patch.get("audio", {}).get("input", {}).get("turn_detection", "absent")
        merged = _merge(self.session, patch)
        if isinstance(td, dict):
            defaults = SERVER_VAD_DEFAULTS if td["type"] == "server_vad" else SEMANTIC_VAD_DEFAULTS
            merged["audio"]["input"]["turn_detection"] = {**defaults, **td}
        self.session = merged
        detection = merged["audio"]["input"]["turn_detection"]
        self.vad = detection is not None
        self.silence_ms = (detection or {}).get("silence_duration_ms") or 500
        self.create_response = (detection or {}).get("create_response", True)
        self.send({"type": "session.updated", "session": self.session})

    def _append(self, audio: str) -> None:
        """Timing and VAD from the caller's marker: speech frames carry tag 2 (the full fake measures RMS)."""
        t = self.timings
        t.received[audio[:KEY]] = time.perf_counter()
        ms = (len(audio) * 3 // 4 - audio.count("=", -2)) / 8
        self.buffer_ms += ms
        self.input_ms += ms
        if not self.vad:
            return
        if audio[:2] == SPEECH_PREFIX:
            self.speech_run += ms
            self.silence_run = 0
        else:
            self.silence_run += ms
            self.speech_run = 0
        if not self.in_speech and self.speech_run >= 60:
            self.in_speech = True
            self.speech_item = self._id("item")
            start = int(self.input_ms - self.speech_run)
            self.send(
                {"type": "input_audio_buffer.speech_started", "audio_start_ms": start, "item_id": self.speech_item}
            )
        elif self.in_speech and self.silence_run >= self.silence_ms:
            self.in_speech = False
            item_id = self.speech_item or self._id("item")
            end = int(self.input_ms - self.silence_run)
            self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end, "item_id": item_id})
            self._commit(item_id)
            if self.create_response:
                self._respond(None)

    def _commit(self, item_id: str) -> None:
        self.buffer_ms = 0
        self.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": self.last_item})
        content = [{"type": "input_audio", "transcript": None}]
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed"}
        self._add_item(item_id, "user", {**item, "content": content})

    def _add_item(self, item_id: str, role: str, item: dict[str, Any]) -> None:
        previous = self.last_item
        self.items[item_id] = (role, 0.0)
        self.last_item = item_id
        self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    def _manual_commit(self, event: dict[str, Any]) -> None:
        if self.buffer_ms <= 0:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        self._commit(self._id("item"))

    def _clear(self, event: dict[str, Any]) -> None:
        self.buffer_ms = 0
        self.in_speech = False
        self.speech_run = self.silence_run = 0
        self.send({"type": "input_audio_buffer.cleared"})

    def _item_create(self, event: dict[str, Any]) -> None:
        item = dict(event.get("item") or {})
        kind = item.get("type")
        if kind not in ("message", "function_call_output", "function_call"):
            raise ProtocolError(f"Invalid item type {kind!r}.", param="item.type")
        if kind == "function_call_output" and not item.get("call_id"):
            raise ProtocolError("Missing required parameter: 'item.call_id'.", param="item.call_id")
        item.setdefault("id", self._id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        self._add_item(item["id"], item.get("role", ""), item)

    def _item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if item_id not in self.items:
            raise ProtocolError(f"Item with item_id '{item_id}' not found.", code="item_not_found", param="item_id")
        del self.items[item_id]
        self.send({"type": "conversation.item.deleted", "item_id": item_id})

    def _truncate(self, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id"))
        if item_id not in self.items:
            raise ProtocolError(f"Item with item_id '{item_id}' not found.", code="item_not_found", param="item_id")
        role, audio_ms = self.items[item_id]
        if role != "assistant":
            raise ProtocolError("Only assistant messages can be truncated.", param="item_id")
        end_ms = event.get("audio_end_ms")
        if not isinstance(end_ms, int) or end_ms < 0:
            raise ProtocolError("audio_end_ms must be a non-negative integer.", param="audio_end_ms")
        if end_ms > -(-audio_ms // 1):
            raise ProtocolError(
                f"Audio content of {int(audio_ms)}ms is already shorter than {end_ms}ms", param="audio_end_ms"
            )
        self.items[item_id] = (role, float(end_ms))
        truncated = {"item_id": item_id, "content_index": event.get("content_index", 0), "audio_end_ms": end_ms}
        self.send({"type": "conversation.item.truncated", **truncated})

    def _response_create(self, event: dict[str, Any]) -> None:
        self._respond(_quoted_line((event.get("response") or {}).get("instructions")))

    def _response_cancel(self, event: dict[str, Any]) -> None:
        """Every response has been sent whole before the next client event is read: none is active."""
        raise ProtocolError("Cancellation failed: no active response found", code="response_cancel_not_active")

    # -- a response: one burst -------------------------------------------------------------------
    def _respond(self, line: str | None) -> None:
        """The full fake's event sequence for a spoken reply, every chunk at once (its bench mode)."""
        t = self.timings
        fmt = self.session["audio"]["output"]["format"]
        voice = self.session["audio"]["output"].get("voice", "alloy")
        response_id, item_id = self._id("resp"), self._id("item")
        base = {"object": "realtime.response", "id": response_id, "conversation_id": "conv_fake"}
        audio_out = {"output": {"format": fmt, "voice": voice}}
        created = {**base, "status": "in_progress", "status_details": None, "output": [], "usage": None}
        out = [
            self._frame(
                {
                    "type": "response.created",
                    "response": {**created, "output_modalities": ["audio"], "audio": audio_out},
                }
            )
        ]
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        added = {"response_id": response_id, "output_index": 0, "item": item}
        out.append(self._frame({"type": "response.output_item.added", **added}))
        previous = self.last_item
        self.last_item = item_id
        out.append(self._frame({"type": "conversation.item.added", "previous_item_id": previous, "item": item}))
        part = {"type": "audio", "transcript": ""}
        out.append(self._frame({"type": "response.content_part.added", **ids, "part": part}))
        words = (line if line is not None else self.default_reply).split(" ")
        per_chunk = max(1, -(-len(words) // len(t.tails)))
        said: list[str] = []
        keys: list[str] = []
        # The delta's constant text around its audio (the event id and marker vary).
        ids_text = json.dumps(ids)[1:-1]
        for n, tail in enumerate(t.tails):
            t.counter += 1
            key = base64.b64encode(marker(1, t.counter)).decode()
            keys.append(key)
            self.ids += 1
            delta = (
                f'{{"type": "response.output_audio.delta", "event_id": "event_{self.ids:06d}", {ids_text}, '
                f'"delta": "{key}{tail}"}}'
            )
            out.append(server_frame(delta.encode()))
            for word in words[n * per_chunk : (n + 1) * per_chunk]:
                said.append(word if not said else " " + word)
                out.append(self._frame({"type": "response.output_audio_transcript.delta", **ids, "delta": said[-1]}))
        audio_ms = sum(t.chunk_ms)
        spoken = "".join(said)
        self.items[item_id] = ("assistant", audio_ms)
        out.append(self._frame({"type": "response.output_audio.done", **ids}))
        out.append(self._frame({"type": "response.output_audio_transcript.done", **ids, "transcript": spoken}))
        out.append(self._frame({"type": "response.content_part.done", **ids, "part": {**part, "transcript": spoken}}))
        item = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": spoken}]}
        out.append(self._frame({"type": "response.output_item.done", **added, "item": item}))
        out.append(self._frame({"type": "conversation.item.done", "previous_item_id": previous, "item": item}))
        done = {
            **base,
            "status": "completed",
            "status_details": None,
            "output": [item],
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": audio_out,
            "usage": response_usage(self.input_ms, audio_ms),
            "metadata": None,
        }
        out.append(self._frame({"type": "response.done", "response": done}))
        out.append(self._frame(RATE_LIMITS))
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b"".join(out))
        now = time.perf_counter()
        for key in keys:
            t.sent[key] = now
        t.first.append(keys[0])


async def run_lean_fake(args: Any) -> dict[str, Any]:
    """Role `fake` with `--loadgen lean`: serves until SIGTERM, returns the same timings as run_fake."""
    timings = Timings(args.reply_ms)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: LeanRealtime(timings), "127.0.0.1", args.fake_port)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"fake OpenAI Realtime listening on ws://127.0.0.1:{port}/v1 (lean)", flush=True)
    await stop.wait()
    server.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 1)
    return {"received": timings.received, "sent": timings.sent, "first": timings.first}
