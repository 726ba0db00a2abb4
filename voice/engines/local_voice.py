"""The offline voice engine: endpointer → PocketSphinx → rules brain → espeak-ng, no network at all.

Caller audio (in the transport's own format) goes through `UtteranceDetector`: `SpeechStarted` is a
possible barge-in, an `Utterance` ends the caller's turn. Utterances are recognised with the shop's
domain language model — built at call start in a worker thread (cached on disk by the vocabulary's
digest, so usually a stat call) while the greeting is already playing — and answered by the
ConversationService with the offline engine; the reply is synthesised sentence by sentence, so the
caller hears the first sentence while the rest is being made. Typed text skips recognition.

One turn is worked on at a time, in order. Tool time is measured by wrapping the tool registry.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from calls.models import CallLog, CallTurn
from voice.asr import (
    Recognizer,
    ShopVocabulary,
    SpeechStarted,
    Transcript,
    Utterance,
    UtteranceDetector,
    build_domain_model,
    pool,
)
from voice.context import CallContext
from voice.conversation import ConversationService, SessionClosed
from voice.engines import LOCAL
from voice.engines.local import LocalEngine
from voice.nlu.vocab import ashop_vocabulary
from voice.session import NOT_CAUGHT
from voice.tools import REGISTRY, ToolRegistry, ToolResult, ToolRunner

if TYPE_CHECKING:
    from voice.session import TurnMetrics, VoiceSession

logger = logging.getLogger(__name__)

MIN_UNHEARD_SECONDS = 0.8  # an unrecognised utterance shorter than this is taken for noise and ignored
BITE_BYTES = 6400  # 0.2 s of 16 kHz PCM16: what one worker-thread hop feeds the decoder


class _TimedRunner(ToolRunner):
    def __init__(self, registry: ToolRegistry, ctx: CallContext, engine: LocalVoiceEngine) -> None:
        super().__init__(registry, ctx)
        self._engine = engine

    async def run(self, name: str, arguments: dict[str, Any] | str | None = None) -> ToolResult:
        started = time.perf_counter()
        try:
            return await super().run(name, arguments)
        finally:
            self._engine.tool_seconds += time.perf_counter() - started


class _TimedRegistry(ToolRegistry):
    """The registry's tools, with runners that add their time to the engine's turn."""

    def __init__(self, base: ToolRegistry, engine: LocalVoiceEngine) -> None:
        super().__init__([tool for name in base.names if (tool := base.get(name)) is not None])
        self._engine = engine

    def runner(self, ctx: CallContext) -> ToolRunner:
        return _TimedRunner(self, ctx, self._engine)


class _Lending:
    """Recognisers lent to one call at a time: recognising while the caller talks needs a decoder per
    call (a domain-LM decoder costs ~16 ms and ~7 MB), and they are kept for the next calls."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._free: dict[str, list[Recognizer]] = {}
        self._lock = threading.Lock()

    def borrow(self, model: Path) -> Recognizer:
        with self._lock:
            free = self._free.get(str(model))
            if free:
                return free.pop()
        return Recognizer(model)

    def give_back(self, recognizer: Recognizer) -> None:
        recognizer.abort()
        with self._lock:
            free = self._free.setdefault(str(recognizer.model), [])
            if len(free) < self.keep:
                free.append(recognizer)


lending = _Lending()


async def load_recognizer(session: VoiceSession) -> tuple[Recognizer, bool]:
    """A recogniser of the shop's domain LM lent to this call, and True; if building the LM fails,
    the shared bundled-model recogniser (too big to lend, so it decodes whole utterances), and False."""
    try:
        vocabulary = await sync_to_async(ShopVocabulary.from_shop)(session.shop)
        model = await asyncio.to_thread(build_domain_model, vocabulary)
    except Exception:
        logger.warning("could not build the language model of shop %s; using the general one", session.shop.pk,
                       exc_info=True)  # fmt: skip
        return await pool.aget(None), False
    return await asyncio.to_thread(lending.borrow, model), True


