"""A fake Twilio that places phone calls against a running server, exactly as Twilio would.

For each call: POST the signed voice webhook (protocols.md A1), read the TwiML, open the media-stream
WebSocket with a signed handshake (A3), send `connected` and `start` (with the `<Parameter>`s from the
TwiML), then keep sending 20 ms μ-law frames in real time for the whole call — espeak-ng speech for each
caller line, silence (0xFF) in between, as a phone line does. Audio from the receptionist is "played"
like Twilio's player: queued in order at 8 bytes per ms, each `mark` echoed once everything queued
before it has played, `clear` drops the queue and echoes pending marks at once. When the server closes
the stream, the `<Connect action>` URL is requested (as Twilio does) and its TwiML recorded; at the end
the status callback reports the call completed.

    result = await place_call(SimulatorConfig(base_url="http://127.0.0.1:8000"),
                              [Say("is my civic ready"), Press("0")])

`python manage.py simulate_call` is the command-line face of this module; tests and bench/calls.py call
it directly. Nothing here needs Django (the call record is read from the database only by
`call_record`, for the management command and tests that share the server's database), so the same
fake caller can be pointed at any relay implementation with `webhook_url` / `stream_url`.

Timing: `paced` (the default) sends every frame on its real-time slot; unpaced sends each line's speech
(and the silence after it that lets an endpointer fire) as fast as the socket takes it, and only the
silence while waiting is real time. `realtime_playback` (default: `paced`) decides whether the
receptionist's audio takes its real duration to "play" (marks echoed on time, barge-in possible) or
plays instantly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import statistics
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz
BYTES_PER_MS = 8
SILENCE_FRAME = b"\xff" * FRAME_BYTES
VOICE_PATH = "/telephony/twilio/voice/"
STATUS_PATH = "/telephony/twilio/status/"
LATE_MS = 40  # an outbound frame arriving this much after its playback slot is late


# ---------------------------------------------------------------------------------------------
# What the caller does
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Say:
    """Speak `text` (espeak-ng), or play `frames` (160-byte μ-law frames) if given.

    over_greeting: start as soon as the receptionist starts talking instead of waiting for it to
    finish (a barge-in).
    """

    text: str
    frames: tuple[bytes, ...] | None = None
    over_greeting: bool = False

    @property
    def label(self) -> str:
        return self.text


@dataclass(frozen=True)
class Press:
    """Press keypad `digits` (one `dtmf` message each), after the receptionist has finished talking."""

    digits: str

    @property
    def label(self) -> str:
        return f"[pressed {self.digits}]"


Step = Say | Press


@dataclass
class SimulatorConfig:
    base_url: str = "http://127.0.0.1:8000"  # where the server is reached (webhooks)
    to: str = "+15555550100"
    from_: str = "+15555550123"
    auth_token: str = ""  # signs the webhooks and the handshake; "" = unsigned (a DEBUG server accepts it)
    account_sid: str = "AC" + "0" * 32
    public_url: str = ""  # the origin the server believes it has (PUBLIC_BASE_URL); default base_url
    webhook_url: str = ""  # override the voice webhook URL
    stream_url: str = ""  # override the TwiML's stream URL (another relay, or a public URL not reachable here)
    status_callback: bool = True  # report the call completed at the end, as Twilio does
    paced: bool = True
    realtime_playback: bool | None = None  # None: same as paced
    hangup_after: float | None = None  # the caller hangs up this many seconds into the stream
    hold: bool = False  # after the last step, stay on the line until the server ends the call (or hangup_after)
    response_timeout: float = 20.0  # how long to wait for the receptionist to start answering
    quiet_ms: float = 1200.0  # the receptionist is done once its audio has played and nothing came this long
    tail_ms: float = 1000.0  # silence sent right after each line (lets the server's endpointer fire)
    call_timeout: float = 180.0
    http_timeout: float = 15.0

    @property
    def playback_realtime(self) -> bool:
        return self.paced if self.realtime_playback is None else self.realtime_playback

    def voice_url(self) -> str:
        return self.webhook_url or self.base_url.rstrip("/") + VOICE_PATH

    def status_url(self) -> str:
        return self.base_url.rstrip("/") + STATUS_PATH


class Probe:
    """Hooks for benchmarks: called with perf_counter timestamps. The defaults do nothing."""

    def outgoing_frame(self, index: int, frame: bytes) -> bytes:
        """The caller's frame number `index` as it will be sent (override to make frames identifiable)."""
        return frame

    def frame_sent(self, payload: str, at: float) -> None: ...

    def media_received(self, payload: str, at: float) -> None: ...


