"""The OpenAI Realtime engine: speech to speech over one WebSocket per call, through the official SDK
(`AsyncOpenAI(...).realtime.connect(model=...)`, GA shape; shared/protocols.md B).

Session: instructions from voice.prompts, the registry's tools, server VAD (it detects the caller's turns
and barge-ins), input transcription (for the transcript), the voice from settings.OPENAI_VOICE. Formats:
a phone transport (μ-law 8 kHz) gets `audio/pcmu` both ways and its base64 passes through untouched in
both directions; anything else gets `audio/pcm` 24 kHz, converted from and to the transport's format.

The per-frame path is lean: an appended frame is one string concatenation and one WebSocket send, written
straight to the SDK connection's `websockets` socket (no model objects, and not through `send_raw`, whose
reconnect send-queue bookkeeping — unused here — was ~40% of a frame's send CPU); received events are
parsed with `json.loads` from `recv_bytes()` and dispatched on their `type`, so an audio delta costs a dict
lookup, a mark and a send.

Function calls run through the tool registry with the call's CallContext (verification state shared
with the rest of the call), are recorded (ToolCall rows and intents via TOOL_INTENTS), and answered with
`function_call_output` + `response.create`. `transfer_to_human`/`end_call` that succeed end the call
through the session (the tool's own sentence is said, then the transport closes).

Lines the session needs said (greeting, filler, "are you still there?", goodbyes) are responses whose
instructions quote them: `Say exactly ...: "<line>"`. Barge-in follows protocols.md B5, done properly:
the session clears the transport and tells us how much of which item the caller heard; we truncate
that item there (clamped to what was sent for it) and cancel the response if one is active.

Failure — the socket closes, a fatal `error` event, no response event within `response_timeout` after
the caller stopped or after we asked for a response (2 s for the greeting, which nothing else covers) —
hands the call to the offline engine (`session.engine_failed`), with the caller's unanswered words if the
transcription had them. A model that is slow (> filler_after) gets a filler in the offline voice first.
The socket is always closed by `close()`. Token usage from every `response.done` (and transcription
seconds) is summed into `session.usage`, stored on CallLog.usage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
import weakref
from typing import TYPE_CHECKING, Any

from django.conf import settings
from openai import AsyncOpenAI
from websockets.protocol import State

from calls.models import CallLog, CallTurn
from calls.services import merge_usage
from voice.audio import MULAW_8K, PCM16_24K, AudioConverter, AudioFormat, b64encode_audio
from voice.engines import OPENAI
from voice.prompts import build_system_prompt
from voice.session import FILLER, EngineUnavailable
from voice.tools import REGISTRY, ToolResult, ToolRunner

if TYPE_CHECKING:
    from voice.session import TurnMetrics, VoiceSession

logger = logging.getLogger(__name__)

SAY_EXACTLY = 'Say exactly this to the caller, word for word, and nothing else: "{text}"'
TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}
# `error` events that change nothing for the call (protocols.md B2/E9).
IGNORED_ERRORS = frozenset(
    {"response_cancel_not_active", "conversation_already_has_active_response", "input_audio_buffer_commit_empty"}
)
# `error` events after which the session cannot go on.
FATAL_ERRORS = frozenset(
    {"session_expired", "invalid_api_key", "insufficient_quota", "rate_limit_exceeded", "server_error",
     "internal_error", "beta_api_shape_disabled"}
)  # fmt: skip
LINE_BACKSTOP_SECONDS = 60.0  # longest wait for a response to finish, if the watchdog somehow did not fire
GREETING_TIMEOUT_SECONDS = 2.0  # no event for the greeting in this long: the offline engine greets instead
HOLD_SECONDS = 3.0  # how long an answer's transcript waits for the caller's words to be transcribed
CLOSE_SECONDS = 2.0  # the close handshake's limit; past it the socket is aborted
_APPEND = '{"type":"input_audio_buffer.append","audio":"'
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")

# One SDK client per event loop (and configuration): it is cheap to keep and must not cross loops.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[tuple[Any, ...], AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def _client() -> AsyncOpenAI:
    loop = asyncio.get_running_loop()
    key = (settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_REALTIME_URL)
    cached = _clients.get(loop)
    if cached is not None and cached[0] == key:
        return cached[1]
    client = AsyncOpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        websocket_base_url=settings.OPENAI_REALTIME_URL,
    )
    _clients[loop] = (key, client)
    return client


def _wire_format(fmt: AudioFormat) -> dict[str, Any]:
    return {"type": "audio/pcmu"} if fmt == MULAW_8K else {"type": "audio/pcm", "rate": 24000}


class RealtimeEngine:
    name = OPENAI

    def __init__(self, session: VoiceSession, *, client: AsyncOpenAI | None = None) -> None:
        self.session = session
        transport = session.transport
        self.in_format = MULAW_8K if transport.input_format == MULAW_8K else PCM16_24K
        self.out_format = MULAW_8K if transport.output_format == MULAW_8K else PCM16_24K
        self._in = AudioConverter(transport.input_format, self.in_format)
        self._out = AudioConverter(self.out_format, transport.output_format)
        self._client = client
        self.conn: Any = None  # AsyncRealtimeConnection
        self._ws: Any = None  # its websockets connection: where appended audio is written
        self.runner: ToolRunner | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # no response active or requested
        self._idle.set()
        self._create_lock = asyncio.Lock()
        self._active: str | None = None  # id of the response in progress
        self._muted: set[str] = set()  # responses cut by a barge-in: their late deltas are dropped
        self._calls: list[tuple[str, str, str]] = []  # (call_id, name, arguments) of the response in progress
        self._call_names: dict[str, str] = {}
        self._response_audio = False
        self._unanswered = ""  # the caller's last words that no response has answered yet
        self._last_user_item: str | None = None  # the caller's latest committed utterance
        self._answered: set[str] = set()  # caller items a spoken answer followed
        self._untranscribed: str | None = None  # caller item whose transcript is still to come
        self._held: list[str] = []  # assistant lines waiting for that transcript (the record keeps order)
        self._quiet_next = False  # the next response is a line not to record (a filler)
        self._quiet: set[str] = set()
        self._deadline: float | None = None  # fail if no response event before this (loop time)
        self._deadline_seconds = 0.0  # how long that deadline gave (for the fallback reason)
        self._filler_at: float | None = None  # say a filler if no audio before this
        self._armed = asyncio.Event()
        self._failed = False
        self._closing = False
        self._handlers = {
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "input_audio_buffer.committed": self._on_committed,
            "conversation.item.input_audio_transcription.completed": self._on_caller_transcript,
            "conversation.item.input_audio_transcription.failed": self._on_caller_transcript,
            "response.created": self._on_response_created,
            "response.output_item.added": self._on_output_item,
            "response.output_audio.delta": self._on_audio_delta,
            "response.output_audio_transcript.done": self._on_assistant_transcript,
            "response.output_text.done": self._on_assistant_text,
            "response.function_call_arguments.done": self._on_function_call,
            "response.done": self._on_response_done,
            "error": self._on_error,
        }
        for progress in ("response.output_audio_transcript.delta", "response.function_call_arguments.delta",
                         "response.content_part.added", "response.output_item.done"):  # fmt: skip
            self._handlers.setdefault(progress, self._on_progress)

    # -- lifecycle ----------------------------------------------------------------------------
    def session_config(self) -> dict[str, Any]:
        s = self.session
        return {
            "type": "realtime",
            "model": settings.OPENAI_REALTIME_MODEL,
            "instructions": build_system_prompt(s.shop, channel=s.channel, now=s.clock()),
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": _wire_format(self.in_format),
                    "transcription": {"model": getattr(settings, "OPENAI_TRANSCRIBE_MODEL", TRANSCRIPTION_MODEL)},
                    "noise_reduction": {"type": "near_field" if self.in_format == MULAW_8K else "far_field"},
                    "turn_detection": dict(TURN_DETECTION),
                },
                "output": {"format": _wire_format(self.out_format), "voice": settings.OPENAI_VOICE},
            },
            "tools": REGISTRY.realtime_tools(),
            "tool_choice": "auto",
        }

    async def start(self) -> None:
        s = self.session
        assert s.context is not None  # noqa: S101
        self.runner = REGISTRY.runner(s.context)
        client = self._client or _client()
        try:
            async with asyncio.timeout(s.connect_timeout):
                self.conn = await client.realtime.connect(model=settings.OPENAI_REALTIME_MODEL).enter()
                self._ws = self.conn._connection
                await self.conn.send_raw(json.dumps({"type": "session.update", "session": self.session_config()}))
        except Exception as exc:
            raise EngineUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
        self._reader = s.spawn(self._read(), name="realtime-reader")
        self._watchdog = s.spawn(self._watch(), name="realtime-watchdog")

    async def close(self) -> None:
        self._closing = True
        self._release_held()
        current = asyncio.current_task()
        others = [t for t in (self._reader, self._watchdog) if t is not None and t is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=CLOSE_SECONDS)  # the reader's recv must be gone before _drain's
        ws, self._ws = self._ws, None
        conn, self.conn = self.conn, None
        if conn is None:
            return
        # What the server still sends during the close handshake is read and dropped: with nobody reading,
        # a response streaming its audio fills websockets' receive queue, it stops reading the socket, the
        # server's close frame is never seen and the handshake hangs (the OpenAI session staying open).
        drain = asyncio.create_task(self._drain(ws))
        try:
            await asyncio.wait_for(conn.close(), CLOSE_SECONDS)
        except Exception:
            logger.debug("closing the Realtime socket cleanly failed; aborting it", exc_info=True)
            if ws is not None:
                ws.transport.abort()
        finally:
            drain.cancel()

    @staticmethod
    async def _drain(ws: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                await ws.recv(decode=False)

    def _fail(self, reason: str) -> None:
        if self._failed or self._closing:
            return
        self._failed = True
        self._deadline = self._filler_at = None
        self._idle.set()  # wake whoever waits for a response: it is not coming
        self.session.engine_failed(self, reason, unanswered=self._unanswered)

    async def _send(self, event: dict[str, Any]) -> bool:
        """Send a client event. Our events are already in wire form, so they go as JSON through the SDK's
        `send_raw`: its `send()` first runs them through its type-driven transform, which changes nothing
        here and cost ~3.5 ms of the event loop per session.update (~0.3 ms per smaller event) at 100 calls."""
        conn = self.conn
        if conn is None or self._failed:
            return False
        try:
            await conn.send_raw(json.dumps(event))
            return True
        except Exception as exc:
            self._fail(f"openai realtime send failed: {exc.__class__.__name__}: {exc}")
            return False

    # -- the session's inputs -----------------------------------------------------------------
    async def greet(self, text: str) -> None:
        # The caller hears nothing until the greeting: a server that never starts it gets less time than
        # a turn's response would (the offline engine then greets within ~2 s of the call connecting).
        within = min(GREETING_TIMEOUT_SECONDS, self.session.response_timeout)
        self.session.spawn(self._quietly(self.say(text, first_event_within=within)), name="greeting")

    async def audio_b64(self, payload: str) -> None:
        if self._in.passthrough:
            if _BASE64.fullmatch(payload) is None:
                return  # not base64: never splice it into JSON
            await self._append(_APPEND + payload + '"}')
        else:
            await self.audio(base64.b64decode(payload))

    async def audio(self, data: bytes) -> None:
        await self._append(_APPEND + b64encode_audio(self._in.convert(data)) + '"}')

    async def _append(self, message: str) -> None:
        """Fifty appends a second per call. While the socket is open and not pushing back, the frame
        goes to the socket as websockets' own `send()` would, without that method's per-message
        context manager (~40% of what `send()` cost per frame under py-spy at 50 calls); otherwise
        `send()` itself runs, with its flow control (waiting while the socket's buffer is full) and
        its ConnectionClosed."""
        ws = self._ws
        if ws is None or self._failed:
            return
        try:
            if (
                ws.protocol.state is State.OPEN
                and ws.fragmented_send_waiter is None
                and not ws.paused
                and not ws.transport.is_closing()
            ):
                ws.protocol.send_text(message.encode())
                ws.send_data()
            else:
                await ws.send(message)
        except Exception as exc:
            self._fail(f"openai realtime send failed: {exc.__class__.__name__}: {exc}")

    async def text(self, text: str) -> None:
        s = self.session
        turn = await s.caller_stopped_speaking("text")
        s.record_turn(CallTurn.Role.CALLER, text)
        await s.transcript(CallTurn.Role.CALLER, text)
        self._unanswered = text
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        if await self._send({"type": "conversation.item.create", "item": item}):
            s.spawn(self._quietly(self._create_response(turn=turn)), name="text-response")

    async def say(self, text: str, *, record: bool = True, first_event_within: float | None = None) -> None:
        """Have the model say `text` and return once all its audio is with the transport. The transcript
        is what the model actually said (its output_audio_transcript); `record=False` keeps it out of
        the CallLog (a filler); `first_event_within` replaces response_timeout for the first event."""
        line = SAY_EXACTLY.format(text=text.replace('"', "'"))
        await self._create_response({"instructions": line}, quiet=not record, first_event_within=first_event_within)
        # A stalled response is the watchdog's to catch (no event for response_timeout); this is a backstop.
        try:
            await asyncio.wait_for(self._idle.wait(), LINE_BACKSTOP_SECONDS)
        except TimeoutError:
            self._fail("a spoken line never finished")
        if self._failed:
            raise EngineUnavailable("the line was not said")

    async def interrupted(self, item_id: str | None, heard_ms: int) -> None:
        if self._active is not None:
            self._muted.add(self._active)
            await self._send({"type": "response.cancel"})
        if item_id:
            await self._send(
                {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": heard_ms}
            )
        self._out.reset()

    async def _quietly(self, work: Any) -> None:
        with contextlib.suppress(EngineUnavailable):  # already reported through _fail
            await work

    async def _create_response(
        self,
        response: dict[str, Any] | None = None,
        *,
        turn: TurnMetrics | None = None,
        quiet: bool = False,
        first_event_within: float | None = None,
    ) -> None:
        async with self._create_lock:
            try:  # the response in progress must finish first (the watchdog catches one that stalls)
                await asyncio.wait_for(self._idle.wait(), LINE_BACKSTOP_SECONDS)
            except TimeoutError:
                self._fail("a response never finished")
            if self._failed:
                raise EngineUnavailable("the Realtime session failed")
            self._idle.clear()
            self._expect(turn, first_event_within)
            self._quiet_next = quiet
            event: dict[str, Any] = {"type": "response.create"}
            if response:
                event["response"] = response
            if not await self._send(event):
                raise EngineUnavailable("the Realtime socket is gone")

    # -- the watchdog -------------------------------------------------------------------------
    def _expect(self, turn: TurnMetrics | None, within: float | None = None) -> None:
        """A response is due: fail over after response_timeout (or `within` seconds) without one; filler once the
        caller has waited filler_after since their turn ended (a response after a tool: the time before
        counts)."""
        now = asyncio.get_running_loop().time()
        self._deadline_seconds = self.session.response_timeout if within is None else within
        self._deadline = now + self._deadline_seconds
        if turn is not None and not turn.filler and turn.response_ms is None:
            waited = time.perf_counter() - turn.started
            self._filler_at = now + max(0.0, self.session.filler_after - waited)
        self._armed.set()

    def _disarm(self) -> None:
        self._deadline = self._filler_at = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadlines = [t for t in (self._deadline, self._filler_at) if t is not None]
            if not deadlines:
                self._armed.clear()
                await self._armed.wait()
                continue
            now = loop.time()
            if now < min(deadlines):
                # Until the soonest deadline, or until _expect() sets a sooner one (a filler due in 1.5 s
                # must not wait out a 5 s response deadline set before it).
                self._armed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(deadlines) - now):
                        await self._armed.wait()
                continue
            if self._filler_at is not None and now >= self._filler_at:
                self._filler_at = None
                turn = self.session.current_turn
                if turn is not None and not turn.filler and turn.response_ms is None:
                    turn.filler = True  # the model is slow: the offline voice fills the gap
                    self.session.spawn(self.session.say_offline(FILLER), name="filler")
            if self._deadline is not None and now >= self._deadline:
                self._fail(f"no response from OpenAI Realtime within {self._deadline_seconds:g} s")
                return

    # -- server events ------------------------------------------------------------------------
    async def _read(self) -> None:
        conn = self.conn
        handlers = self._handlers
        try:
            while True:
                event = json.loads(await conn.recv_bytes())
                handler = handlers.get(event.get("type"))
                if handler is not None:
                    await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._closing:
                logger.warning("Realtime connection of call %s failed", self.session.call_sid, exc_info=True)
                self._fail(f"openai realtime: {exc.__class__.__name__}: {exc}"[:255])

    async def _on_progress(self, event: dict[str, Any]) -> None:
        self._extend_deadline()

    def _extend_deadline(self) -> None:
        """The response is alive: it has response_timeout again before the next event."""
        if self._deadline is not None:
            self._deadline_seconds = self.session.response_timeout
            self._deadline = asyncio.get_running_loop().time() + self._deadline_seconds

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        self._disarm()
        await self.session.caller_started_speaking()

    async def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        turn = await self.session.caller_stopped_speaking("speech")
        self._expect(turn)

    async def _on_committed(self, event: dict[str, Any]) -> None:
        self._release_held()  # an earlier utterance's transcript that never came: stop waiting for it
        self._last_user_item = event.get("item_id")
        self._untranscribed = self._last_user_item
        await self._on_progress(event)

    async def _on_caller_transcript(self, event: dict[str, Any]) -> None:
        """Transcription completed (or failed). It may come after the answer: the caller's words are
        recorded first all the same, and a question already answered is not "unanswered"."""
        usage = event.get("usage") or {}
        if usage.get("type") == "duration" and isinstance(usage.get("seconds"), int | float):
            total = self.session.usage
            total["transcription_seconds"] = total.get("transcription_seconds", 0) + usage["seconds"]
        item_id = event.get("item_id")
        text = (event.get("transcript") or "").strip()
        if text:
            if item_id not in self._answered:
                self._unanswered = text
            self.session.record_turn(CallTurn.Role.CALLER, text)
            await self.session.transcript(CallTurn.Role.CALLER, text)
        if item_id == self._untranscribed:
            self._release_held()

    def _stop_waiting(self, item_id: str) -> None:
        if self._untranscribed == item_id:
            self._release_held()

    def _release_held(self) -> None:
        self._untranscribed = None
        held, self._held = self._held, []
        for line in held:
            self.session.record_turn(CallTurn.Role.ASSISTANT, line)

    async def _on_response_created(self, event: dict[str, Any]) -> None:
        response_id = (event.get("response") or {}).get("id")
        if self._quiet_next and response_id:
            self._quiet.add(response_id)
        self._quiet_next = False
        self._active = response_id
        self._idle.clear()
        self._response_audio = False
        self._calls = []
        await self._on_progress(event)

    async def _on_output_item(self, event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") == "function_call" and item.get("call_id"):
            self._call_names[item["call_id"]] = item.get("name") or ""
        await self._on_progress(event)

    async def _on_audio_delta(self, event: dict[str, Any]) -> None:
        if event.get("response_id") in self._muted:
            return
        self._extend_deadline()
        self._filler_at = None
        self._response_audio = True
        payload = event["delta"]
        if self._out.passthrough:
            nbytes = len(payload) * 3 // 4 - payload.count("=", -2)
            await self.session.play_b64(payload, nbytes, item_id=event.get("item_id"))
        else:
            audio = self._out.convert(base64.b64decode(payload))
            await self.session.play(audio, item_id=event.get("item_id"))

    async def _on_assistant_transcript(self, event: dict[str, Any]) -> None:
        await self._assistant_said((event.get("transcript") or "").strip(), event.get("response_id"))

    async def _on_assistant_text(self, event: dict[str, Any]) -> None:
        await self._assistant_said((event.get("text") or "").strip(), event.get("response_id"))

    async def _assistant_said(self, text: str, response_id: str | None) -> None:
        if not text:
            return
        await self.session.transcript(CallTurn.Role.ASSISTANT, text)
        if response_id in self._quiet:
            return  # a filler: heard, not part of the conversation
        self._unanswered = ""
        if self._last_user_item:
            self._answered.add(self._last_user_item)
        if self._untranscribed is not None:
            self._held.append(text)  # after the caller's words, which are still being transcribed
            asyncio.get_running_loop().call_later(HOLD_SECONDS, self._stop_waiting, self._untranscribed)
        else:
            self.session.record_turn(CallTurn.Role.ASSISTANT, text)

    async def _on_function_call(self, event: dict[str, Any]) -> None:
        call_id = event.get("call_id") or ""
        name = event.get("name") or self._call_names.get(call_id, "")
        self._calls.append((call_id, name, event.get("arguments") or ""))
        await self._on_progress(event)

    async def _on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        usage = response.get("usage")
        if isinstance(usage, dict):
            total = self.session.usage
            total["model"] = settings.OPENAI_REALTIME_MODEL
            total["responses"] = total.get("responses", 0) + 1
            merge_usage(total, {k: v for k, v in usage.items() if not isinstance(v, str)})
        self._muted.discard(response.get("id"))
        quiet = response.get("id") in self._quiet
        self._quiet.discard(response.get("id"))
        self._active = None
        calls, self._calls = self._calls, []
        for item in response.get("output") or []:  # names, for payloads whose .done lacked them
            if item.get("type") == "function_call":
                self._call_names.setdefault(item.get("call_id") or "", item.get("name") or "")
        calls = [(cid, name or self._call_names.get(cid, ""), args) for cid, name, args in calls]
        self._disarm()
        self._idle.set()
        status = response.get("status")
        if status == "failed":
            details = response.get("status_details") or {}
            self._fail(f"openai realtime response failed: {json.dumps(details)[:200]}")
            return
        if quiet:
            return  # a filler: the answer is still to come
        turn = self.session.current_turn
        if calls and status == "completed":
            self.session.spawn(self._run_tools(calls, turn), name="tools")
            return
        if self._response_audio and turn is not None and turn.response_ms is not None:
            turn.model_ms = max(0.0, turn.response_ms - turn.tool_ms)
        self.session.reply_sent(turn if self._response_audio else None)

    async def _on_error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        code = str(error.get("code") or "")
        kind = str(error.get("type") or "")
        if code in IGNORED_ERRORS:
            return
        message = f"openai realtime error {code or kind}: {error.get('message', '')}"[:255]
        if kind == "server_error" or code in FATAL_ERRORS or str(error.get("param") or "").startswith("session"):
            self._fail(message)
        else:
            logger.warning("call %s: %s", self.session.call_sid, message)

    # -- tools --------------------------------------------------------------------------------
    async def _run_tools(self, calls: list[tuple[str, str, str]], turn: TurnMetrics | None) -> None:
        s = self.session
        assert self.runner is not None  # noqa: S101
        started = asyncio.get_running_loop().time()
        results: list[tuple[str, str, ToolResult]] = []

        async def execute() -> None:
            assert self.runner is not None  # noqa: S101
            for call_id, name, arguments in calls:
                results.append((call_id, name, await self.runner.run(name, arguments)))

        await s.with_filler(execute(), turn)
        if turn is not None:
            turn.tool_ms += (asyncio.get_running_loop().time() - started) * 1000
        s.record_tool_calls(self.runner.take())
        for call_id, _, result in results:
            item = {"type": "function_call_output", "call_id": call_id, "output": result.for_model()}
            if not await self._send({"type": "conversation.item.create", "item": item}):
                return
        for _, name, result in results:
            if result.ok and name in ("transfer_to_human", "end_call"):
                outcome = CallLog.Outcome.TRANSFERRED if name == "transfer_to_human" else CallLog.Outcome.RESOLVED
                s.end_call(result.speak, outcome, turn=turn, interrupt=False)
                return
        await self._quietly(self._create_response(turn=turn))
