"""Sentences a receptionist can say: plain text, no markdown, times as "5:30 PM", RO numbers digit by
digit, lists joined with "and", and a little variety that is deterministic (seeded by the turn) so a
conversation replays identically in tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from shops.models import WorkOrder

STATUS_PHRASES: dict[str, str] = {
    WorkOrder.Status.ESTIMATE: "in for an estimate; we haven't started any work on it yet",
    WorkOrder.Status.RECEIVED: "checked in and waiting for a technician to look at it",
    WorkOrder.Status.DIAGNOSING: "with a technician, who is still diagnosing it",
    WorkOrder.Status.AWAITING_APPROVAL: "waiting for your approval on the estimate before we go ahead",
    WorkOrder.Status.WAITING_ON_PARTS: "waiting on parts",
    WorkOrder.Status.IN_PROGRESS: "in the shop, and the work is in progress",
    WorkOrder.Status.QUALITY_CHECK: "just about done; it's getting a final quality check",
    WorkOrder.Status.READY_FOR_PICKUP: "ready for pickup",
}
CLOSED_STATUSES = frozenset({WorkOrder.Status.PICKED_UP, WorkOrder.Status.CANCELLED})

# Words that would tell an unverified caller something about a work order (used by the leak check in
# the evaluation and by tests; replies to unverified callers avoid all of them).
STATUS_WORDS = (
    "ready", "pickup", "picked up", "pick it up", "diagnos", "in progress", "quality check", "waiting on parts",
    "approval", "approve", "estimate", "cancel", "finished", "completed", "work is done", "being worked",
    "i found", "found your", "found a", "i see your", "i see a work order", "on file for you", "your car is",
    "your truck is", "your vehicle is",
)  # fmt: skip


def spoken_ro(number: str) -> str:
    """'1001' → '1 0 0 1'; 'A-1023' → 'A 1 0 2 3': read character by character, never as 'one thousand'."""
    return " ".join(ch.upper() for ch in number if ch.isalnum())


def join_words(items: Sequence[str], conjunction: str = "and") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} {conjunction} {items[1]}"
    return ", ".join(items[:-1]) + f", {conjunction} {items[-1]}"


def pick(options: Sequence[str], seed: int | str) -> str:
    """One of `options`, chosen by `seed` (the turn number, a key): varied, but the same every run."""
    if isinstance(seed, str):
        seed = int(hashlib.blake2s(seed.encode(), digest_size=4).hexdigest(), 16)
    return options[seed % len(options)]


def sentence(text: str) -> str:
    """Trim, collapse spaces, capitalise and end with punctuation; strip characters TTS would read out."""
    text = re.sub(r"[*_#`~|<>\[\]{}]", "", text or "")
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    if text[-1] in ".?!":
        return text
    return text + ("?" if _QUESTION.match(text) else ".")


_QUESTION = re.compile(
    r"^(would|do|does|can|could|is|are|was|what|which|when|where|who|how|shall|should|want|anything|and what)\b",
    re.IGNORECASE,
)


def join_sentences(*parts: str) -> str:
    return " ".join(s for s in (sentence(p) for p in parts) if s)


def vehicle_name(order: WorkOrder) -> str:
    """'2018 Honda Civic'; 'vehicle' when the work order does not say."""
    return order.vehicle or "vehicle"


def note_excerpt(note: str, limit: int = 200) -> str:
    """A staff note, shortened at a sentence or word boundary to something a caller can listen to."""
    note = re.sub(r"\s+", " ", note or "").strip()
    if len(note) <= limit:
        return note
    cut = note[:limit]
    end = max(cut.rfind(". "), cut.rfind("; "))
    return cut[: end + 1] if end > 40 else cut.rsplit(" ", 1)[0] + "…"


def plural_service(name: str) -> str:
    """'Oil change' → 'oil changes', 'Brake pads and rotors' stays, 'Check engine light diagnosis' stays."""
    words = lowercase_service(name).split()
    if not words:
        return ""
    last = words[-1]
    if last.endswith("s"):
        pass
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("ch", "sh", "x")):
        last += "es"
    else:
        last += "s"
    return " ".join([*words[:-1], last])


def with_article(name: str) -> str:
    """'an oil change', 'a wheel alignment', 'brake pads and rotors' (already plural)."""
    said = lowercase_service(name)
    if said.split()[-1:] and said.split()[-1].endswith("s") and not said.endswith("is"):
        return said
    return f"{'an' if said[:1].lower() in 'aeio' else 'a'} {said}"


def lowercase_service(name: str) -> str:
    """'Wheel alignment' → 'wheel alignment', but 'A/C recharge' keeps its capitals."""
    return " ".join(w if (w.isupper() or "/" in w) and len(w) > 1 else w.lower() for w in name.split())
