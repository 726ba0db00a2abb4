"""`/ws/voice/stream/?shop=<slug>`: the `/voice-test` page's call, a thin consumer around VoiceSession.

It checks who is calling (the session user from AuthMiddlewareStack must be a member — owner or staff
— of the shop), opens a VoiceSession with a `BrowserTransport`, and translates frames: binary audio
→ `receive_audio`, JSON control → `receive_text` / `mark_played` / `dtmf` / `stop`; the session
answers through the transport. The wire protocol is documented in voice.browser.

The caller is the shop's own user trying the receptionist, so `caller_number` is empty: they are not
verified as any customer.

Audio arrives ~50 times a second. Channels' `dispatch` awaits `aclose_old_connections()` (a hop to a
worker thread) before every message; frames never touch the database here, so they skip it
(design.md, performance notes). The session's own database work goes through database_sync_to_async,
which manages connections itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from receptionist.logs import bind_call
from shops.models import Membership, Shop
from voice import browser
from voice.browser import BadFrame, BrowserTransport
from voice.session import VoiceSession
from voice.transport import Transport

logger = logging.getLogger(__name__)


class Session(Protocol):
    """The VoiceSession inputs the consumer calls (voice.transport's docstring is the contract)."""

    async def start(self) -> None: ...
    async def receive_audio(self, audio: bytes) -> None: ...
    async def receive_text(self, text: str) -> None: ...
    async def mark_played(self, name: str) -> None: ...
    async def dtmf(self, digit: str) -> None: ...
    async def stop(self, reason: str = ...) -> None: ...


SessionFactory = Callable[..., Session]


def voice_session(*, shop: Shop, transport: Transport, call_sid: str, channel: str, caller_number: str) -> Session:
    return VoiceSession(shop=shop, transport=transport, call_sid=call_sid, channel=channel, caller_number=caller_number)


@database_sync_to_async
def _shop_for_member(user: Any, slug: str) -> Shop | None:
    membership = Membership.objects.filter(user=user, shop__slug=slug).select_related("shop").first()
    return membership.shop if membership else None


def _shop_slug(scope: dict[str, Any]) -> str:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return (query.get("shop") or [""])[0][:100]


class BrowserVoiceConsumer(AsyncWebsocketConsumer):
    # A call takes no channel-layer messages: without a layer the consumer doesn't keep a Redis
    # receive loop open per call (an alias that is not configured means "no layer" to Channels).
    channel_layer_alias = "no-channel-layer"
    session: Session | None = None
    transport: BrowserTransport | None = None
    _start_task: asyncio.Task[None] | None = None

    def __init__(self, *args: Any, session_factory: SessionFactory = voice_session, **kwargs: Any) -> None:
        """`session_factory` builds the session (tests pass a stand-in through `as_asgi(session_factory=...)`)."""
        super().__init__(*args, **kwargs)
        self.session_factory = session_factory

    async def connect(self) -> None:
        # Accept first, then close with a code the page can show (a refusal before accept reaches the
        # browser as a bare 403 and close code 1006 whatever the reason).
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=browser.CLOSE_NOT_LOGGED_IN)
            return
        shop = await _shop_for_member(user, _shop_slug(self.scope))
        if shop is None:  # unknown shop or someone else's: the same answer, so slugs can't be probed
            await self.close(code=browser.CLOSE_FORBIDDEN)
            return

        call_sid = f"browser-{uuid.uuid4().hex}"
        bind_call(call_sid=call_sid, shop=shop.slug)  # this connection's log lines name the call
        transport = BrowserTransport(self)
        try:
            self.session = self.session_factory(
                shop=shop, transport=transport, call_sid=call_sid, channel="browser", caller_number=""
            )
        except Exception:
            logger.exception("browser call: could not open a voice session")
            await self.close(code=browser.CLOSE_SERVER_ERROR)
            return
        self.transport = transport
        await self.send(
            text_data=json.dumps(
                browser.hello(
                    call_sid=call_sid,
                    shop_slug=shop.slug,
                    shop_name=shop.name,
                    engine=getattr(self.session, "engine_name", None),
                )
            )
        )
        logger.info("browser call %s started for shop %s by user %s", call_sid, shop.slug, user.pk)
        # The greeting is spoken while frames keep flowing: the caller may talk over it, and its
        # marks must reach the session as they are played.
        self._start_task = asyncio.ensure_future(self._guard(self.session.start()))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Frames skip Channels' per-message aclose_old_connections (see the module docstring).
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None or self.transport is None or self.transport.closed:
            return
        try:
            if bytes_data is not None:
                await self._guard(self.session.receive_audio(browser.check_audio(bytes_data)))
            elif text_data is not None:
                await self._control(browser.parse_control(text_data))
        except BadFrame as exc:
            logger.warning("browser call: ignored a bad frame: %s", exc)

    async def _control(self, message: browser.Control) -> None:
        assert self.session is not None  # noqa: S101 - receive() checked
        match message:
            case browser.Text(text=text):
                await self._guard(self.session.receive_text(text))
            case browser.Mark(name=name):
                await self._guard(self.session.mark_played(name))
            case browser.Dtmf(digit=digit):
                await self._guard(self.session.dtmf(digit))
            case browser.Stop():
                await self._guard(self.session.stop(reason="caller_hung_up"))
                if self.transport is not None:
                    await self.transport.close()

    async def _guard(self, call: Awaitable[None]) -> None:
        """Run a session input; if the session fails, end the call (CallLog outcome `failed`) and close
        the socket with 1011, instead of letting the exception kill the consumer with the call open."""
        try:
            await call
        except Exception:
            logger.exception("browser call: the voice session failed")
            if self.session is not None:
                with contextlib.suppress(Exception):
                    await self.session.stop(reason="failed")
            if self.transport is not None and not self.transport.closed:
                self.transport.disconnected()
                await self.close(code=browser.CLOSE_SERVER_ERROR)

    async def disconnect(self, code: int) -> None:
        if self.transport is not None:
            self.transport.disconnected()
        if self.session is not None:
            try:
                await self.session.stop(reason="caller_hung_up")  # idempotent: no-op if it already ended
            except Exception:
                logger.exception("browser call: stopping the voice session failed")
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._start_task