class _Dictation:
    """One utterance recognised while the caller is still talking: its audio goes to the call's own
    decoder in bites, in a worker thread, in order; `task` ends with the transcript (None when the
    recogniser cannot stream, and the whole utterance is decoded at its end instead)."""

    def __init__(self, engine: LocalVoiceEngine) -> None:
        self.engine = engine
        self.bytes = 0
        self._buffer = bytearray()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Task[Transcript | None] = engine.session.spawn(self._run(), name="dictation")

    def add(self, pcm: bytes) -> None:
        self.bytes += len(pcm)
        self._buffer += pcm
        if len(self._buffer) >= BITE_BYTES:
            self._queue.put_nowait(bytes(self._buffer))
            self._buffer.clear()

    def close(self) -> None:
        if self._buffer:
            self._queue.put_nowait(bytes(self._buffer))
            self._buffer.clear()
        self._queue.put_nowait(None)

    async def _run(self) -> Transcript | None:
        recognizer, streaming = await self.engine.recognizer()
        if streaming:
            await asyncio.to_thread(recognizer.begin)
        while True:
            bite = await self._queue.get()
            if bite is None:
                return await asyncio.to_thread(recognizer.finish) if streaming else None
            if streaming:
                await asyncio.to_thread(recognizer.feed, bite)


