"""Is this request really from Twilio? `X-Twilio-Signature` checks for webhooks and the media stream.

Twilio signs the URL *it* requested (protocols.md A3): our public URL, not what Django sees behind a
TLS-terminating proxy (`http://10.0.0.5:8000/...`). So the URL is always rebuilt from
`settings.PUBLIC_BASE_URL` (the public origin, plus a path prefix if the proxy strips one) + the request's
path *inside* this app + its query string. Form POST parameters are part of the signature; the SDK's
`RequestValidator` sorts names and values and handles repeated keys (Django's `QueryDict.getlist`).

No auth token configured:
- outside DEBUG: refused — 503 for webhooks (the vendor feature is off, and says so), closed WebSocket;
- in DEBUG: accepted with a loud warning on every request, so `make run` + `simulate_call` work on a
  laptop without Twilio credentials. Production never runs with DEBUG on (settings refuse the dev key).

The media-stream WebSocket upgrade is signed over the `wss://` URL with no parameters; the consumer
checks it with `check_websocket(scope)` and *also* redeems the one-time stream token (telephony.tokens).
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from twilio.request_validator import RequestValidator

from voice import ratelimit

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


class Verdict(enum.Enum):
    VALID = "valid"
    UNCHECKED = "unchecked"  # DEBUG and no auth token: let through, warned
    NOT_CONFIGURED = "not_configured"  # no auth token outside DEBUG
    MISSING = "missing"
    INVALID = "invalid"

    @property
    def accepted(self) -> bool:
        return self in (Verdict.VALID, Verdict.UNCHECKED)


# ---------------------------------------------------------------------------------------------
# Public URLs: what Twilio requests (and therefore signs)
# ---------------------------------------------------------------------------------------------
def _app_path(path: str) -> str:
    """`reverse()` result without the script prefix: the same path `request.path_info` shows."""
    prefix = get_script_prefix()
    if prefix != "/" and path.startswith(prefix):
        return "/" + path[len(prefix) :]
    return path


def public_url(path: str) -> str:
    """`PUBLIC_BASE_URL` + a path inside this app (`/telephony/twilio/voice/`)."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def public_url_for(name: str, **kwargs: Any) -> str:
    """Absolute public https URL of a named route, for TwiML `action`s and REST `action_url`s."""
    return public_url(_app_path(reverse(name, kwargs=kwargs or None)))


def public_ws_url(path: str) -> str:
    """The public WebSocket URL for `path`: `https://` → `wss://`. (`http://` → `ws://`, which only a
    local `simulate_call` can use: Twilio accepts `wss` only and cannot reach a laptop anyway.)"""
    url = public_url(path)
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url


def request_url(request: HttpRequest) -> str:
    """The URL Twilio signed for this request: public base + path inside the app + query string."""
    return public_url(request.get_full_path_info())


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------
def check_signature(url: str, params: Mapping[str, Any], signature: str | None) -> Verdict:
    """Compare `signature` with Twilio's HMAC over `url` + sorted `params` (dict or QueryDict)."""
    token = settings.TWILIO_AUTH_TOKEN
    where = url.split("?", 1)[0]  # GET webhooks carry the caller's number in the query: never log it
    if not token:
        if settings.DEBUG:
            logger.warning(
                "TWILIO_AUTH_TOKEN is not set: accepting an UNSIGNED Twilio request to %s (DEBUG only; "
                "outside DEBUG this is refused)",
                where,
            )
            return Verdict.UNCHECKED
        logger.error("TWILIO_AUTH_TOKEN is not set: refusing Twilio request to %s", where)
        return Verdict.NOT_CONFIGURED
    if not signature:
        logger.warning("Twilio request to %s without %s", where, SIGNATURE_HEADER)
        return Verdict.MISSING
    # While the auth token is rotated (docs/runbooks/rotating-secrets.md), Twilio signs with the old
    # primary until the new token is promoted: both are accepted until the old one is removed.
    for key in (token, *settings.TWILIO_AUTH_TOKEN_FALLBACKS):
        if RequestValidator(key).validate(url, params, signature):
            return Verdict.VALID
    logger.warning("Twilio request to %s with a bad signature", where)
    return Verdict.INVALID


def check_request(request: HttpRequest) -> Verdict:
    """Verdict for an HTTP webhook: POST signs URL + form body; GET signs the URL with its query."""
    params: Mapping[str, Any] = request.POST if request.method == "POST" else {}
    return check_signature(request_url(request), params, request.headers.get(SIGNATURE_HEADER))


def check_websocket(scope: Mapping[str, Any]) -> Verdict:
    """Verdict for a Media Streams WebSocket upgrade (Channels `scope`).

    Twilio signs the `wss://` URL it connected to with no parameters; the header arrives lower-cased in
    `scope["headers"]` as bytes. Twilio drops query strings from stream URLs, but if one is present it
    is part of the URL that was requested, so it is included.
    """
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    query = scope.get("query_string", b"")
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    signature = None
    for name, value in scope.get("headers", []):
        if name.lower() == SIGNATURE_HEADER.lower().encode():
            signature = value.decode("latin-1")
            break
    return check_signature(public_ws_url(path), {}, signature)


def rate_limited(request: HttpRequest) -> HttpResponse | None:
    """429 (with Retry-After) once this request's source has made more than `WEBHOOK_RATE_LIMIT`
    webhook requests in the window; None while it is under. The first refusal of a window is logged."""
    rate = ratelimit.Rate.parse(settings.WEBHOOK_RATE_LIMIT)
    address = ratelimit.client_address(request)
    key = f"twilio-webhook:{address}"
    retry_after = ratelimit.hit(key, rate)
    if retry_after is None:
        return None
    if ratelimit.first_refusal(key, rate):
        logger.warning(
            "Twilio webhooks from %s are over WEBHOOK_RATE_LIMIT (%s): answering 429 for the next %d s",
            address,
            settings.WEBHOOK_RATE_LIMIT,
            retry_after,
        )
    response = HttpResponse("Too many requests.", status=429, content_type="text/plain")
    response["Retry-After"] = str(retry_after)
    return response


def twilio_webhook(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a Twilio webhook view: CSRF-exempt (Twilio has no CSRF token; the signature is the
    proof), GET or POST (whichever the number is configured for), 429 over the per-source rate limit
    (checked first, so a flood never reaches the HMAC or the database), 403 on a bad or missing
    signature, 503 when no auth token is configured outside DEBUG."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (refused := rate_limited(request)) is not None:
            return refused
        verdict = check_request(request)
        if verdict is Verdict.NOT_CONFIGURED:
            return HttpResponse("Twilio is not configured.", status=503, content_type="text/plain")
        if not verdict.accepted:
            return HttpResponse("Invalid Twilio signature.", status=403, content_type="text/plain")
        return view(request, *args, **kwargs)

    return csrf_exempt(require_http_methods(["GET", "POST"])(wrapped))
