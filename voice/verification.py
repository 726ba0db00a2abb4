"""Caller verification (design.md): who may hear about which work order.

A work order's status or details are told only when
  - the caller's number (E.164 from caller ID) is the work order's customer_phone, or
  - the caller gives the work order's RO number, or
  - the caller gives the customer's last name *and* the vehicle's make or model.
Verification is per work order and lives in the conversation state, so nothing a caller (or a
model) says later can widen it. Every lookup is one indexed query on the shop's work orders
(shop+customer_phone, shop+number, shop+customer_last_name); nothing here lists work orders that
the caller is not verified for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import QuerySet

from shops.models import WorkOrder
from voice.context import CallContext
from voice.nlu.vocab import ShopVocabulary, Vehicle, make_key, model_matches
from voice.replies import CLOSED_STATUSES

OFFER_TRANSFER_AFTER = 2  # failed tries before the receptionist offers a person
MAX_FAILED = 4  # after this many failed tries, no more lookups on this call (guessing RO numbers)

CALLER_ID = "caller_id"
RO_NUMBER = "ro_number"
NAME_AND_VEHICLE = "name_vehicle"

_FIELDS = (
    "id",
    "shop_id",
    "number",
    "customer_name",
    "customer_phone",
    "vehicle_year",
    "vehicle_make",
    "vehicle_model",
    "status",
    "status_note",
    "services",
    "promised_at",
    "updated_at",
)


@dataclass
class Facts:
    """What the caller told us that can verify or pick a work order."""

    ro_number: str = ""
    last_name: str = ""
    first_name: str = ""  # only narrows several matches ("Jane" vs "John" Smith); never verifies alone
    vehicle: Vehicle | None = None
    body: str = ""
    year: int | None = None

    @property
    def complete(self) -> bool:
        """Enough to attempt a verification: an RO number, or a last name with a make or model."""
        return bool(self.ro_number) or bool(self.last_name and self.vehicle)


@dataclass
class Verification:
    orders: list[WorkOrder] = field(default_factory=list)  # every work order the caller is verified for
    matched_ids: list[int] = field(default_factory=list)  # the work orders these facts point to
    attempted: bool = False  # a complete set of facts was checked
    failed: bool = False  # ...and matched nothing
    locked: bool = False  # too many failed tries: no more lookups on this call
    missing: list[str] = field(default_factory=list)  # what to ask for: 'last_name', 'vehicle'

    @property
    def verified(self) -> bool:
        return bool(self.orders)


def _orders(ctx: CallContext) -> QuerySet[WorkOrder]:
    return WorkOrder.objects.filter(shop_id=ctx.shop.pk).only(*_FIELDS)


def ro_variants(ro: str) -> list[str]:
    """The forms an RO number may be stored in: '1001', 'A1023'/'a1023', 'A-1023'."""
    ro = ro.strip().lstrip("#")
    ro = re.sub(r"^(ro|r\.o\.)\s*", "", ro, flags=re.IGNORECASE).strip()
    compact = re.sub(r"[\s-]", "", ro)
    forms = {ro, compact, compact.upper(), compact.lower()}
    m = re.match(r"^([A-Za-z]+)(\d+)$", compact)
    if m:
        forms.add(f"{m.group(1).upper()}-{m.group(2)}")
    return sorted(f for f in forms if f)


def _first_name(order: WorkOrder) -> str:
    name = (order.customer_name or "").strip()
    if "," in name:  # "Smith, John"
        name = name.split(",", 1)[1]
    parts = name.split()
    return parts[0].strip(".").lower() if parts else ""


def vehicle_fits(order: WorkOrder, vehicle: Vehicle) -> bool:
    """Does what the caller said fit the work order's vehicle? A model must match if given."""
    if vehicle.model:
        if not model_matches(vehicle.model, order.vehicle_model):
            return False
        return not vehicle.make or not order.vehicle_make or make_key(vehicle.make) == make_key(order.vehicle_make)
    return bool(vehicle.make) and make_key(vehicle.make) == make_key(order.vehicle_make)


async def verified_orders(ctx: CallContext) -> list[WorkOrder]:
    """The work orders this caller is verified for, newest first (at most one query per turn)."""
    await _check_caller_id(ctx)
    missing = [i for i in ctx.state.verified_ids if i not in ctx.orders]
    if missing:
        async for order in _orders(ctx).filter(id__in=missing):
            ctx.orders[order.pk] = order
    orders = [ctx.orders[i] for i in ctx.state.verified_ids if i in ctx.orders]
    return sorted(orders, key=lambda o: o.updated_at, reverse=True)