class LocalVoiceEngine:
    name = LOCAL

    def __init__(self, session: VoiceSession) -> None:
        self.session = session
        self.detector: UtteranceDetector | None = None
        self.brain: ConversationService | None = None
        self.tool_seconds = 0.0
        self._queue: asyncio.Queue[tuple[Utterance | str, TurnMetrics, _Dictation | None]] = asyncio.Queue()
        self._recognizer: asyncio.Task[tuple[Recognizer, bool]] | None = None
        self._dictation: _Dictation | None = None  # the utterance being spoken
        self._complete: deque[_Dictation] = deque()  # utterances complete, waiting for their event
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        s = self.session
        assert s.call is not None  # noqa: S101
        self.detector = UtteranceDetector(input_format=s.transport.input_format, on_speech=self._on_speech)
        self.brain = ConversationService(
            call=s.call,
            shop=s.shop,
            state=s.conversation,
            engine=LocalEngine(),
            clock=s.clock,
            registry=_TimedRegistry(REGISTRY, self),
            recorder=s.record_later,
        )
        self._recognizer = s.spawn(load_recognizer(s), name="asr-model")
        s.spawn(self._load_vocabulary(), name="nlu-vocabulary")
        self._worker = s.spawn(self._work(), name="local-turns")

    async def _load_vocabulary(self) -> None:
        """Load the shop's names and cars for understanding now, while the greeting plays: the first
        turn finds them ready, and if the database goes away mid-call the rules brain goes on with
        them (voice.nlu.vocab keeps the last good copy)."""
        try:
            await ashop_vocabulary(self.session.shop.pk)
        except DatabaseError:
            logger.warning("shop %s: could not load the vocabulary at call start", self.session.shop.pk, exc_info=True)

    async def recognizer(self) -> tuple[Recognizer, bool]:
        assert self._recognizer is not None  # noqa: S101
        return await self._recognizer

    async def greet(self, text: str) -> None:
        assert self.brain is not None  # noqa: S101
        await self.brain.greet()
        await self.session.transcript(CallTurn.Role.ASSISTANT, text)
        self.session.spawn(self.session.speak(text), name="greeting")

    async def audio(self, data: bytes) -> None:
        if self._closed or self.detector is None:
            return
        for event in self.detector.feed(data):
            if isinstance(event, SpeechStarted):
                await self.session.caller_started_speaking()
            else:
                turn = await self.session.caller_stopped_speaking("speech")
                self._queue.put_nowait((event, turn, self._dictation_of(event)))

    def _on_speech(self, pcm: bytes) -> None:
        if pcm:
            if self._dictation is None:
                self._dictation = _Dictation(self)
            self._dictation.add(pcm)
        elif self._dictation is not None:
            self._dictation.close()
            self._complete.append(self._dictation)
            self._dictation = None

    def _dictation_of(self, utterance: Utterance) -> _Dictation | None:
        """The dictation that heard this utterance (earlier ones were too short to report: dropped)."""
        while self._complete:
            dictation = self._complete.popleft()
            if dictation.bytes == len(utterance.pcm):
                return dictation
            dictation.task.cancel()
        return None

    async def audio_b64(self, payload: str) -> None:
        await self.audio(base64.b64decode(payload))

    async def text(self, text: str) -> None:
        if self._closed:
            return
        turn = await self.session.caller_stopped_speaking("text")
        await self.session.transcript(CallTurn.Role.CALLER, text)
        self._queue.put_nowait((text, turn, None))

    async def say(self, text: str, *, record: bool = True) -> None:
        await self.session.say_offline(text, record=record)

    async def interrupted(self, item_id: str | None, heard_ms: int) -> None:
        """The session already stopped our speech; the reply in the making is still given."""

    async def close(self) -> None:
        self._closed = True
        dictating = [d for d in (self._dictation, *self._complete) if d is not None and not d.task.done()]
        for task in (self._worker, *(d.task for d in dictating)):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        recognizer = self._recognizer
        if recognizer is not None and not recognizer.done():
            recognizer.cancel()
        elif recognizer is not None and not recognizer.cancelled() and recognizer.exception() is None:
            lent, streaming = recognizer.result()
            # A decoder still busy with the words of a caller who hung up mid-sentence is not lent again.
            if streaming and not dictating:
                lending.give_back(lent)

    # -- turns --------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            item, turn, dictation = await self._queue.get()
            if isinstance(item, Utterance):
                text = await self._recognise(item, turn, dictation)
                if text is None:
                    continue
            else:
                text = item
            await self.answer(text, turn)

    async def _recognise(self, utterance: Utterance, turn: TurnMetrics, dictation: _Dictation | None) -> str | None:
        started = time.perf_counter()
        transcript = await dictation.task if dictation is not None else None
        if transcript is None:  # no streaming: decode the whole utterance now
            recognizer, _ = await self.recognizer()
            transcript = await recognizer.adecode(utterance.pcm)
        turn.asr_ms = (time.perf_counter() - started) * 1000
        turn.asr_decode_ms = transcript.decode_seconds * 1000
        turn.speech_ms = utterance.duration * 1000
        if transcript.text:
            await self.session.transcript(CallTurn.Role.CALLER, transcript.text)
            return transcript.text
        if utterance.duration < MIN_UNHEARD_SECONDS:
            await self.session.turn_ignored(turn)
            return None
        await self.say(NOT_CAUGHT)
        self.session.reply_sent(turn)
        return None

    async def answer(self, text: str, turn: TurnMetrics, *, record_caller: bool = True) -> None:
        """Answer one caller turn with the rules brain and speak the reply (or end/transfer the call).
        `record_caller=False`: the caller's words are already in the CallLog (said to another engine)."""
        assert self.brain is not None  # noqa: S101
        s = self.session
        self.tool_seconds = 0.0
        started = time.perf_counter()
        try:
            result = await s.with_filler(self.brain.handle_turn(text, record_caller=record_caller), turn)
        except SessionClosed:
            return
        turn.tool_ms = self.tool_seconds * 1000
        turn.model_ms = (time.perf_counter() - started) * 1000 - turn.tool_ms
        if s.ending:
            return  # hung up, time up or put through meanwhile: this answer is not said
        if result.transfer or result.end:
            # end_call says the line (its transcript event included); the exchange already recorded it.
            outcome = CallLog.Outcome.TRANSFERRED if result.transfer else CallLog.Outcome.RESOLVED
            s.end_call(result.reply, outcome, record=False, turn=turn, interrupt=False)
            return
        await s.transcript(CallTurn.Role.ASSISTANT, result.reply)
        await s.speak(result.reply, turn=turn)