# ---------------------------------------------------------------------------------------------
# What happened
# ---------------------------------------------------------------------------------------------
@dataclass
class Exchange:
    """One caller step and the receptionist's answer to it."""

    said: str
    ended_at: float = 0.0  # perf_counter when its last frame (or key press) was sent
    first_audio_ms: float | None = None  # end of the line → first media frame back
    audio_ms: float = 0.0  # receptionist audio received in answer
    dead_air_ms: float = 0.0  # the longest silence the caller sat through waiting for this answer


@dataclass
class CallResult:
    call_sid: str
    webhook_status: int = 0
    twiml_verbs: list[str] = field(default_factory=list)
    dial: str | None = None  # the number a <Dial> in the first TwiML rings (AI off)
    say: list[str] = field(default_factory=list)
    stream_url: str = ""
    stream_parameters: dict[str, str] = field(default_factory=dict)
    stream_refused: int | None = None  # HTTP status of a refused handshake
    close_code: int | None = None
    closed_by: str = ""  # "server" or "caller"
    greeting_ms: float | None = None  # `start` sent → first media frame
    exchanges: list[Exchange] = field(default_factory=list)
    media_frames: int = 0
    audio_ms: float = 0.0
    marks: int = 0
    marks_echoed: int = 0
    clears: int = 0
    late_frames: int = 0
    # The longest silence while the caller waited for the receptionist (see _Call._heard): from the
    # end of a line (or the stream's start) to the next audio, or between two pieces of audio, as played.
    dead_air_ms: float = 0.0
    caller_frames: int = 0
    caller_behind: int = 0  # times the caller's own sender fell > 100 ms behind real time (load generator busy)
    after_stream_verbs: list[str] = field(default_factory=list)  # connect-action's TwiML
    after_stream_dial: str | None = None
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None  # the CallLog, when read from the database

    @property
    def streamed(self) -> bool:
        return bool(self.stream_url) and self.stream_refused is None and self.close_code is not None

    @property
    def ok(self) -> bool:
        """Nothing unexpected, and either greeted on the stream (every step answered, or the server ended
        the call) or answered with TwiML that needs no stream (AI off: <Say>, <Dial>)."""
        if self.errors or self.webhook_status != 200:
            return False
        return self.greeting_ms is not None if self.stream_url else bool(self.twiml_verbs)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Twilio's player
# ---------------------------------------------------------------------------------------------
class Player:
    """Plays queued μ-law audio in real time (or instantly) and says when marks are due.

    Pure bookkeeping on a clock the caller passes in, so it is testable without waiting.
    """

    def __init__(self, *, realtime: bool = True) -> None:
        self.realtime = realtime
        self.play_end = 0.0  # when everything queued so far has played
        self.pending: deque[tuple[float, str]] = deque()

    def media(self, nbytes: int, now: float) -> float:
        """Queue `nbytes` of audio arriving at `now`; returns when this piece starts playing."""
        starts = max(self.play_end, now)
        self.play_end = starts + (nbytes / BYTES_PER_MS / 1000 if self.realtime else 0.0)
        return starts

    def mark(self, name: str, now: float) -> list[str]:
        """Queue a mark; returns the marks to echo right away (all of them when nothing is playing)."""
        self.pending.append((max(self.play_end, now), name))
        return self.due(now)

    def due(self, now: float) -> list[str]:
        out = []
        while self.pending and self.pending[0][0] <= now:
            out.append(self.pending.popleft()[1])
        return out

    def next_due(self) -> float | None:
        return self.pending[0][0] if self.pending else None

    def clear(self, now: float) -> list[str]:
        """Drop the queue; every pending mark is echoed at once (as Twilio does)."""
        self.play_end = now
        out = [name for _, name in self.pending]
        self.pending.clear()
        return out

    def idle(self, now: float) -> bool:
        return self.play_end <= now


