"""The receptionist's tools: one registry for every engine.

Each tool is defined once — name, description, JSON-schema parameters and an async handler — and
the OpenAI Chat Completions tool list, the Realtime session tool list and the offline engine's
dispatch are all derived from that definition.

Handlers receive the session's `CallContext` (shop, caller number, verification state) and the
model's arguments; the shop and the caller never come from arguments. They return small, speakable
results: a sentence to say (`speak`) plus the facts behind it. Privacy is enforced here, not in the
engines: status and vehicle details come only from work orders the caller is verified for, and no
tool lists work orders to a caller.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError

from shops import hours as shop_hours
from shops.hours import aschedule_for
from shops.models import Service, WorkOrder
from voice import business
from voice.context import Awaiting, CallContext
from voice.nlu.understand import vehicles_in
from voice.nlu.vocab import Vehicle, ashop_vocabulary
from voice.replies import (
    CLOSED_STATUSES,
    STATUS_PHRASES,
    join_sentences,
    join_words,
    note_excerpt,
    spoken_ro,
    vehicle_name,
)
from voice.verification import (
    MAX_FAILED,
    OFFER_TRANSFER_AFTER,
    Facts,
    may_list_vehicles,
    ro_variants,
    select,
    verified_orders,
    verify,
)

logger = logging.getLogger(__name__)

MAX_ARGUMENT_CHARS = 200
# A tool still running after this long is given up (the model is told it failed and says so): by then
# the caller has heard the filler, and waiting on would leave them in silence (a tool reads the shop's
# own database, normally in milliseconds; a locked table or a stalled connection must not hold the call).
TOOL_TIMEOUT_SECONDS = 4.0


@dataclass
class ToolResult:
    ok: bool
    speak: str = ""  # what to say, if the engine wants the tool's own words
    data: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line for the call record (ToolCall.result_summary)

    def for_model(self) -> str:
        """The JSON a model sees as the tool's output."""
        return json.dumps({"ok": self.ok, "speak": self.speak, **self.data}, default=str)


