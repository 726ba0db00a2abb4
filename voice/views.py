"""`POST /api/voice/chat`: talk to a shop's receptionist in text (design.md, Text contract).

Request  {"shop": "<slug>", "message": "...", "session": "<id, optional>", "caller": "+1…, optional"}
Response {"reply", "session", "intent", "tools": [{"name", "arguments", "ok"}], "transfer", "end"}

Authenticated by a logged-in member of the shop (session cookie, with CSRF: a page posts with the
X-CSRFToken header) or `Authorization: Bearer <shop API token>` (no CSRF: not a browser credential).
Errors are JSON `{"error": "..."}`: 400 bad request, 401 no/invalid credentials, 403 credentials for
another shop, 404 unknown session, 409 session ended or busy, 429 rate limited (with Retry-After).
The view only parses, authorises and shapes JSON; the conversation is voice.conversation's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.models import CallLog
from receptionist.logs import call_logging
from shops.models import Membership, Shop
from shops.phones import to_e164
from shops.selectors import get_membership_for_user, memberships_for_user
from shops.views import CURRENT_SHOP_SESSION_KEY, DashboardRequest, render_shop_page
from voice import ratelimit
from voice.browser import WS_PATH
from voice.conversation import MAX_TEXT_CHARS, ConversationService, SessionBusy, SessionClosed

logger = logging.getLogger(__name__)


def _error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@dataclass
class Credentials:
    shop: Shop | None = None  # the token's shop (Bearer)
    user_id: int | None = None  # the logged-in user (session)
    rate_key: str = ""


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason


def _csrf_failure(request: HttpRequest) -> str | None:
    """CSRF protection for cookie-authenticated requests (the view itself is csrf_exempt for Bearer)."""
    check = _CsrfCheck(lambda req: HttpResponse())  # the response is never used: only the checks run
    check.process_request(request)
    return check.process_view(request, lambda req: HttpResponse(), (), {})  # type: ignore[return-value]


async def _credentials(request: HttpRequest) -> Credentials | JsonResponse:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "Use 'Authorization: Bearer <shop API token>'.", WWW_Authenticate="Bearer")
        token = token.strip()
        shop = await sync_to_async(Shop.for_api_token)(token)
        if shop is None:
            return _error(401, "Invalid API token.", WWW_Authenticate="Bearer")
        return Credentials(shop=shop, rate_key="token:" + hashlib.sha256(token.encode()).hexdigest()[:24])
    user = await request.auser()
    if not user.is_authenticated:
        return _error(401, "Log in, or send 'Authorization: Bearer <shop API token>'.", WWW_Authenticate="Bearer")
    if reason := await sync_to_async(_csrf_failure)(request):
        return _error(403, f"CSRF check failed: {reason}. Send the X-CSRFToken header.")
    return Credentials(user_id=int(user.pk), rate_key=f"user:{user.pk}")


def _is_text(value: str) -> bool:
    """Text a database can store: no NUL (PostgreSQL refuses it) and no lone surrogate (JSON's
    `"\\ud800"` decodes to one; it has no UTF-8 form)."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _parse(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    try:
        body = json.loads(request.body or b"")
    except RequestDataTooBig:
        return _error(413, f"The body is too large (at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes).")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "The body must be JSON.")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.")
    for key in ("shop", "message", "session", "caller"):
        if isinstance(body.get(key), str) and not _is_text(body[key]):
            return _error(400, f"'{key}' must be text (no NUL characters or unpaired surrogates).")
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        return _error(400, "'message' is required: what the caller said.")
    if len(message) > MAX_TEXT_CHARS:
        return _error(400, f"'message' is too long (at most {MAX_TEXT_CHARS} characters).")
    if not isinstance(body.get("shop"), str) or not body["shop"]:
        return _error(400, "'shop' is required: the shop's slug.")
    for key in ("session", "caller"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return _error(400, f"'{key}' must be a string.")
    return body


@csrf_exempt
@require_POST
async def chat(request: HttpRequest) -> JsonResponse:
    credentials = await _credentials(request)
    rate = ratelimit.Rate.parse(settings.VOICE_CHAT_RATE_LIMIT)
    key = credentials.rate_key if isinstance(credentials, Credentials) else f"ip:{ratelimit.client_address(request)}"
    if (retry_after := await ratelimit.ahit(f"voice-chat:{key}", rate)) is not None:
        return _error(429, "Too many requests; slow down.", Retry_After=str(retry_after))
    if isinstance(credentials, JsonResponse):
        return credentials

    body = _parse(request)
    if isinstance(body, JsonResponse):
        return body
    shop = await Shop.objects.filter(slug=body["shop"]).afirst()
    if shop is None:
        return _error(400, f"Unknown shop {body['shop'][:60]!r}.")
    if credentials.shop is not None and credentials.shop.pk != shop.pk:
        return _error(403, "This API token belongs to another shop.")
    user_id = credentials.user_id
    if user_id is not None and not await Membership.objects.filter(user_id=user_id, shop=shop).aexists():
        return _error(403, "You are not a member of this shop.")

    caller = None
    if body.get("caller"):
        caller = to_e164(body["caller"], shop.country)
        if caller is None:
            return _error(400, "'caller' must be a phone number, e.g. +15555550123.")

    if body.get("session"):
        service = await ConversationService.resume(
            shop=shop, call_sid=body["session"][:64], channel=CallLog.Channel.CHAT
        )
        if service is None:
            return _error(404, "Unknown session. Omit 'session' to start a new conversation.")
        if caller and caller != service.call.caller_number:
            return _error(400, "'caller' cannot change during a session.")
    else:
        service = await ConversationService.start(shop=shop, channel=CallLog.Channel.CHAT, caller_number=caller)

    try:
        with call_logging(call_sid=service.call_sid, shop=shop.slug):  # the turn's log lines name the session
            result = await service.handle_turn(body["message"])
    except SessionClosed:
        return _error(409, "This conversation has ended. Omit 'session' to start a new one.")
    except SessionBusy:
        return _error(409, "Another message for this session is being answered; send yours again.")
    return JsonResponse(result.as_json(service.call_sid))


# ---------------------------------------------------------------------------------------------
# /voice-test: talk to the receptionist with the microphone (voice.consumers serves its WebSocket)
# ---------------------------------------------------------------------------------------------
@login_required
def voice_test(request: DashboardRequest, slug: str) -> HttpResponse:
    """The microphone test page of one shop, for its owners and staff (404 for anyone else)."""
    membership = get_membership_for_user(request.user, slug)
    return render_shop_page(
        request,
        "voice/voice_test.html",
        membership,
        "try",
        {"ws_path": "/" + WS_PATH, "ai_enabled": membership.shop.ai_enabled},
    )


@login_required
def voice_test_pick(request: DashboardRequest) -> HttpResponse:
    """`/voice-test`: the page of the shop asked for (?shop=<slug>), else of the shop last used, else
    of the first one; a user without a shop goes to onboarding. The shop switcher changes it later."""
    memberships = list(memberships_for_user(request.user))
    if not memberships:
        return redirect("shops:onboarding")
    by_slug = {m.shop.slug: m for m in memberships}
    wanted = (request.GET.get("shop"), request.session.get(CURRENT_SHOP_SESSION_KEY))
    chosen = next((by_slug[slug] for slug in wanted if slug in by_slug), memberships[0])
    return redirect("voice:voice_test", slug=chosen.shop.slug)
