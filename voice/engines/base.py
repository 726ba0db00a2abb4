"""The engine interface: what every conversation engine (offline rules, OpenAI) implements.

An engine gets one caller utterance at a time with the call's context and a tool runner, and returns
what to say. It owns no database rows and no verification: tools enforce privacy, the
ConversationService records the call. State an engine needs between turns goes in
`turn.context.state.scratch` (JSON-serialisable; it is stored with the call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voice.context import CallContext
from voice.intents import Intent
from voice.tools import ToolRunner


@dataclass
class EngineTurn:
    text: str  # what the caller said (typed, or as transcribed)
    context: CallContext  # shop, caller number, channel, state (mutable: verification, awaiting...)
    tools: ToolRunner  # `await tools.run(name, arguments)`; every call is recorded
    history: list[tuple[str, str]] = field(default_factory=list)  # earlier (role, text), oldest first


@dataclass
class EngineReply:
    text: str  # plain, speakable sentences: no markdown, times like "5:30 PM"
    intent: Intent = Intent.UNKNOWN
    transfer: bool = False  # hand the call to a person now
    end: bool = False  # the conversation is over (goodbye said)
    confidence: float | None = None


class EngineError(Exception):
    """The engine could not produce a reply (vendor down, timeout, bad response).

    The ConversationService switches the rest of the call to the offline engine and records why.
    """


@runtime_checkable
class ConversationEngine(Protocol):
    name: str  # "local", "openai": stored in CallLog.engine

    async def respond(self, turn: EngineTurn) -> EngineReply: ...
