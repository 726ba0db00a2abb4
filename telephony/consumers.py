"""Twilio Media Streams WebSocket → a VoiceSession (`/telephony/twilio/stream/`).

The consumer only translates frames (protocols.md A2); the conversation lives in voice.session:

    Twilio → us      connected · start · media · mark · dtmf · stop      (JSON text frames)
    us → Twilio      media · mark · clear                                (TwilioTransport)

Who may open a stream: the upgrade must carry a valid `X-Twilio-Signature` over the `wss://` URL
(telephony.signatures.check_websocket; refused before the handshake completes), and `start` must carry
the one-time token the voice webhook issued for this call (`customParameters.token`, telephony.tokens).
The caller's number comes from the CallLog the webhook opened, not from the stream's parameters.

Cost (design.md "Performance notes"): Channels' `AsyncConsumer.dispatch` awaits
`aclose_old_connections()` — a hop to a worker thread — before every message. A call sends 50 media
frames a second and none of them touches the database, so frames skip it (`dispatch` below), the
consumer does not join a channel layer it never uses, and the frame path has no ORM, no logging per
frame and no decoding beyond a base64 check: μ-law passes straight through to the session. Database
work happens in explicit `database_sync_to_async` calls: here at `start`, in the session at turn ends.

Bad frames (binary, not JSON, oversized, bad base64, media before `start`, unknown events, missing
fields) are counted, logged at most every few seconds per kind, and ignored: a garbled frame never
ends a call. A socket that closes without `stop` (a network drop) stops the session too.
"""

from __future__ import annotations

import binascii
import enum
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from calls.models import CallLog
from receptionist.logs import bind_call
from shops.models import Shop
from shops.phones import mask
from telephony.signatures import check_websocket
from telephony.tokens import StreamTokenError, redeem_stream_token
from voice.audio import MULAW_8K, b64encode_audio

logger = logging.getLogger(__name__)

MAX_FRAME_CHARS = 64 * 1024  # a Twilio media frame is ~400 characters; anything this big is not Twilio
FRAME_BYTES = MULAW_8K.frame_bytes  # 20 ms of μ-law 8 kHz = 160 bytes
BAD_FRAME_LOG_SECONDS = 10.0  # at most one log line per kind of bad frame this often

# Close codes (4000-4999 are the application's own).
CLOSE_FORBIDDEN = 4403  # bad or missing stream token
CLOSE_UNSUPPORTED = 1003  # a media format we cannot speak
CLOSE_ERROR = 1011


class StopReason(enum.StrEnum):
    """Why the consumer stops a session (VoiceSession.stop(reason=...): CallLog outcomes)."""

    CALLER_HUNG_UP = "caller_hung_up"  # Twilio sent `stop`: the call ended at the caller's end
    # The socket closed without `stop`, or the session could not start: the caller may still be on the
    # line. `failed` makes connect-action apologise and put them through to the shop (a dropped stream
    # must never become a dropped caller); `abandoned` would hang up on them.
    STREAM_LOST = "failed"


class MediaSession(Protocol):
    """What the consumer needs of voice.session.VoiceSession (voice/transport.py has the contract)."""

    async def start(self) -> None: ...
    async def receive_audio_b64(self, payload: str) -> None: ...
    async def mark_played(self, name: str) -> None: ...
    async def dtmf(self, digit: str) -> None: ...
    async def stop(self, *, reason: str = ...) -> None: ...


SessionFactory = Callable[..., MediaSession]


# ---------------------------------------------------------------------------------------------
# Call-control states: the session's states as the telephony side names them (logs and metrics)
# ---------------------------------------------------------------------------------------------
class CallState(enum.StrEnum):
    GREETING = "GREETING"
    LISTENING = "LISTENING"
    PROCESSING = "PROCESSING"
    RESPONDING = "RESPONDING"
    TRANSFERRING = "TRANSFERRING"
    ENDING = "ENDING"


# VoiceSession states (design.md: IDLE → LISTENING → PROCESSING → SPEAKING → TRANSFERRING → ENDED).
# SPEAKING is the greeting until the caller has been heard once, a response after that.
_CALL_STATES = {
    "idle": CallState.GREETING,
    "listening": CallState.LISTENING,
    "processing": CallState.PROCESSING,
    "transferring": CallState.TRANSFERRING,
    "ended": CallState.ENDING,
    "ending": CallState.ENDING,
}


def call_state_for(session_state: object, *, caller_heard: bool) -> CallState | None:
    """The call-control state for a VoiceSession state (an enum or its name), or None if unknown."""
    name = str(getattr(session_state, "value", session_state)).lower()
    if name == "speaking":
        return CallState.RESPONDING if caller_heard else CallState.GREETING
    return _CALL_STATES.get(name)


