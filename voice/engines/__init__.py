"""Conversation engines and how a call picks one.

`engine_name_for(shop)`: the shop's `voice_engine` unless `auto`, then `settings.VOICE_ENGINE` unless
`auto`, then `openai` when `OPENAI_API_KEY` is set, else `local`; `openai` without a key is `local`.
`load_engine(name)` imports the engine class from ENGINES (so an engine module is only imported when
used) and returns it with a reason if it had to fall back to the offline engine.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

from shops.models import Shop
from voice.engines.base import ConversationEngine, EngineError, EngineReply, EngineTurn

logger = logging.getLogger(__name__)

LOCAL = "local"
OPENAI = "openai"

# name → dotted path of a class whose no-argument constructor gives a ConversationEngine.
ENGINES = {
    LOCAL: "voice.engines.local.LocalEngine",
    OPENAI: "voice.engines.openai_chat.OpenAIChatEngine",
}

__all__ = [
    "ENGINES",
    "ConversationEngine",
    "EngineError",
    "EngineReply",
    "EngineTurn",
    "engine_name_for",
    "load_engine",
]


def engine_name_for(shop: Shop) -> str:
    choice = shop.voice_engine if shop.voice_engine != Shop.VoiceEngine.AUTO else settings.VOICE_ENGINE
    if choice == Shop.VoiceEngine.AUTO:
        choice = OPENAI if settings.OPENAI_API_KEY else LOCAL
    if choice == OPENAI and not settings.OPENAI_API_KEY:
        return LOCAL
    return choice if choice in ENGINES else LOCAL


def load_engine(name: str) -> tuple[ConversationEngine, str]:
    """The engine called `name`, or the offline engine and the reason it was used instead."""
    if name != LOCAL:
        try:
            return import_string(ENGINES[name])(), ""
        except Exception as exc:  # missing module, bad config: the call still gets an answer
            logger.warning("engine %s unavailable, using the offline engine", name, exc_info=True)
            reason = f"{name} engine unavailable: {exc.__class__.__name__}"
            return import_string(ENGINES[LOCAL])(), reason
    return import_string(ENGINES[LOCAL])(), ""
