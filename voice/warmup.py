"""Load the voice pipeline when a server process starts, not when its first call does.

Imported lazily (telephony.consumers and voice.session import it at the first call), the session, both
engines and the OpenAI SDK's Realtime client — which imports its WebSocket stack on the first connect —
kept the first caller of every server process waiting in silence: `import voice.session` took 1.8–5 s
on this 2-core machine under load, the SDK's first connect another ~1 s, before the greeting could start.
`receptionist.warmup.warm_up_server` calls this once, before the server accepts connections.
"""

from __future__ import annotations


def load_voice_pipeline() -> None:
    import anyio._backends._asyncio  # noqa: F401 - the SDK's first send on an event loop imports it
    import openai.lib._websocket  # noqa: F401 - the SDK's connect imports it at the first call
    import openai.resources.realtime.realtime  # noqa: F401
    import websockets.asyncio.client  # noqa: F401
    from django.conf import settings
    from openai import AsyncOpenAI

    import voice.engines.local_voice  # noqa: F401
    import voice.engines.realtime  # noqa: F401
    import voice.session  # noqa: F401

    if settings.OPENAI_API_KEY:  # building a client imports its HTTP stack (~1 s); calls get their own
        AsyncOpenAI(api_key="warm-up", base_url="http://127.0.0.1:9/v1")
