"""Startup checks: say at `migrate`/`runserver`/`check` time what the offline voice is missing,
instead of letting the first caller find out."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Warning, register

from voice.tts import TTSUnavailable, find_espeak


@register()
def espeak_installed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        find_espeak()
    except TTSUnavailable as exc:
        return [
            Warning(
                str(exc),
                hint="The offline voice engine (the default without OPENAI_API_KEY, and the fallback) cannot "
                "speak without it; `make run` installs it where it can.",
                id="voice.W001",
            )
        ]
    return []