Handler = Callable[[CallContext, dict[str, Any]], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: Handler

    def chat_completions(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def realtime(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    ok: bool
    summary: str
    latency_ms: int
    result: ToolResult


class ToolRegistry:
    def __init__(self, tools: list[Tool]):
        self._tools = {t.name: t for t in tools}

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def chat_completions_tools(self) -> list[dict[str, Any]]:
        """`tools=` for Chat Completions: [{"type": "function", "function": {name, description, parameters}}]."""
        return [t.chat_completions() for t in self._tools.values()]

    def realtime_tools(self) -> list[dict[str, Any]]:
        """`session.tools` for the Realtime API: [{"type": "function", "name", "description", "parameters"}]."""
        return [t.realtime() for t in self._tools.values()]

    def runner(self, ctx: CallContext) -> ToolRunner:
        return ToolRunner(self, ctx)


class ToolRunner:
    """Runs tools for one call and keeps a record of every call (for CallLog.tool_calls)."""

    def __init__(self, registry: ToolRegistry, ctx: CallContext):
        self.registry = registry
        self.ctx = ctx
        self.calls: list[ToolCallRecord] = []

    async def run(self, name: str, arguments: dict[str, Any] | str | None = None) -> ToolResult:
        """Run tool `name` with the model's arguments (a dict or a JSON string). Never raises."""
        started = time.perf_counter()
        args = _clean_arguments(self.registry.get(name), arguments)
        tool = self.registry.get(name)
        if tool is None:
            result = ToolResult(ok=False, data={"error": f"unknown tool {name!r}"}, summary="unknown tool")
        elif args is None:
            result = ToolResult(ok=False, data={"error": "arguments must be a JSON object"}, summary="bad arguments")
            args = {}
        else:
            try:
                async with asyncio.timeout(TOOL_TIMEOUT_SECONDS):
                    result = await tool.handler(self.ctx, args)
            except TimeoutError:
                logger.warning(
                    "tool %s gave no answer within %g s (call %s)", name, TOOL_TIMEOUT_SECONDS, self.ctx.call_id
                )
                result = ToolResult(ok=False, data={"error": "the tool took too long"}, summary="timeout")
            except Exception:
                logger.exception("tool %s failed (call %s)", name, self.ctx.call_id)
                result = ToolResult(ok=False, data={"error": "the tool failed"}, summary="error")
        latency = round((time.perf_counter() - started) * 1000)
        self.calls.append(ToolCallRecord(name, args or {}, result.ok, result.summary or result.speak, latency, result))
        return result

    def take(self) -> list[ToolCallRecord]:
        """The calls made since the last take (one turn's worth)."""
        calls, self.calls = self.calls, []
        return calls


def _clean_arguments(tool: Tool | None, arguments: dict[str, Any] | str | None) -> dict[str, Any] | None:
    """Arguments as the schema declares them: known keys only, strings trimmed and capped."""
    if arguments is None or arguments == "":
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    allowed = set((tool.parameters.get("properties") or {}) if tool else arguments)
    clean: dict[str, Any] = {}
    for key, value in arguments.items():
        if key not in allowed or value is None:
            continue
        if isinstance(value, str):
            value = value.strip()[:MAX_ARGUMENT_CHARS]
            if not value:
                continue
        elif not isinstance(value, (int, float, bool)):
            continue
        clean[key] = value
    return clean


# ---------------------------------------------------------------------------------------------
# Work orders (private: verification first)
# ---------------------------------------------------------------------------------------------
NEED_BOTH = (
    "I can check on that. What's the last name on the work order, and the make or model of the vehicle? "
    "Or you can give me the RO number."
)
NEED_VEHICLE = "Thanks. And what's the make or model of the vehicle?"
NEED_NAME = "Got it. And what's the last name on the work order?"
NO_MATCH = (
    "I'm sorry, I couldn't match that. Could you double-check the RO number, or give me the last name "
    "on the work order and the make or model?"
)
NO_MATCH_OFFER = (
    "I'm sorry, I still can't match that. Would you like me to connect you with someone at the shop who can help?"
)
LOCKED = "I'm not able to look that up on this call. Would you like me to connect you with someone at the shop?"


async def _facts(ctx: CallContext, args: dict[str, Any]) -> Facts:
    facts = Facts(ro_number=str(args.get("ro_number", "")), last_name=str(args.get("last_name", "")).lower())
    vehicle_text = str(args.get("vehicle", ""))
    if vehicle_text:
        vocab = await ashop_vocabulary(ctx.shop.pk)
        found = vehicles_in(vehicle_text, vocab)
        models = [v for v in found.vehicles if v.model]
        makes = [v for v in found.vehicles if not v.model]
        if models:
            facts.vehicle = models[0]
        elif makes:
            facts.vehicle = makes[0]
        elif not found.bodies and not found.year:
            # Not a make or model we know: compare it as written against the work order's model.
            facts.vehicle = Vehicle("", vehicle_text, "")
        facts.body = found.bodies[0] if found.bodies else ""
        facts.year = found.year
    name_words = facts.last_name.replace(",", " ").split()
    if len(name_words) > 1:  # "John Smith" → first "john", last "smith"
        facts.first_name, facts.last_name = name_words[0], name_words[-1]
    return facts


async def _schedule(ctx: CallContext) -> shop_hours.Schedule:
    if ctx.schedule is None:
        ctx.schedule = await aschedule_for(ctx.shop, today=ctx.shop.local_now(ctx.now()).date())
    return ctx.schedule


def _order_brief(order: WorkOrder) -> dict[str, Any]:
    return {
        "ro_number": order.number,
        "vehicle": order.vehicle,
        "open": order.status not in CLOSED_STATUSES,
    }


def _verification_speak(ctx: CallContext, v: Any, facts: Facts) -> tuple[str, bool]:
    """What to say when the caller is not verified for what they asked; and whether a transfer is offered."""
    failed = ctx.state.failed_verifications
    if v.locked or failed >= MAX_FAILED:
        return LOCKED, True
    if v.failed:
        return (NO_MATCH_OFFER, True) if failed >= OFFER_TRANSFER_AFTER else (NO_MATCH, False)
    if facts.last_name and not facts.vehicle:
        return NEED_VEHICLE, False
    if facts.vehicle and not facts.last_name:
        return NEED_NAME, False
    return NEED_BOTH, False


async def lookup_work_order(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    facts = await _facts(ctx, args)
    v = await verify(ctx, facts)
    if v.matched_ids:
        relevant = [o for o in v.orders if o.pk in v.matched_ids]
    elif v.orders and not (v.failed or v.locked):
        # Already verified (caller ID, or earlier in the call); a vehicle hint narrows the choice.
        relevant = v.orders
        if facts.vehicle or facts.body or facts.year:
            chosen = select(v.orders, facts)
            relevant = [chosen.order] if chosen.order else chosen.choices
    else:
        relevant = []
    if not relevant:
        speak, offer = _verification_speak(ctx, v, facts)
        return ToolResult(
            ok=False,
            speak=speak,
            data={
                "verified": False,
                "need": v.missing or ["ro_number", "last_name", "vehicle"],
                "failed_attempts": ctx.state.failed_verifications,
                "offer_transfer": offer,
            },
            summary="not verified" + (" (no match)" if v.failed else ""),
        )
    listable = may_list_vehicles(relevant, ctx)
    orders = [_order_brief(o) for o in relevant] if listable or len(relevant) == 1 else []
    if len(relevant) == 1:
        ctx.state.focus_id = relevant[0].pk
    return ToolResult(
        ok=True,
        data={"verified": True, "count": len(relevant), "orders": orders},
        summary=f"verified: {len(relevant)} work order(s)",
    )


def _status_speak(order: WorkOrder, ctx: CallContext, ready_hours: str) -> tuple[str, bool]:
    """The status sentence for a verified caller, and whether to offer a transfer."""
    vehicle = vehicle_name(order)
    status = order.status
    now = ctx.now()
    tz = ctx.shop.tz
    if status == WorkOrder.Status.PICKED_UP:
        return f"Our records show your {vehicle} has already been picked up.", False
    if status == WorkOrder.Status.CANCELLED:
        return (
            f"The work order for your {vehicle} was cancelled. If that doesn't sound right, I can connect you "
            "with the team.",
            True,
        )
    parts = [f"Your {vehicle} is {STATUS_PHRASES.get(status, order.get_status_display().lower())}"]
    note = note_excerpt(order.status_note)
    if note:
        parts.append(f"The note on it says: {note}")
    offer = False
    if status == WorkOrder.Status.READY_FOR_PICKUP:
        if ready_hours:
            parts.append(ready_hours)
    elif order.promised_at:
        promised = order.promised_at.astimezone(tz)
        day = shop_hours.relative_day(promised.date(), now.astimezone(tz).date())
        said = f"{day} at {shop_hours.format_time(promised)}"
        if promised >= now:
            parts.append(f"The work order has it promised for {said}")
        else:
            parts.append(
                f"It was promised for {said}, so I'd like the team to give you an update. Want me to connect you"
            )
            offer = True
    if status == WorkOrder.Status.AWAITING_APPROVAL and not offer:
        parts.append("Would you like me to connect you with the service advisor to go over it")
        offer = True
    return join_sentences(*parts), offer


async def _pickup_hours(ctx: CallContext) -> str:
    schedule = await _schedule(ctx)
    now = ctx.now()
    status = shop_hours.open_status(schedule, now)
    if status.open_now and status.closes_at:
        return f"We're open until {shop_hours.format_time(status.closes_at.astimezone(schedule.tz))} today"
    if status.next_open:
        local = status.next_open.astimezone(schedule.tz)
        day = shop_hours.relative_day(local.date(), now.astimezone(schedule.tz).date())
        return f"We're closed right now; you can pick it up {day} from {shop_hours.format_time(local)}"
    return ""


async def get_work_order_status(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    facts = await _facts(ctx, args)
    orders = await verified_orders(ctx)
    if facts.ro_number and not {o.number for o in orders} & set(ro_variants(facts.ro_number)):
        v = await verify(ctx, Facts(ro_number=facts.ro_number))
        orders = v.orders
        if v.failed or v.locked:
            speak, offer = _verification_speak(ctx, v, facts)
            return ToolResult(
                ok=False,
                speak=speak,
                data={"verified": False, "offer_transfer": offer, "failed_attempts": ctx.state.failed_verifications},
                summary="not verified (no match)",
            )
    if not orders:
        return ToolResult(
            ok=False,
            speak=NEED_BOTH,
            data={"verified": False, "need": ["ro_number", "last_name", "vehicle"]},
            summary="not verified",
        )
    chosen = select(orders, facts, focus_id=ctx.state.focus_id)
    if chosen.no_fit:
        speak = (
            "I don't see that vehicle on the work orders I can discuss with you. What's the last name on that "
            "work order, or its RO number?"
        )
        return ToolResult(ok=False, speak=speak, data={"verified": True, "no_fit": True}, summary="no verified fit")
    if chosen.order is None:
        listable = may_list_vehicles(chosen.choices, ctx)
        if listable and len(chosen.choices) <= 3:
            names = [f"the {vehicle_name(o)}" for o in chosen.choices]
            speak = f"I see more than one vehicle. Is it {join_words(names, 'or')}?"
            vehicles = [o.vehicle for o in chosen.choices]
        else:
            speak = "To make sure I have the right one, what's the model of the vehicle, or the RO number?"
            vehicles = []
        ctx.state.awaiting = Awaiting.WHICH_VEHICLE
        return ToolResult(
            ok=True,
            speak=speak,
            data={"verified": True, "choose": True, "vehicles": vehicles},
            summary="which vehicle?",
        )
    order = chosen.order
    ctx.state.focus_id = order.pk
    ready_hours = await _pickup_hours(ctx) if order.status == WorkOrder.Status.READY_FOR_PICKUP else ""
    speak, offer = _status_speak(order, ctx, ready_hours)
    return ToolResult(
        ok=True,
        speak=speak,
        data={
            "verified": True,
            "ro_number": order.number,
            "ro_spoken": spoken_ro(order.number),
            "vehicle": order.vehicle,
            "status": order.status,
            "status_label": order.get_status_display(),
            "status_note": note_excerpt(order.status_note),
            "services": order.services,
            "promised_at": order.promised_at.isoformat() if order.promised_at else None,
            "offer_transfer": offer,
        },
        summary=f"RO {order.number}: {order.status}",
    )


async def get_customer_vehicles(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    orders = await verified_orders(ctx)
    if not orders:
        return ToolResult(ok=False, speak=NEED_BOTH, data={"verified": False}, summary="not verified")
    if not may_list_vehicles(orders, ctx):
        return ToolResult(
            ok=True,
            speak="Which vehicle are you calling about? The make and model, or the RO number, will do.",
            data={"verified": True, "vehicles": []},
            summary="vehicles not listable",
        )
    vehicles = list(dict.fromkeys(vehicle_name(o) for o in orders))
    return ToolResult(
        ok=True,
        speak=f"I see {join_words(['the ' + v for v in vehicles[:4]])}.",
        data={"verified": True, "vehicles": [_order_brief(o) for o in orders[:10]]},
        summary=f"{len(vehicles)} vehicle(s)",
    )


# ---------------------------------------------------------------------------------------------
# Public facts
# ---------------------------------------------------------------------------------------------
def _parse_time(value: Any) -> dt.time | None:
    if not value:
        return None
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        return None


async def get_business_hours(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    schedule = await _schedule(ctx)
    answer = business.hours_answer(
        schedule,
        ctx.now(),
        day=str(args.get("day", "")),
        time=_parse_time(args.get("time")),
        question=str(args.get("question", "")),
    )
    return ToolResult(ok=True, speak=answer.speak, data={**answer.data, "offer_transfer": answer.offer_transfer})


async def get_location(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    shop = ctx.shop
    answer = business.location_answer(shop.name, shop.address, shop.directions_note)
    return ToolResult(
        ok=bool(shop.address), speak=answer.speak, data={**answer.data, "offer_transfer": answer.offer_transfer}
    )


async def list_services(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    services = [
        s async for s in Service.objects.filter(shop_id=ctx.shop.pk).values_list("name", "price_note", "duration_note")
    ]
    answer = business.services_answer(services, str(args.get("query", "")))
    return ToolResult(
        ok=bool(services),
        speak=answer.speak,
        data={**answer.data, "offer_transfer": answer.offer_transfer},
        summary=f"{len(answer.data.get('matches', []))} match(es)" if args.get("query") else "all services",
    )


# ---------------------------------------------------------------------------------------------
# Call control
# ---------------------------------------------------------------------------------------------
async def transfer_to_human(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    shop = ctx.shop
    if not shop.transfer_number:
        return ToolResult(
            ok=False,
            speak="I'm sorry, I can't transfer you right now. Please call back during business hours.",
            data={"transferred": False},
            summary="no transfer number",
        )
    ctx.state.transferred = True
    ctx.state.awaiting = Awaiting.NOTHING
    try:
        schedule = await _schedule(ctx)
    except DatabaseError:  # putting a caller through must not depend on the database (it may be down)
        logger.warning("transfer on call %s without the shop's hours", ctx.call_id, exc_info=True)
        closed = False
    else:
        closed = not shop_hours.is_open(schedule, ctx.now()) and schedule.has_hours
    speak = "Sure, let me connect you with someone at the shop."
    if closed:
        speak += " We're closed right now, so you may reach voicemail."
    return ToolResult(
        ok=True,
        speak=speak,
        data={"transferred": True, "number": shop.transfer_number, "shop_open": not closed},
        summary=f"transfer ({args.get('reason', 'caller asked')})",
    )


async def end_call(ctx: CallContext, args: dict[str, Any]) -> ToolResult:
    ctx.state.ended = True
    ctx.state.awaiting = Awaiting.NOTHING
    return ToolResult(
        ok=True,
        speak=f"Thanks for calling {ctx.shop.name}. Have a great day!",
        data={"ended": True},
        summary="ended",
    )


_STRING = {"type": "string"}

REGISTRY = ToolRegistry(
    [
        Tool(
            "lookup_work_order",
            "Verify the caller and find their work order. Pass only what the caller said: the RO (repair order) "
            "number, or the customer's last name together with the vehicle's make or model. The caller's phone "
            "number is checked automatically. Returns only work orders this caller is verified for; if not "
            "verified, `speak` says what to ask for. Never guess or invent these values.",
            {
                "type": "object",
                "properties": {
                    "ro_number": {**_STRING, "description": "The RO number as the caller gave it, digits only."},
                    "last_name": {
                        **_STRING,
                        "description": "The customer's last name (or full name) as the caller gave it.",
                    },
                    "vehicle": {
                        **_STRING,
                        "description": "Make and/or model as the caller said it, e.g. 'Honda Civic'.",
                    },
                },
                "additionalProperties": False,
            },
            lookup_work_order,
        ),
        Tool(
            "get_work_order_status",
            "The status of a work order the caller is verified for (call lookup_work_order first). Optional hints "
            "pick one when the caller has several: the RO number or the vehicle. Returns `speak`, a sentence to "
            "read as is; it may ask which vehicle.",
            {
                "type": "object",
                "properties": {
                    "ro_number": {**_STRING, "description": "RO number of one of the caller's verified work orders."},
                    "vehicle": {
                        **_STRING,
                        "description": "Make, model or body type the caller used, e.g. 'the truck'.",
                    },
                },
                "additionalProperties": False,
            },
            get_work_order_status,
        ),
        Tool(
            "get_business_hours",
            "The shop's opening hours from its weekly hours, closed dates and time zone: open now, closing time "
            "today, next opening, a given day or time, holiday closures.",
            {
                "type": "object",
                "properties": {
                    "day": {
                        **_STRING,
                        "description": "today, tomorrow, a weekday name, weekend, weekdays, holiday, or YYYY-MM-DD.",
                    },
                    "time": {
                        **_STRING,
                        "description": "A time of day as HH:MM (24h), to ask if the shop is open then.",
                    },
                    "question": {
                        "type": "string",
                        "enum": ["open_now", "closing", "opening", "day", "week", "holiday"],
                        "description": "What the caller wants to know.",
                    },
                },
                "additionalProperties": False,
            },
            get_business_hours,
        ),
        Tool(
            "get_location",
            "The shop's address and a one-line direction note.",
            {"type": "object", "properties": {}, "additionalProperties": False},
            get_location,
        ),
        Tool(
            "list_services",
            "The shop's services. With a query (what the caller asked about, e.g. 'alignment', 'how much is an oil "
            "change'), says whether the shop does it and names the closest services; prices and durations only "
            "as the shop wrote them.",
            {
                "type": "object",
                "properties": {"query": {**_STRING, "description": "The caller's words about the service."}},
                "additionalProperties": False,
            },
            list_services,
        ),
        Tool(
            "get_customer_vehicles",
            "The vehicles on the verified caller's own work orders, to ask which one they mean.",
            {"type": "object", "properties": {}, "additionalProperties": False},
            get_customer_vehicles,
        ),
        Tool(
            "transfer_to_human",
            "Transfer the call to a person at the shop. Use when the caller asks for a person, or accepts an "
            "offer of one.",
            {
                "type": "object",
                "properties": {"reason": {**_STRING, "description": "Why, in a few words."}},
                "additionalProperties": False,
            },
            transfer_to_human,
        ),
        Tool(
            "end_call",
            "End the call politely when the caller says goodbye or has nothing else.",
            {
                "type": "object",
                "properties": {"reason": {**_STRING, "description": "Why, in a few words."}},
                "additionalProperties": False,
            },
            end_call,
        ),
    ]
)
