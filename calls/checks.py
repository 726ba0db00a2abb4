"""Startup checks for the live dashboard: say at `check`/start-up time what would silently stop
dashboards updating, instead of letting an owner notice calls missing from an open page."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register


@register()
def channel_layer_reaches_every_process(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """uvicorn reads WEB_CONCURRENCY as its number of worker processes. The in-memory channel layer
    lives in one process, so a call answered by one worker would never reach a dashboard open on
    another (calls.live)."""
    backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
    try:
        workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    except ValueError:
        workers = 1
    if workers > 1 and backend.endswith("InMemoryChannelLayer"):
        return [
            Warning(
                f"WEB_CONCURRENCY={workers} server processes share an in-memory channel layer that reaches "
                "only its own process: dashboards miss the calls the other processes answer.",
                hint="Set REDIS_URL (the channel layer then runs on Redis), or run one process.",
                id="calls.W001",
            )
        ]
    return []
