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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from calls.models import CallLog, CallTurn
from voice.asr import Recognizer, ShopVocabulary, SpeechStarted, Utterance, UtteranceDetector, build_domain_model, pool
from voice.context import CallContext
from voice.conversation import ConversationService, SessionClosed
from voice.engines import LOCAL
from voice.engines.local import LocalEngine
from voice.session import NOT_CAUGHT
from voice.tools import REGISTRY, ToolRegistry, ToolResult, ToolRunner

if TYPE_CHECKING:
    from voice.session import TurnMetrics, VoiceSession

logger = logging.getLogger(__name__)

MIN_UNHEARD_SECONDS = 0.8  # an unrecognised utterance shorter than this is taken for noise and ignored


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


async def load_recognizer(session: VoiceSession) -> Recognizer:
    """The shop's domain-LM recogniser (the bundled general model if building it fails)."""
    model: Path | None = None
    try:
        vocabulary = await sync_to_async(ShopVocabulary.from_shop)(session.shop)
        model = await asyncio.to_thread(build_domain_model, vocabulary)
    except Exception:
        logger.warning("could not build the language model of shop %s; using the general one", session.shop.pk,
                       exc_info=True)  # fmt: skip
    return await pool.aget(model)


class LocalVoiceEngine:
    name = LOCAL

    def __init__(self, session: VoiceSession) -> None:
        self.session = session
        self.detector: UtteranceDetector | None = None
        self.brain: ConversationService | None = None
        self.tool_seconds = 0.0
        self._queue: asyncio.Queue[tuple[Utterance | str, TurnMetrics]] = asyncio.Queue()
        self._recognizer: asyncio.Task[Recognizer] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        s = self.session
        assert s.call is not None  # noqa: S101
        self.detector = UtteranceDetector(input_format=s.transport.input_format)
        self.brain = ConversationService(
            call=s.call,
            shop=s.shop,
            state=s.conversation,
            engine=LocalEngine(),
            clock=s.clock,
            registry=_TimedRegistry(REGISTRY, self),
        )
        self._recognizer = s.spawn(load_recognizer(s), name="asr-model")
        self._worker = s.spawn(self._work(), name="local-turns")

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
                self._queue.put_nowait((event, turn))

    async def audio_b64(self, payload: str) -> None:
        await self.audio(base64.b64decode(payload))

    async def text(self, text: str) -> None:
        if self._closed:
            return
        turn = await self.session.caller_stopped_speaking("text")
        await self.session.transcript(CallTurn.Role.CALLER, text)
        self._queue.put_nowait((text, turn))

    async def say(self, text: str, *, record: bool = True) -> None:
        await self.session.say_offline(text, record=record)

    async def interrupted(self, item_id: str | None, heard_ms: int) -> None:
        """The session already stopped our speech; the reply in the making is still given."""

    async def close(self) -> None:
        self._closed = True
        for task in (self._worker, self._recognizer):
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    # -- turns --------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            item, turn = await self._queue.get()
            if isinstance(item, Utterance):
                text = await self._recognise(item, turn)
                if text is None:
                    continue
            else:
                text = item
            await self.answer(text, turn)

    async def _recognise(self, utterance: Utterance, turn: TurnMetrics) -> str | None:
        assert self._recognizer is not None  # noqa: S101
        recognizer = await self._recognizer
        started = time.perf_counter()
        transcript = await recognizer.adecode(utterance.pcm)
        turn.asr_ms = (time.perf_counter() - started) * 1000
        if transcript.text:
            await self.session.transcript(CallTurn.Role.CALLER, transcript.text)
            return transcript.text
        if utterance.duration < MIN_UNHEARD_SECONDS:
            await self.session.turn_ignored(turn)
            return None
        await self.say(NOT_CAUGHT)
        self.session.reply_sent(turn)
        return None

    async def answer(self, text: str, turn: TurnMetrics) -> None:
        """Answer one caller turn with the rules brain and speak the reply (or end/transfer the call)."""
        assert self.brain is not None  # noqa: S101
        s = self.session
        self.tool_seconds = 0.0
        started = time.perf_counter()
        try:
            result = await s.with_filler(self.brain.handle_turn(text), turn)
        except SessionClosed:
            return
        turn.tool_ms = self.tool_seconds * 1000
        turn.model_ms = (time.perf_counter() - started) * 1000 - turn.tool_ms
        await s.transcript(CallTurn.Role.ASSISTANT, result.reply)
        if result.transfer or result.end:
            outcome = CallLog.Outcome.TRANSFERRED if result.transfer else CallLog.Outcome.RESOLVED
            s.end_call(result.reply, outcome, record=False, turn=turn, interrupt=False)
            return
        await s.speak(result.reply, turn=turn)