# ---------------------------------------------------------------------------------------------
# HTTP (webhooks) — blocking urllib in a thread: a few requests per call
# ---------------------------------------------------------------------------------------------
class WebhookUnanswered(Exception):  # noqa: N818 - it says what happened to the request
    """A webhook POST that got no HTTP answer at all (timed out, refused). Not a TimeoutError: a call's
    own time limit is reported differently."""


def _post_form(url: str, params: dict[str, str], signature: str | None, timeout: float) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    request = urllib.request.Request(url, data=urlencode(params).encode(), headers=headers, method="POST")  # noqa: S310 - http(s) URL given by the user
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (TimeoutError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookUnanswered(f"POST {url} got no answer: {reason or exc.__class__.__name__}") from exc


def _swap_origin(url: str, origin: str, *, websocket: bool = False) -> str:
    """`url` with the scheme and host of `origin` (http→ws, https→wss when `websocket`)."""
    parts, base = urlsplit(url), urlsplit(origin)
    scheme = base.scheme
    if websocket:
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    return urlunsplit((scheme, base.netloc, parts.path, parts.query, ""))


def parse_twiml(text: str) -> ET.Element:
    root = ET.fromstring(text)  # noqa: S314 - TwiML from the server under test, parsed to check it
    if root.tag != "Response":
        raise ValueError(f"not TwiML: <{root.tag}>")
    return root


# ---------------------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------------------
def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


class _Call:
    def __init__(self, config: SimulatorConfig, steps: Sequence[Step], probe: Probe | None, call_sid: str) -> None:
        self.config = config
        self.steps = list(steps)
        self.probe = probe or Probe()
        self.result = CallResult(call_sid=call_sid)
        self.player = Player(realtime=config.playback_realtime)
        self.ws: ClientConnection | None = None
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.seq = itertools.count(1)
        self.chunk = itertools.count(1)
        self.outgoing: deque[tuple[bytes, Callable[[float], None] | None]] = deque()
        self.activity = asyncio.Event()
        self.closed = asyncio.Event()
        self.hung_up = False
        self.started_at = 0.0
        self.last_media_at = -math.inf
        self.first_media_at: float | None = None
        self.current: Exchange | None = None  # the exchange whose answer is arriving
        self.waiting_since: float | None = None  # the caller is waiting for an answer since then
        self.response_start: float | None = None
        self.response_audio_ms = 0.0
        self.connect_action = ""
        self.signer = RequestValidator(config.auth_token) if config.auth_token else None

    # -- helpers ------------------------------------------------------------------------------
    def _public(self, url: str) -> str:
        """The URL as the server sees it publicly (what Twilio signs)."""
        return _swap_origin(url, self.config.public_url) if self.config.public_url else url

    def _reachable(self, url: str, *, websocket: bool = False) -> str:
        """A URL from the TwiML, dialled at `base_url` when it names the server's public origin (which
        may not be reachable from here, e.g. https://receptionist.example.com); other URLs as they are."""
        public = urlsplit(self.config.public_url).netloc
        if public and urlsplit(url).netloc == public:
            return _swap_origin(url, self.config.base_url, websocket=websocket)
        return url

    def _sign(self, url: str, params: dict[str, str]) -> str | None:
        return self.signer.compute_signature(url, params) if self.signer else None

    async def _post(self, url: str, params: dict[str, str], *, public_url: str | None = None) -> tuple[int, str]:
        signature = self._sign(public_url or self._public(url), params)
        return await asyncio.to_thread(_post_form, url, params, signature, self.config.http_timeout)

    def _params(self, **extra: str) -> dict[str, str]:
        return _call_params(self.config, self.result.call_sid, **extra)

    def _poke(self) -> None:
        self.activity.set()

    async def _wait_activity(self, seconds: float | None) -> None:
        """Until the next inbound message (or `seconds`). `asyncio.timeout`, not `wait_for`: on Python
        3.11 `wait_for` can swallow a cancellation that races with the event, and a task that ignores
        its cancellation keeps a finished call from ever returning."""
        self.activity.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.activity.wait()

    async def _wait(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Wait until `predicate()` holds (re-checked on every inbound message) or `deadline` passes."""
        while not predicate():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            await self._wait_activity(remaining)
        return True

    # -- the call -----------------------------------------------------------------------------
    async def run(self) -> CallResult:
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.call_timeout):
                await self._run()
        except TimeoutError:
            self.result.errors.append(f"call did not finish within {self.config.call_timeout:.0f} s")
            await self._hang_up()
        except Exception as exc:  # report, don't raise: a load run counts failures
            self.result.errors.append(f"{exc.__class__.__name__}: {exc}")
            await self._hang_up()
        self.result.duration_s = time.perf_counter() - began
        return self.result

    async def _run(self) -> None:
        r = self.result
        status, body = await self._post(self.config.voice_url(), self._params())
        r.webhook_status = status
        if status != 200:
            r.errors.append(f"voice webhook answered {status}")
            return
        root = parse_twiml(body)
        r.twiml_verbs = [child.tag for child in root]
        r.say = [el.text or "" for el in root.iter("Say")]
        dial = root.find("Dial")
        r.dial = (dial.text or "").strip() if dial is not None else None
        stream = root.find("Connect/Stream")
        if stream is None:
            return  # AI off or unknown number: nothing to stream
        connect_el = root.find("Connect")
        self.connect_action = connect_el.get("action", "") if connect_el is not None else ""
        public_stream = stream.get("url", "")
        r.stream_parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        r.stream_url = self.config.stream_url or self._reachable(public_stream, websocket=True)
        await self._stream(public_stream)
        if self.connect_action and r.closed_by == "server":
            await self._after_stream()
        if self.config.status_callback:
            await self._status_completed()

    async def _stream(self, public_stream_url: str) -> None:
        r = self.result
        headers = {}
        # Twilio signs the URL in the TwiML (the server checks its own public wss:// URL), whichever
        # address this simulator actually dials.
        signature = self._sign(public_stream_url, {})
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        try:
            self.ws = await connect(
                r.stream_url, additional_headers=headers, compression=None, max_size=2**20, open_timeout=10
            )
        except InvalidStatus as exc:
            r.stream_refused = exc.response.status_code
            return
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            r.errors.append(f"stream connection failed: {exc.__class__.__name__}: {exc}")
            return
        tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._send_audio()),
            asyncio.create_task(self._echo_marks()),
        ]
        try:
            await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            start = {
                "streamSid": self.stream_sid,
                "accountSid": self.config.account_sid,
                "callSid": r.call_sid,
                "tracks": ["inbound"],
                "customParameters": r.stream_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            }
            await self._send_event("start", start)
            self.started_at = time.perf_counter()
            self.current = Exchange(said="(greeting)", ended_at=self.started_at)
            self.waiting_since = self.started_at
            script = asyncio.create_task(self._script())
            hangup = asyncio.create_task(self._hangup_timer())
            closed = asyncio.create_task(self.closed.wait())
            try:
                await asyncio.wait([script, closed], return_when=asyncio.FIRST_COMPLETED)
                if script.done() and not script.cancelled() and script.exception():
                    raise script.exception()  # type: ignore[misc]
            finally:
                for task in (script, hangup, closed):
                    task.cancel()
            await self._hang_up()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.ws is not None:
                await self.ws.close()
                if r.close_code is None and self.ws.close_code is not None:
                    r.close_code = self.ws.close_code

    async def _send_event(self, event: str, body: dict[str, Any]) -> None:
        """A Twilio message: `event`, the next sequence number, the stream, and its body under `event`."""
        await self._send(
            {"event": event, "sequenceNumber": str(next(self.seq)), "streamSid": self.stream_sid, event: body}
        )

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None  # noqa: S101
        await self.ws.send(json.dumps(message, separators=(",", ":")))

    async def _hang_up(self) -> None:
        """The caller hangs up: `stop`, then the socket closes (unless the server closed it first)."""
        if self.ws is None or self.closed.is_set() or self.hung_up:
            return
        self.hung_up = True
        self.waiting_since = None
        self.result.closed_by = self.result.closed_by or "caller"
        stop = {"accountSid": self.config.account_sid, "callSid": self.result.call_sid}
        with contextlib.suppress(ConnectionClosed):
            await self._send_event("stop", stop)
            await self.ws.close()
        self.result.close_code = self.ws.close_code

    async def _hangup_timer(self) -> None:
        if self.config.hangup_after is None:
            return
        await asyncio.sleep(self.config.hangup_after)  # the caller's patience, in real time by design
        await self._hang_up()
        self.closed.set()

    # -- caller audio out ---------------------------------------------------------------------
    async def _send_audio(self) -> None:
        """Twilio sends audio all call long: queued speech, else silence, one frame per 20 ms slot."""
        assert self.ws is not None  # noqa: S101
        paced = self.config.paced
        probe = self.probe
        loop_time = time.perf_counter
        next_at = loop_time()
        index = 0
        try:
            while True:
                if self.outgoing:
                    frame, on_sent = self.outgoing.popleft()
                    fast = not paced
                else:
                    frame, on_sent, fast = SILENCE_FRAME, None, False
                frame = probe.outgoing_frame(index, frame)
                index += 1
                n = next(self.chunk)
                payload = base64.b64encode(frame).decode("ascii")
                # Built as text: json.dumps per frame is most of a caller's CPU in a load run.
                message = (
                    f'{{"event":"media","sequenceNumber":"{next(self.seq)}","streamSid":"{self.stream_sid}",'
                    f'"media":{{"track":"inbound","chunk":"{n}","timestamp":"{(n - 1) * FRAME_MS}",'
                    f'"payload":"{payload}"}}}}'
                )
                await self.ws.send(message)
                now = loop_time()
                probe.frame_sent(payload, now)
                self.result.caller_frames += 1
                if on_sent is not None:
                    on_sent(now)
                if fast:
                    next_at = now
                    await asyncio.sleep(0)  # let the receiver run between frames of a fast burst
                    continue
                next_at += FRAME_MS / 1000
                delay = next_at - loop_time()
                if delay < -0.1:
                    self.result.caller_behind += 1
                    next_at = loop_time()
                elif delay > 0:
                    await asyncio.sleep(delay)  # real-time pacing of a phone line (by design)
        except ConnectionClosed:
            return

    def _queue_line(self, frames: Sequence[bytes], exchange: Exchange) -> asyncio.Event:
        done = asyncio.Event()

        def began(at: float) -> None:
            self.waiting_since = None  # the caller talks: silence now is not theirs to sit through

        def ended(at: float) -> None:
            exchange.ended_at = at
            self.current = exchange
            self.response_start = None
            self.waiting_since = at
            done.set()
            self._poke()

        last = len(frames) - 1
        for i, frame in enumerate(frames):
            self.outgoing.append((frame, ended if i == last else began if i == 0 else None))
        if not self.config.paced:
            for _ in range(int(self.config.tail_ms / FRAME_MS)):
                self.outgoing.append((SILENCE_FRAME, None))
        return done

    # -- the script ---------------------------------------------------------------------------
    async def _script(self) -> None:
        r, c = self.result, self.config
        # The greeting: wait for it to start, then (unless the first line talks over it) to end.
        greeted = await self._wait(
            lambda: self.first_media_at is not None or self.closed.is_set(), self.started_at + c.response_timeout
        )
        if not greeted:
            r.errors.append("no greeting")
        first = self.steps[0] if self.steps else None
        if not (isinstance(first, Say) and first.over_greeting):
            await self._wait_done()
        for step in self.steps:
            if self.closed.is_set():
                break
            exchange = Exchange(said=step.label)
            r.exchanges.append(exchange)
            if isinstance(step, Say):
                frames = step.frames if step.frames is not None else tuple(await synthesize(step.text))
                done = self._queue_line(frames, exchange)
                await self._wait(lambda: done.is_set() or self.closed.is_set(), math.inf)  # noqa: B023
            else:
                self.waiting_since = None
                for digit in step.digits:
                    dtmf = {"track": "inbound_track", "digit": digit}
                    await self._send_event("dtmf", dtmf)
                exchange.ended_at = time.perf_counter()
                self.current = exchange
                self.response_start = None
                self.waiting_since = exchange.ended_at
            started = await self._wait(
                lambda: self.last_media_at > exchange.ended_at or self.closed.is_set(),  # noqa: B023
                exchange.ended_at + c.response_timeout,
            )
            if not started:
                self._dead_air(time.perf_counter(), self.player.play_end)
                r.errors.append(f"no answer to {step.label!r} within {c.response_timeout:.0f} s")
                return
            if self.closed.is_set():
                break
            await self._wait_done()
        # Done talking: the caller hangs up once the last answer has been heard, or holds on.
        if c.hold:
            await self.closed.wait()

    async def _wait_done(self) -> None:
        """Until the receptionist's audio has played and nothing new came for quiet_ms (or the stream closed)."""
        quiet = self.config.quiet_ms / 1000
        while not self.closed.is_set():
            # A caller waits a moment after the voice stops before talking (or hanging up): time for a
            # server that says goodbye to close the stream itself once its mark comes back.
            done_at = max(self.last_media_at, self.player.play_end) + quiet
            if time.perf_counter() >= done_at:
                return
            await self._wait(lambda: self.closed.is_set(), done_at)

    # -- server audio in ----------------------------------------------------------------------
    async def _receive(self) -> None:
        assert self.ws is not None  # noqa: S101
        r = self.result
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                try:
                    message = json.loads(raw)
                    event = message["event"]
                except (ValueError, KeyError, TypeError):
                    r.errors.append("server sent a frame that is not a Twilio message")
                    continue
                if event == "media":
                    self._media(message, now)
                elif event == "mark":
                    r.marks += 1
                    await self._echo(self.player.mark(str(message.get("mark", {}).get("name", "")), now))
                elif event == "clear":
                    r.clears += 1
                    await self._echo(self.player.clear(now))
                    self.response_start = None
                else:
                    r.errors.append(f"server sent an unknown event {event!r}")
                if message.get("streamSid") != self.stream_sid:
                    r.errors.append(f"server sent {event} for another stream")
                self._poke()
        except ConnectionClosed:
            pass
        if not self.hung_up:
            r.closed_by = "server"
            self._dead_air(time.perf_counter(), self.player.play_end)  # the server ended a wait
        self.waiting_since = None
        r.close_code = self.ws.close_code
        self.closed.set()
        self._poke()

    def _media(self, message: dict[str, Any], now: float) -> None:
        r = self.result
        payload = message.get("media", {}).get("payload", "")
        try:
            nbytes = len(base64.b64decode(payload, validate=True))
        except (ValueError, TypeError):
            r.errors.append("server sent media that is not base64")
            return
        self.probe.media_received(payload, now)
        ms = nbytes / BYTES_PER_MS
        r.media_frames += 1
        r.audio_ms += ms
        previous_end = self.player.play_end
        starts = self.player.media(nbytes, now)
        if self.waiting_since is not None:
            self._dead_air(starts, previous_end)
        if self.first_media_at is None:
            self.first_media_at = now
            r.greeting_ms = (now - self.started_at) * 1000
        exchange = self.current
        if exchange is not None:
            if exchange.first_audio_ms is None and now >= exchange.ended_at:
                exchange.first_audio_ms = (now - exchange.ended_at) * 1000
            exchange.audio_ms += ms
        # Late: later than its slot in this answer's real-time playback.
        if self.response_start is None:
            self.response_start = now
            self.response_audio_ms = 0.0
        elif (now - self.response_start) * 1000 > self.response_audio_ms + LATE_MS:
            r.late_frames += 1
        self.response_audio_ms += ms
        self.last_media_at = now

    def _dead_air(self, until: float, previous_end: float) -> None:
        """The caller, waiting since `waiting_since`, heard nothing from `previous_end` (the end of the
        audio played before) until `until`: keep the longest such silence (the call's and the answer's).
        A wait ends when the caller talks again or hangs up; one the server ends counts to its end."""
        since = self.waiting_since
        if since is None:
            return
        gap = (until - max(previous_end, since)) * 1000
        if gap > self.result.dead_air_ms:
            self.result.dead_air_ms = gap
        exchange = self.current
        if exchange is not None and gap > exchange.dead_air_ms:
            exchange.dead_air_ms = gap

    async def _echo(self, names: list[str]) -> None:
        for name in names:
            self.result.marks_echoed += 1
            with contextlib.suppress(ConnectionClosed):
                await self._send_event("mark", {"name": name})

    async def _echo_marks(self) -> None:
        """Echo marks as the audio before them finishes playing."""
        while True:
            due = self.player.next_due()
            now = time.perf_counter()
            if due is not None and due <= now:
                await self._echo(self.player.due(now))
                continue
            await self._wait_activity(None if due is None else due - now)

    # -- after the stream ---------------------------------------------------------------------
    async def _after_stream(self) -> None:
        """Twilio requests the <Connect action> URL when the server closes the stream."""
        r = self.result
        url = self._reachable(self.connect_action)
        status, body = await self._post(url, self._params(CallStatus="in-progress"), public_url=self.connect_action)
        if status != 200:
            r.errors.append(f"connect-action answered {status}")
            return
        root = parse_twiml(body)
        r.after_stream_verbs = [child.tag for child in root]
        dial = root.find("Dial")
        r.after_stream_dial = (dial.text or "").strip() if dial is not None else None

    async def _status_completed(self) -> None:
        duration = max(1, round(time.perf_counter() - self.started_at)) if self.started_at else 0
        status = await send_status_callback(self.config, self.result.call_sid, duration_s=duration)
        if status not in (200, 204):
            self.result.errors.append(f"status callback answered {status}")


def _call_params(config: SimulatorConfig, call_sid: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": config.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": config.to,
        "Caller": config.from_,
        "Direction": "inbound",
        "From": config.from_,
        "To": config.to,
        **extra,
    }


async def send_status_callback(
    config: SimulatorConfig, call_sid: str, *, call_status: str = "completed", duration_s: int = 0
) -> int:
    """Twilio's status callback for `call_sid` (signed like Twilio's) to `config`'s server — e.g. one
    restarted after the process that had the call died. Returns the HTTP status."""
    params = _call_params(config, call_sid, CallStatus=call_status, CallDuration=str(duration_s))
    url = config.status_url()
    public = _swap_origin(url, config.public_url) if config.public_url else url
    signature = RequestValidator(config.auth_token).compute_signature(public, params) if config.auth_token else None
    status, _ = await asyncio.to_thread(_post_form, url, params, signature, config.http_timeout)
    return status


_speech_cache: dict[str, list[bytes]] = {}


async def synthesize(text: str) -> list[bytes]:
    """`text` as 20 ms μ-law frames (espeak-ng, cached: a load run says the same lines many times).

    espeak-ng pads its speech with digital silence (~340 ms after "hello there"). That tail is cut: a
    line ends when the caller stops talking, and the silence that follows is the call's own. Kept, a
    receptionist could answer during the line's own tail, before the line "ended", and the answer
    would be missed and the latency understated."""
    if text not in _speech_cache:
        from voice.testing.speech import caller_frames  # espeak-ng; imported only when a line is spoken

        frames = await asyncio.to_thread(caller_frames, text)
        while len(frames) > 1 and frames[-1] == SILENCE_FRAME:
            frames.pop()
        _speech_cache[text] = frames
    return _speech_cache[text]


async def place_call(
    config: SimulatorConfig, steps: Sequence[Step] = (), *, probe: Probe | None = None, call_sid: str | None = None
) -> CallResult:
    """Place one call; returns what happened (never raises for a failed call: see `errors`)."""
    for step in steps:
        if isinstance(step, Say) and step.frames is None:
            await synthesize(step.text)  # before the call: no espeak-ng pause mid-stream
    return await _Call(config, steps, probe, call_sid or new_call_sid()).run()


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank]


@dataclass
class LoadSummary:
    calls: int
    failures: int
    answer_ms_p50: float | None
    answer_ms_p99: float | None
    greeting_ms_p50: float | None
    greeting_ms_p99: float | None
    late_frames: int
    media_frames: int
    caller_behind: int
    dead_air_ms_max: float | None
    errors: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(results: Sequence[CallResult]) -> LoadSummary:
    answers = [e.first_audio_ms for r in results for e in r.exchanges if e.first_audio_ms is not None]
    greetings = [r.greeting_ms for r in results if r.greeting_ms is not None]
    errors = sorted({e for r in results for e in r.errors})
    return LoadSummary(
        calls=len(results),
        failures=sum(1 for r in results if not r.ok),
        answer_ms_p50=_round(percentile(answers, 50)),
        answer_ms_p99=_round(percentile(answers, 99)),
        greeting_ms_p50=_round(percentile(greetings, 50)),
        greeting_ms_p99=_round(percentile(greetings, 99)),
        late_frames=sum(r.late_frames for r in results),
        media_frames=sum(r.media_frames for r in results),
        caller_behind=sum(r.caller_behind for r in results),
        dead_air_ms_max=_round(max((r.dead_air_ms for r in results), default=None)),
        errors=errors[:10],
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def place_calls(
    config: SimulatorConfig,
    steps: Sequence[Step],
    *,
    calls: int,
    concurrency: int,
    probe: Probe | None = None,
    stagger: float = 0.0,
) -> list[CallResult]:
    """`calls` calls, at most `concurrency` at a time (started `stagger` seconds apart)."""
    for step in steps:
        if isinstance(step, Say) and step.frames is None:
            await synthesize(step.text)
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> CallResult:
        if stagger:
            await asyncio.sleep(stagger * (i % concurrency))  # spread call starts like real traffic
        async with limit:
            return await _Call(config, steps, probe, new_call_sid()).run()

    return list(await asyncio.gather(*(one(i) for i in range(calls))))


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# The call as the server recorded it (same project, same database)
# ---------------------------------------------------------------------------------------------
def call_record(call_sid: str) -> dict[str, Any] | None:
    """The CallLog of `call_sid` with its turns and tool calls, as plain data (Django ORM), or None."""
    from calls.models import CallLog

    call = CallLog.objects.filter(call_sid=call_sid).first()
    if call is None:
        return None
    return {
        "call_sid": call.call_sid,
        "status": call.status,
        "engine": call.engine,
        "fallback_reason": call.fallback_reason,
        "intent": call.intent,
        "intents": call.intents,
        "outcome": call.outcome,
        "first_response_ms": call.first_response_ms,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration_seconds": call.duration_seconds,
        "summary": call.summary,
        "error": call.error,
        "turns": [{"role": t.role, "text": t.text, "latency_ms": t.latency_ms} for t in call.turns.all()],
        "tool_calls": [
            {"name": t.name, "arguments": t.arguments, "result": t.result_summary, "ok": t.ok}
            for t in call.tool_calls.all()
        ],
    }
