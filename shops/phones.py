"""Phone numbers in one format (E.164) everywhere: storage, lookups and Twilio's `From`/`To`."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


def to_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Return `raw` as E.164 (`+15555550123`), or None when it is not a usable phone number.

    Accepts what people and shop systems write: `(555) 555-0123`, `555.555.0123`, `1-555-555-0123`,
    `+1 555 555 0123`, `555-555-0123 ext 4`. US numbers use the 555 range in demos and tests, which
    `is_valid_number` rejects, so only the number's *shape* is checked (`is_possible_number`).
    """
    if not raw:
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str | None) -> str:
    """What the UI and logs show of a caller's number: only the last four digits."""
    if not e164:
        return "unknown"
    digits = "".join(ch for ch in e164 if ch.isdigit())
    return f"•••{digits[-4:]}" if len(digits) >= 4 else "•••"