async def _check_caller_id(ctx: CallContext) -> None:
    state = ctx.state
    if state.caller_id_checked:
        return
    state.caller_id_checked = True
    if not ctx.caller_number:
        return
    async for order in _orders(ctx).filter(customer_phone=ctx.caller_number)[:50]:
        ctx.orders[order.pk] = order
        state.verify(order.pk, CALLER_ID)


async def verify(ctx: CallContext, facts: Facts) -> Verification:
    """Check the caller's facts and caller ID; returns the verified work orders and what is missing.

    A complete set of facts that matches nothing counts as a failed try (state.failed_verifications).
    Partial facts (a name without a vehicle) are not tries: the caller is asked for the rest, and is
    not told whether the part they gave matched anything.
    """
    state = ctx.state
    await _check_caller_id(ctx)
    result = Verification()
    if facts.complete and state.failed_verifications >= MAX_FAILED:
        result.locked = True
    elif facts.complete:
        result.attempted = True
        matched: list[int] = []
        if facts.ro_number:
            async for order in _orders(ctx).filter(number__in=ro_variants(facts.ro_number))[:1]:
                ctx.orders[order.pk] = order
                state.verify(order.pk, RO_NUMBER)
                matched.append(order.pk)
        if facts.last_name and facts.vehicle:
            fits = [
                order
                async for order in _orders(ctx).filter(customer_last_name=facts.last_name.lower())[:200]
                if vehicle_fits(order, facts.vehicle)
            ]
            same_first = [o for o in fits if facts.first_name and _first_name(o) == facts.first_name.lower()]
            for order in same_first or fits:
                ctx.orders[order.pk] = order
                state.verify(order.pk, NAME_AND_VEHICLE)
                matched.append(order.pk)
        if not matched:
            result.failed = True
            state.failed_verifications += 1
        result.matched_ids = matched
    else:
        if not facts.last_name:
            result.missing.append("last_name")
        if not facts.vehicle:
            result.missing.append("vehicle")
    result.orders = await verified_orders(ctx)
    return result


@dataclass
class Selection:
    order: WorkOrder | None = None  # the one work order meant
    choices: list[WorkOrder] = field(default_factory=list)  # several fit: ask which
    no_fit: bool = False  # the caller named a vehicle none of their verified work orders has


def select(orders: list[WorkOrder], facts: Facts, *, focus_id: int | None = None) -> Selection:
    """Which of the caller's verified work orders they mean, from the RO, vehicle, body type or year.

    With no hint: the work order already being discussed, else the only open one (picked-up and
    cancelled orders are history), else the most recent closed one.
    """
    if not orders:
        return Selection()
    candidates = orders
    hinted = False
    if facts.ro_number:
        forms = set(ro_variants(facts.ro_number))
        by_ro = [o for o in orders if o.number in forms]
        if by_ro:
            return Selection(order=by_ro[0])
    if facts.vehicle:
        hinted = True
        candidates = [o for o in candidates if vehicle_fits(o, facts.vehicle)]
    if facts.body:
        from voice.nlu.vocab import common_vocabulary

        vocab = common_vocabulary()
        hinted = True
        candidates = [o for o in candidates if _body_of(o, vocab) == facts.body]
    if facts.year:
        hinted = True
        candidates = [o for o in candidates if o.vehicle_year == facts.year]
    if hinted and not candidates:
        return Selection(no_fit=True)
    if not hinted and focus_id is not None:
        focused = [o for o in candidates if o.pk == focus_id]
        if focused:
            return Selection(order=focused[0])
    if len(candidates) == 1:
        return Selection(order=candidates[0])
    open_orders = [o for o in candidates if o.status not in CLOSED_STATUSES]
    if len(open_orders) == 1:
        return Selection(order=open_orders[0])
    if not open_orders:
        return Selection(order=candidates[0])  # newest first
    return Selection(choices=open_orders)


def _body_of(order: WorkOrder, vocab: ShopVocabulary) -> str:
    vehicles = vocab.model(order.vehicle_model, fuzzy=False) if order.vehicle_model else []
    return vehicles[0].body if vehicles else ""


def may_list_vehicles(orders: list[WorkOrder], ctx: CallContext) -> bool:
    """Vehicles may be named back to the caller only if they are all the same customer's: verified by
    caller ID, or all on one phone number. (Two Smiths with Hondas must not hear about each other's.)"""
    if not orders:
        return False
    methods = {ctx.state.verified_by.get(str(o.pk)) for o in orders}
    if methods == {CALLER_ID}:
        return True
    phones = {o.customer_phone for o in orders}
    return len(phones) == 1 and "" not in phones
