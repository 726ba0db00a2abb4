"""Optional error reports to Sentry: on when `SENTRY_DSN` is set, otherwise nothing happens at all.

`settings.py` calls `init_sentry(SENTRY_DSN)`; sentry_sdk is imported only when there is a DSN. Reports
carry no personal data Sentry would add on its own (`send_default_pii=False`: no cookies, users or
client addresses), and `before_send` masks every phone-number-shaped string anywhere in the event — the
request body of a Twilio webhook (`From=+1…`), a query string, an exception message, a frame's local
variables — and tags the event with the call it happened in (receptionist.logs), when there is one.
`SENTRY_ENVIRONMENT` and `SENTRY_RELEASE` are read by sentry_sdk itself.
"""

from __future__ import annotations

from typing import Any

from receptionist.logs import current_call, mask_phone_numbers


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone_numbers(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """The event with phone numbers masked throughout and the current call's `call_sid`/`shop` as tags."""
    event = _masked(event)
    binding = current_call()
    if binding is not None:
        tags = event.setdefault("tags", {})
        if isinstance(tags, dict):
            tags.update({k: v for k, v in (("call_sid", binding.call_sid), ("shop", binding.shop)) if v})
    return event


def init_sentry(dsn: str) -> bool:
    """Start reporting to Sentry with the Django and Celery integrations; returns False (and does
    nothing, not even importing sentry_sdk) when `dsn` is empty."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        before_send=before_send,  # type: ignore[arg-type]
        # Errors only: performance traces would be one more stream of call data to keep private.
        traces_sample_rate=0.0,
    )
    return True
