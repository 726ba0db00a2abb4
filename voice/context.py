"""What a conversation knows about its call: who is calling which shop, and what has been established.

`CallContext` is handed to every tool handler by the session, so the shop and the caller never come
from model arguments. `ConversationState` is the conversation's memory between turns; it round-trips
through JSON (`CallLog.state`), so the next turn can be served by any process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from django.utils import timezone

if TYPE_CHECKING:
    from shops.models import Shop

HISTORY_TURNS = 12  # utterances kept for engines that want context (6 exchanges)


class Awaiting:
    """What the receptionist last asked for, so a short answer ("yes", "the truck") makes sense."""

    NOTHING = ""
    VERIFICATION = "verification"  # last name + make/model, or the RO number
    WHICH_VEHICLE = "which_vehicle"  # a verified caller with several work orders
    TRANSFER_OFFER = "transfer_offer"  # "would you like me to connect you?"
    ANYTHING_ELSE = "anything_else"  # "anything else I can help with?"


@dataclass
class ConversationState:
    v: int = 0  # version, bumped on every stored turn (see calls.services.call_record_exchange)
    turn: int = 0
    engine: str = "local"
    # Verification (privacy): the work orders this caller may hear about, and how each was earned.
    verified_ids: list[int] = field(default_factory=list)
    verified_by: dict[str, str] = field(default_factory=dict)
    caller_id_checked: bool = False
    failed_verifications: int = 0
    # Facts the caller gave that are not verified yet: last_name, make, model, body, ro.
    pending: dict[str, str] = field(default_factory=dict)
    focus_id: int | None = None  # the work order being talked about
    awaiting: str = Awaiting.NOTHING
    offer_reason: str = ""  # why a transfer was offered: "verification", "unknown", "status"
    topic: str = ""  # the last intent that was answered (a declined offer returns to it)
    unknown_streak: int = 0
    transferred: bool = False
    ended: bool = False
    history: list[list[str]] = field(default_factory=list)  # [[role, text], ...], oldest first
    scratch: dict[str, Any] = field(default_factory=dict)  # engine-private, JSON-serialisable

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ConversationState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def remember(self, role: str, text: str) -> None:
        self.history.append([role, text])
        del self.history[:-HISTORY_TURNS]

    def verify(self, order_id: int, method: str) -> None:
        if order_id not in self.verified_ids:
            self.verified_ids.append(order_id)
            self.verified_by[str(order_id)] = method

    @property
    def is_verified(self) -> bool:
        return bool(self.verified_ids)


@dataclass
class CallContext:
    """The session's side of a call, passed to tools and engines (never built from model output)."""

    shop: Shop
    state: ConversationState = field(default_factory=ConversationState)
    caller_number: str = ""  # E.164 from caller ID; '' when withheld or unknown
    channel: str = "chat"
    call_id: int | None = None
    clock: Callable[[], dt.datetime] = timezone.now
    # Work orders already read this turn (id → row), so one turn reads each once. Cleared at every
    # turn: a status that changes while the caller is on the line is seen on the next question.
    orders: dict[int, Any] = field(default_factory=dict, repr=False)
    # The shop's schedule, read once per call (hours do not change under a caller).
    schedule: Any = field(default=None, repr=False)

    def now(self) -> dt.datetime:
        return self.clock()

    def new_turn(self) -> None:
        self.orders.clear()
