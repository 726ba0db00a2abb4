"""The OpenAI text engine: Chat Completions with function calling, through the official SDK.

One caller utterance → at most MAX_ROUNDS model calls; each round either asks for tools (run through
the call's ToolRunner, so verification and privacy are enforced by the same handlers the offline
engine uses) or answers. The model sees the shop only through the system prompt and tool results.

Anything unexpected — timeout, HTTP error, a malformed or unknown tool call, an empty answer, a loop
that does not settle — raises EngineError; the ConversationService then switches the rest of the call
to the offline engine and records why on the CallLog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, cast

import openai
from django.conf import settings
from openai import AsyncOpenAI

from voice.engines.base import EngineError, EngineReply, EngineTurn
from voice.intents import Intent
from voice.nlu.understand import understand
from voice.nlu.vocab import ashop_vocabulary
from voice.prompts import build_system_prompt
from voice.tools import REGISTRY

logger = logging.getLogger(__name__)

MAX_ROUNDS = 4
TOOL_INTENTS = {
    "lookup_work_order": Intent.CHECK_STATUS,
    "get_work_order_status": Intent.CHECK_STATUS,
    "get_customer_vehicles": Intent.CHECK_STATUS,
    "get_business_hours": Intent.GET_HOURS,
    "get_location": Intent.GET_LOCATION,
    "list_services": Intent.GET_SERVICES,
    "transfer_to_human": Intent.TRANSFER_HUMAN,
    "end_call": Intent.GOODBYE,
}
ROLES = {"caller": "user", "assistant": "assistant"}

# One SDK client (and its connection pool) per event loop: reusing connections saves a TLS handshake
# per turn, and an httpx client must not outlive or cross the loop it was made on.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI] = weakref.WeakKeyDictionary()


def _client() -> AsyncOpenAI:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = AsyncOpenAI(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=0,  # a caller is waiting: fall back to the offline engine instead of retrying
        )
        _clients[loop] = client
    return client


class OpenAIChatEngine:
    name = "openai"

    def __init__(self) -> None:
        if not settings.OPENAI_API_KEY:
            raise EngineError("OPENAI_API_KEY is not set")
        self.model = settings.OPENAI_MODEL
        self.timeout = settings.OPENAI_TIMEOUT_SECONDS

    async def respond(self, turn: EngineTurn) -> EngineReply:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._respond(turn)
        except TimeoutError as exc:
            raise EngineError(f"no answer within {self.timeout:g} s") from exc
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise EngineError(f"{exc.__class__.__name__}: {exc}") from exc

    async def _respond(self, turn: EngineTurn) -> EngineReply:
        ctx = turn.context
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": build_system_prompt(ctx.shop, channel=ctx.channel, now=ctx.now())},
            *({"role": ROLES[role], "content": text} for role, text in turn.history if role in ROLES),
            {"role": "user", "content": turn.text},
        ]
        used: list[tuple[str, bool]] = []
        for _ in range(MAX_ROUNDS):
            completion = await _client().chat.completions.create(
                model=self.model,
                messages=cast(Any, messages),
                tools=cast(Any, REGISTRY.chat_completions_tools()),
                temperature=0.3,
            )
            if not completion.choices:
                raise EngineError("the model returned no choices")
            message = completion.choices[0].message
            if not message.tool_calls:
                text = (message.content or "").strip()
                if not text:
                    raise EngineError("the model returned an empty answer")
                return await self._reply(turn, text, used)
            messages.append(message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}))
            for call in message.tool_calls:
                name, arguments = _checked_call(call)
                result = await turn.tools.run(name, arguments)
                used.append((name, result.ok))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result.for_model()})
        raise EngineError(f"no answer after {MAX_ROUNDS} rounds of tool calls")

    async def _reply(self, turn: EngineTurn, text: str, used: list[tuple[str, bool]]) -> EngineReply:
        state = turn.context.state
        transfer = any(name == "transfer_to_human" and ok for name, ok in used)
        end = any(name == "end_call" and ok for name, ok in used)
        intent = next((TOOL_INTENTS[name] for name, _ in reversed(used) if name in TOOL_INTENTS), None)
        if intent is None:
            # No tool: label the turn the way the offline engine would understand the caller.
            vocab = await ashop_vocabulary(turn.context.shop.pk)
            intent = understand(turn.text, vocab, awaiting=state.awaiting).intent
        return EngineReply(text=_plain(text), intent=intent, transfer=transfer, end=end)


def _checked_call(call: Any) -> tuple[str, dict[str, Any]]:
    """The tool name and arguments of a model's tool call; EngineError if the call is malformed."""
    function = getattr(call, "function", None)
    name = getattr(function, "name", "")
    if function is None or REGISTRY.get(name) is None:
        raise EngineError(f"the model called an unknown tool {name!r}")
    try:
        arguments = json.loads(function.arguments or "{}")
    except ValueError as exc:
        raise EngineError(f"malformed arguments for {name}") from exc
    if not isinstance(arguments, dict):
        raise EngineError(f"arguments for {name} are not an object")
    return name, arguments


def _plain(text: str) -> str:
    """Speakable text: models sometimes add markdown despite the prompt."""
    for mark in ("**", "__", "`", "#"):
        text = text.replace(mark, "")
    return " ".join(line.lstrip("-*• ").strip() for line in text.splitlines() if line.strip())
