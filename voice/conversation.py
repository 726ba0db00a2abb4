"""ConversationService: one conversation (a chat session or a call) from first words to goodbye.

Transport-agnostic and async: the chat API uses it per HTTP request, the voice pipeline per
recognised utterance.

    service = await ConversationService.start(shop=shop, channel="chat", caller_number="+15555550123")
    result = await service.handle_turn("is my civic ready?")   # TurnResult(reply, intent, tools, transfer, end)
    later = await ConversationService.resume(shop=shop, call_sid=service.call_sid)

It picks the engine (shop/settings, see voice.engines), gives it the call's context and a tool runner,
falls back to the offline engine for the rest of the call if the engine fails, and records every
turn in the CallLog (turns, tool calls, intents, state) as it goes. The conversation's state lives in
`CallLog.state`, so the next turn can be served by another process.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.utils import timezone

from calls import services as call_services
from calls.models import CallLog, CallTurn
from calls.services import StaleCallState, ToolCallData
from shops.models import Shop
from voice.context import CallContext, ConversationState
from voice.engines import LOCAL, ConversationEngine, EngineReply, EngineTurn, engine_name_for, load_engine
from voice.intents import Intent
from voice.replies import sentence
from voice.tools import REGISTRY, ToolCallRecord, ToolRegistry

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1000
TROUBLE = "I'm sorry, I'm having trouble on my end. Let me connect you with someone at the shop."
TIME_UP = "I'm sorry, we're out of time for this call. Please call back if you need anything else. Goodbye!"


class SessionClosed(Exception):
    """The conversation already ended (goodbye or transfer); start a new one."""


class SessionBusy(Exception):
    """Another turn of the same conversation was being recorded at the same moment."""


@dataclass
class TurnResult:
    reply: str
    intent: Intent
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "arguments", "ok"}]
    transfer: bool = False
    end: bool = False
    latency_ms: int = 0

    def as_json(self, session: str) -> dict[str, Any]:
        return {
            "reply": self.reply,
            "session": session,
            "intent": str(self.intent),
            "tools": self.tools,
            "transfer": self.transfer,
            "end": self.end,
        }


class ConversationService:
    def __init__(
        self,
        *,
        call: CallLog,
        shop: Shop,
        state: ConversationState,
        engine: ConversationEngine,
        clock: Callable[[], dt.datetime] = timezone.now,
        registry: ToolRegistry = REGISTRY,
        record: bool = True,
        recorder: Callable[[Callable[[], Awaitable[Any]]], None] | None = None,
    ):
        """`recorder`: where the CallLog writes go. None: written before the turn returns (chat: a
        request is answered once its turn is stored, and two racing requests are told apart). A voice
        call passes VoiceSession.record_later: its writes are queued in order and retried while the
        database is away, so a database restart does not end the call."""
        self.call = call
        self.shop = shop
        self.state = state
        self.engine = engine
        self.registry = registry
        self.record = record
        self.recorder = recorder
        self.context = CallContext(
            shop=shop,
            state=state,
            caller_number=call.caller_number,
            channel=call.channel,
            call_id=call.pk,
            clock=clock,
        )

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    async def start(
        cls,
        *,
        shop: Shop,
        channel: str,
        caller_number: str | None = None,
        call_sid: str | None = None,
        engine: str | None = None,
        clock: Callable[[], dt.datetime] = timezone.now,
        record: bool = True,
    ) -> ConversationService:
        """Open a conversation: pick the engine, create the CallLog (idempotent on call_sid)."""
        chosen, fallback_reason = load_engine(engine or engine_name_for(shop))
        state = ConversationState(engine=chosen.name)
        sid = call_sid or f"{channel}-{uuid.uuid4().hex}"
        if record:
            call = await call_services.acall_start(
                shop=shop,
                call_sid=sid,
                channel=channel,
                caller_number=caller_number,
                engine=chosen.name,
                started_at=clock(),
                state=state.to_json(),
            )
            if fallback_reason:
                await call_services.acall_record_fallback(call=call, engine=chosen.name, reason=fallback_reason)
            state = ConversationState.from_json(call.state) if call.state else state
        else:
            from shops.phones import to_e164

            call = CallLog(
                shop=shop,
                call_sid=sid,
                channel=channel,
                caller_number=to_e164(caller_number, shop.country) or "" if caller_number else "",
                engine=chosen.name,
                started_at=clock(),
            )
        return cls(call=call, shop=shop, state=state, engine=chosen, clock=clock, record=record)

    @classmethod
    async def resume(
        cls,
        *,
        shop: Shop,
        call_sid: str,
        channel: str | None = None,
        clock: Callable[[], dt.datetime] = timezone.now,
    ) -> ConversationService | None:
        """The conversation `call_sid` of this shop (and of `channel`, when given), or None: another
        shop's id never resolves, and neither does another channel's, before anything is written (a
        chat request naming a phone call's sid must not take that call over)."""
        calls = CallLog.objects.filter(shop_id=shop.pk, call_sid=call_sid)
        if channel is not None:
            calls = calls.filter(channel=channel)
        call = await calls.afirst()
        if call is None:
            return None
        if not call.state:  # opened elsewhere (the Twilio webhook) without a conversation yet
            call = await call_services.acall_take_over(
                call=call, engine="", state=ConversationState(engine=call.engine or LOCAL).to_json()
            )
        state = ConversationState.from_json(call.state)
        engine, reason = load_engine(state.engine or call.engine or LOCAL)
        if reason:
            state.engine = engine.name
            await call_services.acall_record_fallback(call=call, engine=engine.name, reason=reason)
        return cls(call=call, shop=shop, state=state, engine=engine, clock=clock)

    @property
    def call_sid(self) -> str:
        return self.call.call_sid

    @property
    def closed(self) -> bool:
        return self.state.ended or self.state.transferred or self.call.ended_at is not None

    async def greet(self) -> str:
        """The shop's greeting, recorded as the receptionist's first words (voice calls say it first)."""
        text = self.shop.spoken_greeting
        self.state.remember("assistant", text)
        if self.record:
            await self._write(
                partial(call_services.acall_add_turn, call=self.call, role=CallTurn.Role.ASSISTANT, text=text)
            )
        return text

    async def end(self, *, outcome: str, error: str = "") -> None:
        """Close the call from outside a turn (caller hung up, transport failed); idempotent."""
        if self.record:
            await self._write(
                partial(
                    call_services.acall_end, call=self.call, outcome=outcome, ended_at=self.context.now(), error=error
                )
            )

    async def _write(self, write: Callable[[], Awaitable[Any]]) -> None:
        if self.recorder is not None:
            self.recorder(write)
        else:
            await write()

    # -- one turn -------------------------------------------------------------------------------
    async def handle_turn(self, text: str, *, record_caller: bool = True) -> TurnResult:
        """The reply to one caller utterance. `record_caller=False`: the caller's words are already in
        the CallLog and the history (a voice call that fell back mid-turn from another engine), so only
        the reply is added. Raises SessionClosed after goodbye/transfer, SessionBusy when another turn
        of the same conversation was recorded concurrently."""
        if self.closed:
            raise SessionClosed(self.call_sid)
        started = time.perf_counter()
        text = (text or "").strip()[:MAX_TEXT_CHARS]
        state = self.state
        state.turn += 1
        self.context.new_turn()
        runner = self.registry.runner(self.context)
        history = [(role, said) for role, said in state.history]

        if self._out_of_time():
            reply = EngineReply(TIME_UP, Intent.GOODBYE, end=True)
            state.ended = True
        else:
            reply = await self._respond(EngineTurn(text=text, context=self.context, tools=runner, history=history))
        calls = runner.take()
        transfer = reply.transfer or state.transferred
        end = reply.end or state.ended or transfer
        reply_text = " ".join(sentence(reply.text).split()) or sentence(TROUBLE)
        if record_caller:
            state.remember("caller", text)
        state.remember("assistant", reply_text)
        latency_ms = round((time.perf_counter() - started) * 1000)
        if self.record:
            caller_text = text if record_caller else ""
            await self._record(caller_text, reply_text, reply, calls, latency_ms, transfer=transfer, end=end)
        return TurnResult(
            reply=reply_text,
            intent=reply.intent,
            tools=[{"name": c.name, "arguments": c.arguments, "ok": c.ok} for c in calls],
            transfer=transfer,
            end=end,
            latency_ms=latency_ms,
        )

    def _out_of_time(self) -> bool:
        if self.call.channel == CallLog.Channel.CHAT or not self.call.started_at:
            return False  # a chat may pause between messages; the limit is for live calls
        return (self.context.now() - self.call.started_at).total_seconds() > self.shop.max_call_seconds

    async def _respond(self, turn: EngineTurn) -> EngineReply:
        try:
            return await self.engine.respond(turn)
        except Exception as exc:
            if self.engine.name == LOCAL:
                logger.exception("offline engine failed on call %s", self.call_sid)
                return await self._trouble(turn, exc)
            logger.warning("engine %s failed on call %s; switching to offline", self.engine.name, self.call_sid,
                           exc_info=True)  # fmt: skip
            reason = f"{self.engine.name} failed: {exc.__class__.__name__}: {exc}"[:255]
            self.engine, _ = load_engine(LOCAL)
            self.state.engine = LOCAL
            if self.record:
                await self._write(
                    partial(call_services.acall_record_fallback, call=self.call, engine=LOCAL, reason=reason)
                )
            try:
                return await self.engine.respond(turn)
            except Exception as again:
                logger.exception("offline engine failed on call %s", self.call_sid)
                return await self._trouble(turn, again)

    async def _trouble(self, turn: EngineTurn, exc: Exception) -> EngineReply:
        """Something broke: don't leave the caller hanging; hand them to a person if possible."""
        result = await turn.tools.run("transfer_to_human", {"reason": "receptionist error"})
        if self.record:
            await self._write(
                partial(
                    call_services.acall_end,
                    call=self.call,
                    outcome=CallLog.Outcome.FAILED,
                    ended_at=self.context.now(),
                    error=repr(exc)[:500],
                )
            )
        if result.ok:
            return EngineReply(TROUBLE, Intent.TRANSFER_HUMAN, transfer=True)
        self.state.ended = True
        return EngineReply(f"I'm sorry, I'm having trouble on my end. {result.speak}", Intent.UNKNOWN, end=True)

    async def _record(
        self,
        text: str,
        reply_text: str,
        reply: EngineReply,
        calls: list[ToolCallRecord],
        latency_ms: int,
        *,
        transfer: bool,
        end: bool,
    ) -> None:
        expected = self.state.v
        outcome = CallLog.Outcome.TRANSFERRED if transfer else CallLog.Outcome.RESOLVED if end else ""
        write = partial(
            call_services.acall_record_exchange,
            call=self.call,
            caller_text=text,
            reply_text=reply_text,
            intent=str(reply.intent),
            latency_ms=latency_ms,
            tool_calls=[
                ToolCallData(
                    name=c.name, arguments=c.arguments, result_summary=c.summary, ok=c.ok, latency_ms=c.latency_ms
                )
                for c in calls
            ],
            state=self.state.to_json(),
            expected_version=expected,
            confidence=reply.confidence,
            end_outcome=outcome,
            ended_at=self.context.now() if outcome else None,
        )
        if self.recorder is not None:
            # One conversation per call: nothing races this write, so the next turn may count on it.
            self.recorder(write)
            self.state.v = expected + 1
            return
        try:
            await write()
        except StaleCallState as exc:
            raise SessionBusy(self.call_sid) from exc
        self.state.v = expected + 1
