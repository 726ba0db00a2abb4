"""One call's conversation, whatever carries its audio: `VoiceSession` (core.py), what the far end has
played (playout.py) and the call's record writes (records.py)."""

from voice.session.core import (
    ASK_AGAIN,
    BRIDGE,
    FILLER,
    NOT_CAUGHT,
    SILENCE_GOODBYE,
    STILL_THERE,
    EngineUnavailable,
    SessionState,
    TurnMetrics,
    VoiceEngine,
    VoiceSession,
)

__all__ = [
    "ASK_AGAIN",
    "BRIDGE",
    "FILLER",
    "NOT_CAUGHT",
    "SILENCE_GOODBYE",
    "STILL_THERE",
    "EngineUnavailable",
    "SessionState",
    "TurnMetrics",
    "VoiceEngine",
    "VoiceSession",
]