class _BadFrames:
    """Counts ignored frames by kind and logs each kind at most once per BAD_FRAME_LOG_SECONDS."""

    def __init__(self, call: Callable[[], str]) -> None:
        self.counts: Counter[str] = Counter()
        self._call = call
        self._logged_at: dict[str, float] = {}

    def __call__(self, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is not None and now - last < BAD_FRAME_LOG_SECONDS:
            return
        self._logged_at[kind] = now
        logger.warning(
            "media stream %s: ignored %s frame (%d so far)%s",
            self._call(),
            kind,
            self.counts[kind],
            f": {detail}" if detail else "",
        )


# ---------------------------------------------------------------------------------------------
# Our side of the stream
# ---------------------------------------------------------------------------------------------
class TwilioTransport:
    """voice.transport.Transport over one Twilio media stream: μ-law 8 kHz both ways, base64 in JSON."""

    name = "twilio"
    input_format = MULAW_8K
    output_format = MULAW_8K

    def __init__(self, consumer: TwilioMediaConsumer, stream_sid: str) -> None:
        self._consumer = consumer
        self.stream_sid = stream_sid
        # Every outbound frame starts the same way; building it once keeps the send path to a string join.
        sid = json.dumps(stream_sid)
        self._media_head = '{"event":"media","streamSid":' + sid + ',"media":{"payload":"'
        self._clear = '{"event":"clear","streamSid":' + sid + "}"
        self._sid_json = sid
        self.frames_out = 0
        self.bytes_out = 0
        self.marks_out = 0
        self.clears = 0
        self.closed = False

    async def _send(self, text: str) -> None:
        if not self.closed:
            await self._consumer.send_frame(text)

    async def send_audio(self, audio: bytes) -> None:
        """Split into 20 ms frames (the last one may be short: Twilio plays any length)."""
        for start in range(0, len(audio), FRAME_BYTES):
            await self.send_audio_b64(b64encode_audio(audio[start : start + FRAME_BYTES]))

    async def send_audio_b64(self, payload: str) -> None:
        """One media frame with `payload` as is (a Realtime delta in μ-law: no decode, no re-encode)."""
        if not payload:
            return
        self.frames_out += 1
        self.bytes_out += len(payload) * 3 // 4
        await self._send(self._media_head + payload + '"}}')

    async def send_mark(self, name: str) -> None:
        self.marks_out += 1
        await self._send('{"event":"mark","streamSid":' + self._sid_json + ',"mark":{"name":' + json.dumps(name) + "}}")

    async def clear(self) -> None:
        self.clears += 1
        await self._send(self._clear)

    async def send_event(self, event: dict[str, Any]) -> None:
        """Twilio has no UI channel; state changes feed the call-control log instead."""
        if event.get("type") == "state":
            self._consumer.session_state_changed(event.get("state", event.get("value")))

    async def close(self) -> None:
        """End the stream; Twilio then asks connect-action, which reads CallLog.outcome."""
        if not self.closed:
            self.closed = True
            await self._consumer.close()


@dataclass(frozen=True)
class _StreamGrant:
    shop: Shop
    caller_number: str


def _grant_stream(token: str | None, call_sid: str) -> _StreamGrant:
    """Redeem the stream token and load what the session needs, in one database hop.

    Raises StreamTokenError (telephony.tokens) when the token does not open this call's stream.
    """
    shop_id = redeem_stream_token(token, call_sid=call_sid)
    try:  # the call and its shop in one query (call_sid is unique)
        call = (
            CallLog.objects.select_related("shop").only("caller_number", "shop").get(call_sid=call_sid, shop_id=shop_id)
        )
    except CallLog.DoesNotExist:
        return _StreamGrant(shop=Shop.objects.get(pk=shop_id), caller_number="")
    return _StreamGrant(shop=call.shop, caller_number=call.caller_number)


def _voice_session(**kwargs: Any) -> MediaSession:
    from voice.session import VoiceSession  # imported late: the session pulls in the engines

    session: MediaSession = VoiceSession(**kwargs)
    return session


_MEDIA_EVENTS = ('"event":"media"', '"event": "media"')
_PAYLOAD_KEYS = ('"payload":"', '"payload": "')


def _media_payload(text: str) -> str | None:
    """The payload of a caller media frame, sliced out without parsing the JSON, or None.

    Fifty frames a second per call: `json.loads` of one costs ~1.5x this. Only the unambiguous case is
    sliced, where the slice is exactly what the parser would give: no backslash anywhere (so every
    quote delimits a string, and no escape hides a key, a quote or a track name), "event" first and
    once, one "media" key whose flat object ends with the frame's only "payload" key, and the
    inbound track (or none). The payload still has to pass the strict base64 check; anything else
    (other events, odd layouts) gets the full parse.
    """
    head = text[:20]
    if _MEDIA_EVENTS[0] not in head and _MEDIA_EVENTS[1] not in head:
        return None
    if "\\" in text or text.count('"event"') != 1 or text.count('"media":') != 1 or text.count('"payload"') != 1:
        return None
    media = text.find('"media":') + 8
    for key in _PAYLOAD_KEYS:
        start = text.find(key, media)
        if start >= 0:
            break
    else:
        return None
    # Between "media": and the payload key: the opening brace of a flat object, then other keys.
    fields = text[media:start].lstrip()
    if fields[:1] != "{" or "{" in fields[1:] or "}" in fields:
        return None
    if '"track"' in fields and (
        fields.count('"track"') != 1 or ('"track":"inbound"' not in fields and '"track": "inbound"' not in fields)
    ):
        return None
    start += len(key)
    end = text.find('"', start)
    if end <= start or text[end + 1 : end + 2] != "}":
        return None
    return text[start:end]


def _media_format_ok(fmt: Any) -> bool:
    if not isinstance(fmt, dict):
        return False
    try:
        return fmt.get("encoding") == "audio/x-mulaw" and int(fmt["sampleRate"]) == 8000 and int(fmt["channels"]) == 1
    except (KeyError, TypeError, ValueError):
        return False


class TwilioMediaConsumer(AsyncWebsocketConsumer):
    # Builds the session for a granted stream; tests replace it (VoiceSession keyword arguments).
    session_factory: ClassVar[SessionFactory] = staticmethod(_voice_session)

    session: MediaSession | None = None
    transport: TwilioTransport | None = None
    call_sid = ""
    stream_sid = ""
    _starting = False
    _stopped = False  # Twilio sent `stop`, or we stopped the session
    _caller_heard = False
    call_state: CallState | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames_in = 0
        self.bad_frames = _BadFrames(lambda: self.call_sid or "(before start)")
        self.states: list[str] = []
        self.opened_at = time.monotonic()

    # -- the hot path --------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' consumer loop without two costs a media stream does not need: a channel layer
        (nothing is ever sent to this consumer by group; with channels-redis it would keep a Redis
        receive pending for the whole call) and a new task plus `asyncio.wait` per message
        (`await_many_dispatch`). One message in, handled, the next."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Frames go straight to the handler; connect/disconnect take Channels' usual path (which
        closes stale database connections first — once per call, not 50 times a second)."""
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is None:
                self.bad_frames("binary")
                return
            await self.receive_frame(text)
            return
        await super().dispatch(message)

    async def send_frame(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def receive_frame(self, text: str) -> None:
        if len(text) > MAX_FRAME_CHARS:
            self.bad_frames("oversized", f"{len(text)} characters")
            return
        payload = _media_payload(text)
        if payload is not None:
            await self._audio(payload)
            return
        try:
            message = json.loads(text)
        except ValueError:
            self.bad_frames("not_json")
            return
        if not isinstance(message, dict):
            self.bad_frames("not_an_object")
            return
        event = message.get("event")
        if event == "media":
            await self._media(message)
        elif event == "mark":
            await self._mark(message)
        elif event == "start":
            await self._start(message)
        elif event == "dtmf":
            await self._dtmf(message)
        elif event == "stop":
            await self._stop_event(message)
        elif event == "connected":
            logger.debug("media stream connected: protocol %s %s", message.get("protocol"), message.get("version"))
        else:
            self.bad_frames("unknown_event", str(event)[:40])

    async def _media(self, message: dict[str, Any]) -> None:
        media = message.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str) or not payload:
            self.bad_frames("media_without_payload")
            return
        if media.get("track", "inbound") != "inbound":  # type: ignore[union-attr]
            return  # <Connect> streams carry the caller only; never feed our own audio back
        await self._audio(payload)

    async def _audio(self, payload: str) -> None:
        session = self.session
        if session is None:
            self.bad_frames("media_before_start")
            return
        try:
            binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            self.bad_frames("bad_base64")
            return
        self.frames_in += 1
        try:
            await session.receive_audio_b64(payload)
        except Exception:
            self.bad_frames("session_error_on_audio")
            logger.debug("session error on audio", exc_info=True)

    # -- stream lifecycle ----------------------------------------------------------------------
    async def connect(self) -> None:
        verdict = check_websocket(self.scope)
        if not verdict.accepted:
            # Before accept(): the server answers the upgrade with 403.
            await self.close()
            return
        await self.accept()

    async def _start(self, message: dict[str, Any]) -> None:
        if self.session is not None or self._starting:
            self.bad_frames("duplicate_start")
            return
        start = message.get("start")
        if not isinstance(start, dict):
            self.bad_frames("start_without_body")
            return
        call_sid = start.get("callSid")
        stream_sid = message.get("streamSid") or start.get("streamSid")
        params = start.get("customParameters")
        if not isinstance(call_sid, str) or not call_sid or not isinstance(stream_sid, str) or not stream_sid:
            self.bad_frames("start_without_ids")
            return
        self._starting = True
        self.call_sid, self.stream_sid = call_sid, stream_sid
        bind_call(call_sid=call_sid)  # this connection's log lines name the call (and the shop, below)
        token = params.get("token") if isinstance(params, dict) else None
        try:
            grant = await database_sync_to_async(_grant_stream)(token if isinstance(token, str) else None, call_sid)
        except StreamTokenError as exc:
            logger.warning("media stream for call %s refused: stream token %s", call_sid, exc.reason)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        except Shop.DoesNotExist:
            logger.warning("media stream for call %s refused: its shop no longer exists", call_sid)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not _media_format_ok(start.get("mediaFormat")):
            # Nothing we could say would be heard. Closing hands the call back to Twilio: connect-action
            # finds no outcome, apologises and puts the caller through to the shop.
            logger.error(
                "media stream for call %s: unsupported media format %r (we speak audio/x-mulaw 8000 Hz mono)",
                call_sid,
                start.get("mediaFormat"),
            )
            await self.close(code=CLOSE_UNSUPPORTED)
            return
        bind_call(shop=grant.shop.slug)
        self.transport = TwilioTransport(self, stream_sid)
        logger.info(
            "media stream %s for call %s (shop %s, caller %s)",
            stream_sid,
            call_sid,
            grant.shop.pk,
            mask(grant.caller_number),
        )
        try:
            session = type(self).session_factory(
                shop=grant.shop,
                transport=self.transport,
                call_sid=call_sid,
                channel=CallLog.Channel.PHONE,
                caller_number=grant.caller_number,
            )
            self.session = session
            self.session_state_changed("idle")
            await session.start()
        except Exception:
            logger.exception("media stream for call %s: the session could not start", call_sid)
            await self._stop_session(StopReason.STREAM_LOST)
            await self.close(code=CLOSE_ERROR)

    async def _mark(self, message: dict[str, Any]) -> None:
        mark = message.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            self.bad_frames("mark_without_name")
            return
        if self.session is None:
            self.bad_frames("mark_before_start")
            return
        try:
            await self.session.mark_played(name)
        except Exception:
            logger.exception("media stream for call %s: session error on mark", self.call_sid)

    async def _dtmf(self, message: dict[str, Any]) -> None:
        dtmf = message.get("dtmf")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
            self.bad_frames("bad_dtmf")
            return
        if self.session is None:
            self.bad_frames("dtmf_before_start")
            return
        logger.info("call %s: caller pressed %s", self.call_sid, digit)
        try:
            await self.session.dtmf(digit)
        except Exception:
            logger.exception("media stream for call %s: session error on a key press", self.call_sid)

    async def _stop_event(self, message: dict[str, Any]) -> None:
        await self._stop_session(StopReason.CALLER_HUNG_UP)
        await self.close()

    async def _stop_session(self, reason: StopReason) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.session is None:
            return
        try:
            await self.session.stop(reason=reason.value)
        except Exception:
            logger.exception("media stream for call %s: the session did not stop cleanly", self.call_sid)

    async def disconnect(self, code: int) -> None:
        if self.transport is not None:
            self.transport.closed = True
        await self._stop_session(StopReason.STREAM_LOST)
        if self.call_sid:
            transport = self.transport
            logger.info(
                "media stream for call %s closed (code %s) after %.0f s: %d frames in, %d out, %d marks, "
                "%d clears; states %s%s",
                self.call_sid,
                code,
                time.monotonic() - self.opened_at,
                self.frames_in,
                transport.frames_out if transport else 0,
                transport.marks_out if transport else 0,
                transport.clears if transport else 0,
                " → ".join(self.states) or "none",
                f"; ignored frames {dict(self.bad_frames.counts)}" if self.bad_frames.counts else "",
            )

    # -- call control --------------------------------------------------------------------------
    def session_state_changed(self, session_state: object) -> None:
        """Record the call-control state for a session state change (TwilioTransport.send_event)."""
        if str(getattr(session_state, "value", session_state)).lower() == "processing":
            self._caller_heard = True
        state = call_state_for(session_state, caller_heard=self._caller_heard)
        if state is None or state == self.call_state:
            return
        self.call_state = state
        self.states.append(state.value)
        logger.debug("call %s: %s", self.call_sid, state.value)
