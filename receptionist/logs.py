"""Log lines that say which call they belong to, with caller numbers masked.

Whatever handles a call — the Twilio webhooks, the media-stream consumer, `VoiceSession`, a Celery task
about a call — binds the call with `bind_call()` (for the rest of the current task or connection) or
`call_logging()` (for a block). The binding lives in a `ContextVar`, so it follows the code: into
`sync_to_async`/`database_sync_to_async` threads and into every asyncio task created after it (a
session's `spawn()`ed tasks copy the context when they are created). `CallContextFilter`, installed on
the console handler by `settings.LOGGING`, copies it onto each record as `call_sid` and `shop` (the
shop's slug). A record logged outside any call carries neither.

Both formatters (`LOG_FORMAT=json`: one JSON object per line; `text`: one readable line) mask anything
shaped like a phone number as `•••1234` (shops.phones.mask), whatever the code that logged it did: the
code already logs `mask(number)`, and this is the net under it (a number in an exception, a URL query
string, a third-party library's message).

This module is imported while Django configures logging: it must not import models.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from shops.phones import mask


@dataclass(frozen=True)
class CallBinding:
    call_sid: str = ""
    shop: str = ""  # the shop's slug


_call: ContextVar[CallBinding | None] = ContextVar("receptionist_call", default=None)


def current_call() -> CallBinding | None:
    """The call the running code handles, or None."""
    return _call.get()


def bind_call(*, call_sid: str | None = None, shop: str | None = None) -> Token[CallBinding | None]:
    """Say that the running code handles this call (fields left out keep their bound value) until the
    end of the current asyncio task or thread context; returns the token `unbind_call()` takes."""
    binding = _call.get() or CallBinding()
    changes = {name: value for name, value in (("call_sid", call_sid), ("shop", shop)) if value}
    return _call.set(replace(binding, **changes))


def unbind_call(token: Token[CallBinding | None]) -> None:
    _call.reset(token)


@contextlib.contextmanager
def call_logging(*, call_sid: str | None = None, shop: str | None = None) -> Iterator[None]:
    """The block (a webhook, a task, a chat turn) handles this call and no other: it starts from a fresh
    binding, whatever was bound around it; `bind_call()` inside it adds to it and ends with it."""
    token = _call.set(CallBinding(call_sid=call_sid or "", shop=shop or ""))
    try:
        yield
    finally:
        unbind_call(token)


class CallContextFilter(logging.Filter):
    """Puts the bound call's `call_sid` and `shop` on each record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        binding = _call.get()
        if binding is not None:
            if binding.call_sid and not hasattr(record, "call_sid"):
                record.call_sid = binding.call_sid
            if binding.shop and not hasattr(record, "shop"):
                record.shop = binding.shop
        return True


# E.164 (also URL-encoded, as in a logged query string) and the written North American forms:
# +15555550123, %2B15555550123, (555) 555-0123, 555-555-0123, 1 555.555.0123. Bare digit runs are left
# alone: they are far more often ids, counts or timestamps than phone numbers.
_PHONE = re.compile(
    r"(?:\+|%2[Bb])[1-9]\d{7,14}(?!\d)"
    r"|(?<![\w+])(?:1[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)"
)


def mask_phone_numbers(text: str) -> str:
    """`text` with every phone-number-shaped part replaced by its masked form (last four digits)."""
    if not text:
        return text
    return _PHONE.sub(lambda m: mask(m.group(0).replace("%2B", "+").replace("%2b", "+")), text)


def _call_tag(record: logging.LogRecord) -> str:
    parts = [str(v) for v in (getattr(record, "call_sid", ""), getattr(record, "shop", "")) if v]
    return f" [{' '.join(parts)}]" if parts else ""


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [call_sid shop] message`, phone numbers masked (development, LOG_FORMAT=text)."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s%(call_tag)s %(message)s", datefmt, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        values = {**record.__dict__, "call_tag": _call_tag(record)}
        return self._style._fmt % values if self._style._fmt else record.message

    def format(self, record: logging.LogRecord) -> str:
        return mask_phone_numbers(super().format(record))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, call_sid and shop when bound, any
    `extra=` fields, exc_info; phone numbers masked. (Production default, LOG_FORMAT=json.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        # uvicorn adds the message again with terminal colours: noise in a log collector.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "color_message"])
        super().__init__(*args or ("%(asctime)s %(levelname)s %(name)s %(message)s",), **kwargs)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        return mask_phone_numbers(super().jsonify_log_record(log_data))
