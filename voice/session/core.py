"""VoiceSession: one call, from the greeting to the hang-up, whatever carries its audio.

Plain async Python (no Channels): a consumer owns the WebSocket, implements `voice.transport.Transport`
and feeds the session (see that module for the inputs). The session picks an engine —
`voice.engines.realtime.RealtimeEngine` (OpenAI Realtime, speech to speech) or
`voice.engines.local_voice.LocalVoiceEngine` (endpointer → PocketSphinx → rules brain → espeak-ng) —
and owns everything that does not depend on it:

* states IDLE → LISTENING → PROCESSING → SPEAKING → TRANSFERRING → ENDED (`state`, sent to the
  transport as {"type": "state"} events);
* playback bookkeeping: every chunk of audio we send is followed by a mark; the far end echoes marks
  as it plays, so the session knows what the caller has heard (`Playout`, playout.py). Barge-in —
  caller speech while our audio is still playing — clears the far end's buffer at once
  (`transport.clear()`) and tells the engine where the caller stopped listening (Realtime truncates
  its item there);
* policies: re-prompt after `silence_timeout` s of caller silence ("Are you still there?"), goodbye
  after `silence_reprompts` unanswered re-prompts (outcome abandoned); a hard stop with a polite goodbye
  at the shop's max_call_seconds (outcome resolved); DTMF "0" → a person; a filler ("One moment while I
  check that.") once per turn when a tool or the model takes more than `filler_after` s;
* transfer / goodbye: say the line, wait until the far end has played it (mark echo, or the audio's
  length plus `mark_slack` s), make sure CallLog.outcome says what happened, close the transport;
* the CallLog: opened at start (calls.services.acall_start is idempotent: the Twilio webhook already
  created phone calls), written as the call goes (queued in `CallRecords`, records.py), closed at
  the end. Any exception ends the call with outcome failed and the error, and still closes the
  transport and the engine;
* metrics per turn ({"type": "metrics"} events): `response_ms` = end of the caller's utterance as our
  side detects it (the endpointer fires; Realtime's speech_stopped arrives) → first audio byte of the
  answer handed to the transport (a filler counts: it is what ends the dead air); `asr_ms` (waiting
  for recognition after that), `model_ms` (engine thinking, tools excluded), `tool_ms`, `tts_ms`
  (synthesis of the first sentence), `speech_ms` (the utterance's length, offline), `asr_decode_ms`
  (all its decoding; the offline engine recognises while the caller talks, so most of it is not in
  `asr_ms`), `late_ms` (how far the reply's later sentences were behind their playback slot: > 0
  means the caller heard a gap mid-reply).
  CallLog.first_response_ms is the first turn's `response_ms`. The endpointer's own hangover (~0.3 s
  offline, Realtime's silence_duration_ms) comes on top of what the caller perceives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from calls import services as call_services
from calls.models import CallLog, CallTurn
from receptionist.logs import bind_call
from shops.models import Shop
from voice.context import CallContext, ConversationState
from voice.conversation import TIME_UP
from voice.engines import LOCAL, OPENAI, engine_name_for
from voice.engines.openai_chat import TOOL_INTENTS
from voice.session.playout import Playout
from voice.session.records import DATABASE_DOWN, CallRecords
from voice.tools import REGISTRY
from voice.transport import Transport
from voice.tts import Synthesizer, TTSError, TTSUnavailable, get_synthesizer

logger = logging.getLogger("voice.session")  # the name the runbooks give

FILLER = "One moment while I check that."
STILL_THERE = "Are you still there?"
SILENCE_GOODBYE = "I haven't heard anything, so I'll let you go. Please call back anytime. Goodbye!"
BRIDGE = "Sorry, I'm having a little trouble — let me keep helping you here."
ASK_AGAIN = "Could you tell me again what you need?"
NOT_CAUGHT = "Sorry, I didn't catch that. Could you say it again?"
Outcome = CallLog.Outcome


class SessionState(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    PROCESSING = "processing"
    SPEAKING = "speaking"
    TRANSFERRING = "transferring"
    ENDED = "ended"


class EngineUnavailable(Exception):
    """An engine could not start or keep going (OpenAI unreachable, socket closed...)."""


class VoiceEngine(Protocol):
    """What the session needs from an engine (voice.engines.realtime / voice.engines.local_voice)."""

    name: str  # "openai" | "local", stored in CallLog.engine

    async def start(self) -> None: ...  # raises EngineUnavailable
    async def greet(self, text: str) -> None: ...  # start saying the greeting (don't wait for it)
    async def audio(self, data: bytes) -> None: ...  # caller audio, transport.input_format
    async def audio_b64(self, payload: str) -> None: ...
    async def text(self, text: str) -> None: ...  # a typed caller turn
    async def say(self, text: str, *, record: bool = True) -> None: ...  # speak a fixed line; returns once sent
    async def interrupted(self, item_id: str | None, heard_ms: int) -> None: ...  # after a barge-in
    async def close(self) -> None: ...


@dataclass
class TurnMetrics:
    turn: int
    source: str  # "speech" | "text"
    started: float = field(default_factory=time.perf_counter)  # end of the caller's utterance
    response_ms: float | None = None
    asr_ms: float = 0.0
    model_ms: float = 0.0
    tool_ms: float = 0.0
    tts_ms: float | None = None
    speech_ms: float | None = None  # the caller's utterance, when the engine knows it (offline)
    asr_decode_ms: float | None = None  # all decoding of the utterance, most of it while the caller spoke
    late_ms: float | None = None  # the reply's worst underrun after its first audio (offline speech)
    filler: bool = False
    reported: bool = False

    def event(self, engine: str) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {
            "type": "metrics",
            "turn": self.turn,
            "source": self.source,
            "engine": engine,
            "response_ms": r(self.response_ms),
            "asr_ms": r(self.asr_ms),
            "model_ms": r(self.model_ms),
            "tool_ms": r(self.tool_ms),
            "tts_ms": r(self.tts_ms),
            "speech_ms": r(self.speech_ms),
            "asr_decode_ms": r(self.asr_decode_ms),
            "late_ms": r(self.late_ms),
            "filler": self.filler,
        }


class VoiceSession:
    def __init__(
        self,
        *,
        shop: Shop,
        transport: Transport,
        call_sid: str,
        channel: str,
        caller_number: str = "",
        engine: str | None = None,
        clock: Callable[[], dt.datetime] = timezone.now,
        silence_timeout: float = 8.0,
        silence_reprompts: int = 2,
        max_call_seconds: float | None = None,
        filler_after: float = 1.5,
        response_timeout: float = 5.0,
        connect_timeout: float = 1.5,
        mark_slack: float = 2.0,
        record_retry: float = 900.0,
        record_drain: float = 10.0,
        synthesizer: Synthesizer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shop = shop
        self.transport = transport
        self.call_sid = call_sid
        self.channel = channel
        self.caller_number = caller_number or ""
        self.clock = clock
        self.silence_timeout = silence_timeout
        self.silence_reprompts = silence_reprompts
        self.max_call_seconds = float(max_call_seconds if max_call_seconds is not None else shop.max_call_seconds)
        self.filler_after = filler_after
        self.response_timeout = response_timeout
        self.connect_timeout = connect_timeout
        self.mark_slack = mark_slack
        self.synthesizer = synthesizer or get_synthesizer()
        self.monotonic = monotonic
        choice = engine or engine_name_for(shop)
        self._engine_choice = OPENAI if choice == OPENAI and settings.OPENAI_API_KEY else LOCAL

        self.state = SessionState.IDLE
        self.ended = asyncio.Event()
        self.call: CallLog | None = None
        self.conversation = ConversationState(engine=self._engine_choice)
        self.context: CallContext | None = None
        self.usage: dict[str, Any] = {}
        self.turns: list[TurnMetrics] = []
        self.barge_ins = 0
        self.audio_in_bytes = 0
        self._engine: VoiceEngine | None = None
        self._playout = Playout(monotonic)
        self._turn: TurnMetrics | None = None
        self._turn_seq = 0
        self._caller_speaking = False
        self._reprompts = 0
        self._speech: asyncio.Task[None] | None = None
        self._speech_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._silence: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.records = CallRecords(call_sid, retry=record_retry, drain=record_drain)
        self._writer: asyncio.Task[None] | None = None  # running self.records
        self._started = False
        self._ready = asyncio.Event()  # start() is done: the engine exists (or the call already failed)
        self._finisher: asyncio.Task[None] | None = None  # the task saying the last line
        self._ending = False
        self._closed = False
        self._first_response_saved = False

    # -- the transport's inputs ------------------------------------------------------------------
    @property
    def engine_name(self) -> str:
        return self._engine.name if self._engine is not None else self._engine_choice

    async def start(self) -> None:
        """Open the CallLog, start the engine (falling back to the offline one if OpenAI is unreachable)
        and begin the greeting. Returns without waiting for the greeting to play. Never raises for a
        call failure: the session ends itself (outcome failed) and closes the transport."""
        if self._started:
            return
        self._started = True
        # Log lines from here on — this task, the tasks it spawns, the threads it calls — name the call.
        bind_call(call_sid=self.call_sid, shop=self.shop.slug)
        loop = asyncio.get_running_loop()
        try:
            await self._open_call()
            self._writer = self.spawn(self.records.run(), name="calllog-writer")
            self._engine = await self._start_engine()
            await self.transport.send_event({"type": "engine", "engine": self.engine_name})
            self._deadline = loop.call_later(self.max_call_seconds, self._time_up)
            await self._engine.greet(self.shop.spoken_greeting)
        except Exception as exc:
            await self._crash(exc)
        finally:
            self._ready.set()

    async def _engine_ready(self) -> VoiceEngine | None:
        """The engine, once start() has finished (input that arrives while it runs waits here, in order,
        instead of being dropped); None before start() or when the call is ending."""
        if self._started and not self._ready.is_set():
            await self._ready.wait()
        return None if self._ending else self._engine

    async def receive_audio(self, data: bytes) -> None:
        engine = self._engine if self._ready.is_set() else await self._engine_ready()
        if engine is None or self._ending:
            return
        self.audio_in_bytes += len(data)
        try:
            await engine.audio(data)
        except Exception as exc:
            await self._crash(exc)

    async def receive_audio_b64(self, payload: str) -> None:
        engine = self._engine if self._ready.is_set() else await self._engine_ready()
        if engine is None or self._ending:
            return
        self.audio_in_bytes += len(payload) * 3 // 4
        try:
            await engine.audio_b64(payload)
        except Exception as exc:
            await self._crash(exc)

    async def receive_text(self, text: str) -> None:
        text = " ".join((text or "").split())
        engine = await self._engine_ready()
        if not text or engine is None or self._ending:
            return
        try:
            if self._playout.playing():
                await self._barge_in()
            await engine.text(text)
        except Exception as exc:
            await self._crash(exc)

    async def mark_played(self, name: str) -> None:
        self._playout.echoed(name)

    async def dtmf(self, digit: str) -> None:
        """A key press; "0" puts the caller through to a person (if the shop has a transfer number)."""
        if digit != "0" or await self._engine_ready() is None or self._ending or self.context is None:
            return
        runner = REGISTRY.runner(self.context)
        result = await runner.run("transfer_to_human", {"reason": "caller pressed 0"})
        self.record_tool_calls(runner.take())
        if result.ok:
            self.end_call(result.speak, Outcome.TRANSFERRED)
        else:
            if self._playout.playing():
                await self._barge_in()
            self.spawn(self.say(result.speak), name="say")

    async def stop(self, reason: str = Outcome.CALLER_HUNG_UP) -> None:
        """The caller or the network ended the call. Idempotent (a no-op once the session is ending its
        own way); the transport is not closed (it is gone)."""
        await self._shutdown(outcome=reason, close_transport=False)

    async def wait_ended(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until the session has ended; False on timeout."""
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- for engines: the call --------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str = "") -> asyncio.Task[Any]:
        """Run `coro` as part of this call: cancelled when the call ends; an exception ends the call."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(f"{self.call_sid}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not self._closed:
            asyncio.ensure_future(self._crash(exc))  # noqa: RUF006 - _crash is idempotent and never raises

    def record_later(self, write: Callable[[], Awaitable[Any]]) -> None:
        """Queue a CallLog write (see CallRecords)."""
        self.records.later(write)

    def record_turn(self, role: str, text: str, *, intent: str = "") -> None:
        call = self.call
        if call is None or not text:
            return
        self.conversation.remember(role, text)
        self.record_later(lambda: call_services.acall_add_turn(call=call, role=role, text=text, intent=intent))

    def record_tool_calls(self, calls: list[Any]) -> None:
        """Store ToolRunner records and the intents their tools stand for."""
        call = self.call
        if call is None:
            return
        for c in calls:
            self.record_later(
                partial(
                    call_services.acall_add_tool_call,
                    call=call,
                    name=c.name,
                    arguments=c.arguments,
                    result_summary=c.summary,
                    ok=c.ok,
                    latency_ms=c.latency_ms,
                )
            )
            intent = TOOL_INTENTS.get(c.name)
            if intent:
                self.record_later(partial(call_services.acall_record_intent, call=call, intent=str(intent)))

    async def transcript(self, role: str, text: str) -> None:
        if text:
            await self.transport.send_event({"type": "transcript", "role": str(role), "text": text})

    async def set_state(self, state: SessionState) -> None:
        if state == self.state or self.state == SessionState.ENDED:
            return
        if self.state == SessionState.TRANSFERRING and state != SessionState.ENDED:
            return
        self.state = state
        if state != SessionState.LISTENING:
            self._disarm_silence()
        elif not self._caller_speaking and not self._ending:
            self._arm_silence()
        await self.transport.send_event({"type": "state", "state": str(state)})

    # -- for engines: turns -----------------------------------------------------------------------
    @property
    def current_turn(self) -> TurnMetrics | None:
        return self._turn

    @property
    def ending(self) -> bool:
        return self._ending or self._closed

    async def caller_started_speaking(self) -> None:
        """The endpointer (or Realtime's server VAD) heard the caller start: barge in if we are talking."""
        self._caller_speaking = True
        self._disarm_silence()
        if self._ending:
            return
        if self._playout.playing():
            await self._barge_in()

    async def caller_stopped_speaking(self, source: str = "speech") -> TurnMetrics:
        """The caller's utterance (or typed message) ended: a new turn starts now."""
        self._caller_speaking = False
        self._reprompts = 0
        self._turn_seq += 1
        turn = TurnMetrics(turn=self._turn_seq, source=source)
        self._turn = turn
        self.turns.append(turn)
        await self.set_state(SessionState.PROCESSING)
        return turn

    async def turn_ignored(self, turn: TurnMetrics) -> None:
        """The utterance was noise: nothing to answer; back to listening."""
        turn.reported = True
        if turn is self._turn and not self._playout.playing():
            await self.set_state(SessionState.LISTENING)

    async def with_filler(self, work: Awaitable[Any], turn: TurnMetrics | None) -> Any:
        """Await `work`; if the caller has then waited filler_after since their turn ended (the model's
        time before a tool counts too), say the filler once for this turn."""
        task = asyncio.ensure_future(work)
        waited = time.perf_counter() - turn.started if turn is not None and turn.response_ms is None else 0.0
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, self.filler_after - waited))
            if not done and turn is not None and not turn.filler and not self._ending:
                turn.filler = True
                self.spawn(self.say_filler(), name="filler")
            return await task
        finally:
            if not task.done():
                task.cancel()

    async def say_filler(self) -> None:
        if not self._ending:
            await self.say(FILLER, record=False)

    async def say(self, text: str, *, record: bool = True) -> None:
        """Speak a fixed line with the current engine. If the engine fails meanwhile, it has already
        asked for the fallback (which speaks its own line), so the failure is not the caller's."""
        engine = self._engine
        if engine is None or self._closed:
            return
        try:
            await engine.say(text, record=record)
        except EngineUnavailable:
            logger.warning("engine %s could not say a line on call %s", engine.name, self.call_sid)

    async def play(self, audio: bytes, *, item_id: str | None = None) -> None:
        """Send reply audio (transport.output_format) followed by a mark."""
        if not audio:
            return
        self._before_audio()
        name = self._playout.add(self.transport.output_format.duration_ms(len(audio)), item_id)
        await self.transport.send_audio(audio)
        await self.transport.send_mark(name)
        await self._after_first_audio()

    async def play_b64(self, payload: str, nbytes: int, *, item_id: str | None = None) -> None:
        """`play` for audio already base64-encoded in transport.output_format (Realtime pass-through)."""
        self._before_audio()
        name = self._playout.add(nbytes * 1000 / self.transport.output_format.bytes_per_second, item_id)
        await self.transport.send_audio_b64(payload)
        await self.transport.send_mark(name)
        await self._after_first_audio()

    def _before_audio(self) -> None:
        turn = self._turn
        if turn is not None and turn.response_ms is None:
            turn.response_ms = (time.perf_counter() - turn.started) * 1000

    async def _after_first_audio(self) -> None:
        if self.state not in (SessionState.SPEAKING, SessionState.TRANSFERRING):
            await self.set_state(SessionState.SPEAKING)
        turn = self._turn
        if not self._first_response_saved and turn is not None and turn.response_ms is not None:
            self._first_response_saved = True
            call, ms = self.call, round(turn.response_ms)
            if call is not None:
                call.first_response_ms = ms  # the voice measure: it replaces the brain's latency
                self.record_later(partial(call_services.acall_record_first_response, call=call, first_response_ms=ms))

    def reply_sent(self, turn: TurnMetrics | None) -> None:
        """All of a reply's audio is with the transport: report the turn's metrics, and listen again
        once the far end has played it (unless something newer started meanwhile)."""
        if turn is not None and not turn.reported:
            turn.reported = True
            self.spawn(self.transport.send_event(turn.event(self.engine_name)), name="metrics")
        if not self._closed:
            self.spawn(self._listen_after_playback(self._turn_seq), name="listen")

    async def _listen_after_playback(self, seq: int) -> None:
        await self._playout.wait(self._playout.sent_ms, self.mark_slack)
        answering = self._turn is not None and not self._turn.reported  # e.g. a filler played, the answer is due
        if (
            seq == self._turn_seq
            and not answering
            and not self._ending
            and not self._caller_speaking
            and self.state in (SessionState.SPEAKING, SessionState.PROCESSING)
            and not self._playout.playing()
        ):
            await self.set_state(SessionState.LISTENING)

    async def speak(self, text: str, *, turn: TurnMetrics | None = None, item_id: str | None = None) -> bool:
        """Synthesise `text` (offline TTS) sentence by sentence into the transport. Returns False if a
        barge-in cut it short. Lines are spoken one after another, never over each other."""
        async with self._speech_lock:
            if self._ending and asyncio.current_task() is not self._finisher:
                return False  # the call is ending: only its last line is still said
            task = asyncio.ensure_future(self._synthesise(text, turn, item_id))
            self._speech = task
            try:
                await asyncio.wait({task})
            finally:
                if not task.done():  # we were cancelled: stop speaking too
                    task.cancel()
                self._speech = None
            if task.cancelled():
                return False
            task.result()
            return True

    async def _synthesise(self, text: str, turn: TurnMetrics | None, item_id: str | None) -> None:
        fmt = self.transport.output_format
        started = time.perf_counter()
        self._playout.begin(item_id)
        first: float | None = None
        due_ms = 0.0  # when this chunk must go out (after the first) so that playback never runs dry
        try:
            stream = self.synthesizer.stream(text, fmt)
            try:
                async for chunk in stream:
                    now = time.perf_counter()
                    if first is None:
                        first = now
                        if turn is not None and turn.tts_ms is None:
                            turn.tts_ms = (now - started) * 1000
                    elif turn is not None:
                        turn.late_ms = max(turn.late_ms or 0.0, (now - first) * 1000 - due_ms)
                    due_ms += fmt.duration_ms(len(chunk))
                    await self.play(chunk, item_id=item_id)
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
        except (TTSUnavailable, TTSError):
            logger.exception("offline speech failed on call %s; the caller heard nothing", self.call_sid)
        self.reply_sent(turn)

    async def say_offline(self, text: str, *, record: bool = False, turn: TurnMetrics | None = None) -> bool:
        """Say a line in the offline voice (whatever the engine): transcript event, optional CallLog turn."""
        if record:
            self.record_turn(CallTurn.Role.ASSISTANT, text)
        await self.transcript(CallTurn.Role.ASSISTANT, text)
        return await self.speak(text, turn=turn)

    def _cancel_speech(self) -> None:
        if self._speech is not None and not self._speech.done():
            self._speech.cancel()

    # -- barge-in, silence, the clock ------------------------------------------------------------
    async def _barge_in(self) -> None:
        item_id, heard_ms = self._playout.heard()
        await self.transport.clear()
        self._playout.cleared()
        self._cancel_speech()
        self.barge_ins += 1
        if self._engine is not None:
            await self._engine.interrupted(item_id, heard_ms)
        await self.set_state(SessionState.LISTENING)

    def _arm_silence(self) -> None:
        self._disarm_silence()
        if not self._closed:
            self._silence = asyncio.get_running_loop().call_later(self.silence_timeout, self._on_silence)

    def _disarm_silence(self) -> None:
        if self._silence is not None:
            self._silence.cancel()
            self._silence = None

    def _on_silence(self) -> None:
        self._silence = None
        if self._ending or self._engine is None or self.state != SessionState.LISTENING:
            return
        if self._reprompts < self.silence_reprompts:
            self._reprompts += 1
            self._turn = None  # a re-prompt is not an answer: keep it out of turn metrics
            self.spawn(self._reprompt(), name="reprompt")
        else:
            self.end_call(SILENCE_GOODBYE, Outcome.ABANDONED, record=True)

    async def _reprompt(self) -> None:
        await self.say(STILL_THERE)

    def _time_up(self) -> None:
        self._deadline = None
        self.end_call(TIME_UP, Outcome.RESOLVED, record=True)

    # -- ending -----------------------------------------------------------------------------------
    def end_call(
        self, line: str, outcome: str, *, record: bool = True, turn: TurnMetrics | None = None, interrupt: bool = True
    ) -> None:
        """Say `line`, wait until it has been heard, set the outcome (unless one is already set), close
        the transport. `interrupt`: cut what is playing first (the session's own decisions: time up, a
        key press); otherwise the line follows it. `record=False`: the line is already in the
        transcript; `turn`: the line answers this caller turn (for its metrics). Runs in its own task;
        returns at once."""
        if self._ending or self._closed:
            return
        self._ending = True
        self._disarm_silence()
        task = asyncio.ensure_future(self._finish(line, outcome, record, turn, interrupt))
        self._finisher = task
        self._tasks.add(task)  # not spawn(): shutting down must not cancel the task doing it
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, line: str, outcome: str, record: bool, turn: TurnMetrics | None, interrupt: bool) -> None:
        error = ""
        try:
            if interrupt and self._playout.playing():
                await self.transport.clear()
                self._playout.cleared()
                self._cancel_speech()
                if self._engine is not None:
                    item_id, heard_ms = self._playout.heard()
                    await self._engine.interrupted(item_id, heard_ms)
            if outcome == Outcome.TRANSFERRED:
                await self.set_state(SessionState.TRANSFERRING)
            self._turn = turn
            if self._engine is not None:
                try:
                    # A backstop only: engines fail over on their own when a response stalls.
                    async with asyncio.timeout(max(30.0, self.response_timeout * 2)):  # in this task: see speak()
                        await self._engine.say(line, record=record)
                except (EngineUnavailable, TimeoutError):
                    logger.warning("engine could not say the last line on call %s; using offline speech", self.call_sid)
                    await self.say_offline(line, record=record)
            if turn is not None and not turn.reported:
                turn.reported = True
                await self.transport.send_event(turn.event(self.engine_name))
            await self._playout.wait(self._playout.sent_ms, self.mark_slack)
        except Exception as exc:
            logger.exception("call %s failed while ending", self.call_sid)
            outcome, error = Outcome.FAILED, repr(exc)[:500]
        await self._shutdown(outcome=outcome, error=error, close_transport=True)

    async def _crash(self, exc: BaseException) -> None:
        if self._closed:
            return
        logger.error("call %s failed", self.call_sid, exc_info=exc)
        self._ending = True
        await self._shutdown(outcome=Outcome.FAILED, error=repr(exc)[:500], close_transport=True)

    async def _shutdown(self, *, outcome: str, error: str = "", close_transport: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._ending = True
        self._disarm_silence()
        if self._deadline is not None:
            self._deadline.cancel()
        current = asyncio.current_task()
        try:
            if self._engine is not None:
                try:
                    await self._engine.close()
                except Exception:
                    logger.exception("closing the %s engine of call %s failed", self._engine.name, self.call_sid)
            for task in list(self._tasks):
                if task is not current and task is not self._writer:
                    task.cancel()
            if self.call is not None:
                # Closing the record is the last write in the queue: after every turn, and retried like
                # them, so a call that ends while the database is away is still closed when it returns.
                self._close_call(outcome, error, ended_at=self.clock())
            await self.records.drain(self._writer)
        finally:
            self.state = SessionState.ENDED
            with contextlib.suppress(Exception):  # before close(): a closed transport sends nothing
                await self.transport.send_event({"type": "state", "state": str(SessionState.ENDED)})
            if close_transport:
                try:
                    await self.transport.close()
                except Exception:
                    logger.warning("closing the transport of call %s failed", self.call_sid, exc_info=True)
            self.ended.set()

    # -- the CallLog -------------------------------------------------------------------------------
    async def _open_call(self) -> None:
        call = await call_services.acall_start(
            shop=self.shop,
            call_sid=self.call_sid,
            channel=self.channel,
            caller_number=self.caller_number,
            engine=self._engine_choice,
            started_at=self.clock(),
            state=self.conversation.to_json(),
        )
        # acall_start gives a CallLog the Twilio webhook opened (no engine, no state) ours.
        self.conversation = ConversationState.from_json(call.state)
        self.conversation.engine = self._engine_choice
        self.call = call
        self.context = CallContext(
            shop=self.shop,
            state=self.conversation,
            caller_number=call.caller_number,
            channel=call.channel,
            call_id=call.pk,
            clock=self.clock,
        )

    def _close_call(self, outcome: str, error: str, *, ended_at: dt.datetime) -> None:
        call = self.call
        assert call is not None  # noqa: S101
        if self.usage:
            self.record_later(partial(call_services.acall_add_usage, call=call, usage=dict(self.usage)))
        self.record_later(partial(call_services.acall_end, call=call, outcome=outcome, ended_at=ended_at, error=error))

    # -- engines -----------------------------------------------------------------------------------
    async def _start_engine(self) -> VoiceEngine:
        from voice.engines.local_voice import LocalVoiceEngine

        if self._engine_choice == OPENAI:
            from voice.engines.realtime import RealtimeEngine

            realtime = RealtimeEngine(self)
            try:
                await realtime.start()
                return realtime
            except Exception as exc:
                logger.warning("OpenAI Realtime unavailable for call %s; using the offline engine", self.call_sid,
                               exc_info=True)  # fmt: skip
                await realtime.close()
                await self._record_fallback(f"openai realtime unavailable: {exc.__class__.__name__}: {exc}")
        local = LocalVoiceEngine(self)
        await local.start()
        return local

    async def _record_fallback(self, reason: str) -> None:
        self.conversation.engine = LOCAL
        call = self.call
        if call is None:
            return
        write = partial(call_services.acall_record_fallback, call=call, engine=LOCAL, reason=reason)
        try:
            await write()  # at once, normally: the engine change is recorded before the call goes on
        except DATABASE_DOWN:
            self.record_later(write)  # the database is away: with the other writes, retried

    def engine_failed(self, engine: VoiceEngine, reason: str, *, unanswered: str = "") -> None:
        """The engine can't go on (Realtime socket closed, fatal error, no response): continue the
        call on the offline engine with a short bridging line (or the greeting, if it never started),
        then answer what was left unanswered."""
        if engine is not self._engine or self._ending:
            return
        self.spawn(self._fall_back(engine, reason, unanswered), name="fallback")

    async def _fall_back(self, old: VoiceEngine, reason: str, unanswered: str) -> None:
        from voice.engines.local_voice import LocalVoiceEngine

        logger.warning("call %s: %s; switching to the offline engine", self.call_sid, reason)
        local = LocalVoiceEngine(self)
        await local.start()
        self._engine = local
        self.conversation.engine = LOCAL
        # The caller hears the bridge without waiting for the old socket to close (a server that stopped
        # answering may take seconds) or for the CallLog write (queued: written even if the caller hangs
        # up at once, since the queue is drained when the call ends).
        self.spawn(old.close(), name="close-old-engine")
        call = self.call
        if call is not None:
            self.record_later(
                partial(call_services.acall_record_fallback, call=call, engine=LOCAL, reason=reason[:255])
            )
        if self._playout.playing():
            await self.transport.clear()
            self._playout.cleared()
        await self.transport.send_event({"type": "engine", "engine": LOCAL, "reason": reason[:255]})
        if self._ending:
            return
        self._turn = None
        if self._playout.sent_ms == 0 and not self.turns:
            # The greeting never started: the caller has heard nothing yet, so greet them — no apology.
            await local.greet(self.shop.spoken_greeting)
            return
        await local.say(BRIDGE if unanswered else f"{BRIDGE} {ASK_AGAIN}")
        if unanswered and not self._ending:
            turn = await self.caller_stopped_speaking("text")
            await local.answer(unanswered, turn, record_caller=False)  # Realtime recorded their words
