"""Presentation filters for the dashboard templates (formatting only, no queries)."""

from __future__ import annotations

from django import template

from shops.phones import mask as mask_number

register = template.Library()


@register.filter
def mask(number: str | None) -> str:
    """A caller's number as the UI may show it: •••0123."""
    return mask_number(number)


@register.filter
def duration(seconds: int | float | None) -> str:
    """72 → '1:12'; None → '—'."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


@register.filter
def ms(value: int | float | None) -> str:
    """Milliseconds for people: 850 → '850 ms', 1840 → '1.8 s'."""
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value / 1000:.1f} s"
    return f"{int(round(value))} ms"


@register.filter
def intent_label(intent: str | None) -> str:
    return (intent or "").replace("_", " ").title() or "—"


@register.filter
def get_item(mapping: dict, key: object) -> object:
    return mapping.get(key) if mapping else None


@register.filter
def redact_phone(value: object) -> object:
    """Mask a value that looks like a phone number (tool arguments may carry the caller's)."""
    if isinstance(value, str):
        digits = sum(ch.isdigit() for ch in value)
        if digits >= 7 and digits >= len(value.replace(" ", "")) - 6:
            return mask_number(value)
    return value
