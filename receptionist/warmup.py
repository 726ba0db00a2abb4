"""Import, when a server process starts, what its first request, call and call end would import while serving.

Python imports a module the first time something needs it. Left to the first webhook (the URLconf and
every view behind it: ~150 modules) and to the end of the first call (Celery's task and publishing
machinery: ~30 modules), each import held the event loop, and with it every call's audio: at 100 calls
the first call's end alone delayed some 6,000 frames by 20-110 ms. `receptionist/asgi.py` calls
`warm_up_server()` once, before the server accepts connections (and before `gc.freeze()`).
"""

from __future__ import annotations

from django.urls import get_resolver

from voice.warmup import load_voice_pipeline


def warm_up_server() -> None:
    get_resolver().url_patterns  # noqa: B018 - evaluating it imports the URLconf and every view
    load_voice_pipeline()
    load_task_publishing()


def load_task_publishing() -> None:
    """What the first `apply_async` loads (calls.tasks.queue_summary, at each call's end): the task
    classes, the message machinery and the broker's transport class. Nothing connects to the broker."""
    from calls.tasks import summarize_call
    from receptionist.celery import app

    app.finalize(auto=True)
    summarize_call.name  # noqa: B018 - evaluating the task proxy builds its class
    app.amqp, app.backend, app.events  # noqa: B018 - each is built on first use
    with app.connection_for_write() as connection:
        connection.transport  # noqa: B018 - imports the transport class (memory, Redis); opens no socket
