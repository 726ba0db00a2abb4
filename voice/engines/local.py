"""The offline engine: deterministic rules over the shop's own data, no network.

Each turn: understand the utterance (voice.nlu) in the light of what was last asked, call the tools
the intent needs, and say the tools' facts in short sentences. Verification facts given over several
turns ("Smith" now, "the Civic" next) accumulate in the state until they verify or fail. Loop
prevention: three UNKNOWN turns in a row, or two failed verifications, and a person is offered; the
caller can ask for one at any time.
"""

from __future__ import annotations

from typing import Any

from voice.context import Awaiting, ConversationState
from voice.engines.base import EngineReply, EngineTurn
from voice.intents import Intent
from voice.nlu import Understanding, ashop_vocabulary, understand
from voice.replies import join_sentences, pick
from voice.tools import ToolResult

UNKNOWN_LIMIT = 3
FAILED_FACTS = "local.failed_facts"  # in state.scratch: the facts that last failed to verify
SERVICE_ASKED = "local.service_asked"  # in state.scratch: the caller's last question naming a service

ANYTHING_ELSE = (
    "Is there anything else I can help you with?",
    "Anything else I can help with?",
    "Can I help with anything else?",
)
NOT_UNDERSTOOD = (
    "Sorry, I didn't catch that. I can check on your vehicle, or tell you our hours, location or services.",
    "I'm sorry, I'm not sure I understood. I can help with the status of your car, our hours, directions or "
    "the services we offer.",
    "Sorry, could you say that another way? I can look up your car's status, or give you our hours, address "
    "or services.",
)
GREETING_REPLY = (
    "Hi! How can I help you today? I can check on your vehicle, or tell you our hours, location or services.",
    "Hello! What can I help you with? I can look up your car's status, or give you our hours, address or services.",
)
OFFER_AFTER_UNKNOWN = (
    "I'm sorry, I'm having trouble understanding. Would you like me to connect you with someone at the shop?"
)
REFUSE_BULK = (
    "I can only share a work order's details with its owner, one vehicle at a time. If you're calling about "
    "your own vehicle, I can check on it with the RO number, or the last name on the work order and the make "
    "or model."
)
DECLINED = ("No problem.", "Okay, no problem.", "Sure, no problem.")
NO_RO = (
    "No problem. The last name on the work order and the make or model of the vehicle will work too.",
    "That's okay. Can you give me the last name on the work order and the vehicle's make or model instead?",
)
GO_AHEAD = ("Sure, what can I help you with?", "Of course. What else can I do for you?")


class LocalEngine:
    name = "local"

    async def respond(self, turn: EngineTurn) -> EngineReply:
        ctx = turn.context
        state = ctx.state
        vocab = await ashop_vocabulary(ctx.shop.pk)
        u = understand(turn.text, vocab, awaiting=state.awaiting)
        reply = await _Turn(turn, u).run()
        if reply.intent != Intent.UNKNOWN:
            state.unknown_streak = 0
        if reply.intent not in (Intent.UNKNOWN, Intent.GOODBYE):
            state.topic = reply.intent
        best = max(u.scores.values(), default=0.0)
        reply.confidence = round(min(1.0, best / 5), 2) if reply.intent != Intent.UNKNOWN else 0.0
        return reply


class _Turn:
    """One turn's decisions (kept in one object so the steps can share what they found)."""

    def __init__(self, turn: EngineTurn, u: Understanding):
        self.turn = turn
        self.u = u
        self.state: ConversationState = turn.context.state
        self.seed = self.state.turn

    async def tool(self, name: str, **arguments: Any) -> ToolResult:
        return await self.turn.tools.run(name, {k: v for k, v in arguments.items() if v not in (None, "")})

    def anything_else(self) -> str:
        self.state.awaiting = Awaiting.ANYTHING_ELSE
        return pick(ANYTHING_ELSE, self.seed)

    def offer(self, reason: str) -> None:
        self.state.awaiting = Awaiting.TRANSFER_OFFER
        self.state.offer_reason = reason

    async def run(self) -> EngineReply:
        intent = self.u.intent
        if intent == Intent.TRANSFER_HUMAN:
            return await self.transfer()
        if intent == Intent.GOODBYE:
            return await self.goodbye()
        if intent == Intent.CHECK_STATUS:
            reply = await self.status()
            return await self.with_extras(reply)
        if intent in (Intent.GET_HOURS, Intent.GET_LOCATION, Intent.GET_SERVICES):
            text, offered = await self.public(intent)
            if Intent.CHECK_STATUS in self.u.also:
                status = await self.status()
                return EngineReply(join_sentences(text, status.text), intent, transfer=status.transfer)
            extra = await self.extras(exclude=intent)
            if offered:
                return EngineReply(join_sentences(text, extra), intent)
            return EngineReply(join_sentences(text, extra, self.anything_else()), intent)
        return await self.unknown()

    # -- intents ------------------------------------------------------------------------------
    async def transfer(self) -> EngineReply:
        result = await self.tool("transfer_to_human", reason=self.reason_for_transfer())
        if not result.ok:
            return EngineReply(join_sentences(result.speak, self.anything_else()), Intent.TRANSFER_HUMAN)
        return EngineReply(result.speak, Intent.TRANSFER_HUMAN, transfer=True)

    def reason_for_transfer(self) -> str:
        if self.state.awaiting == Awaiting.TRANSFER_OFFER and self.state.offer_reason:
            return f"accepted offer ({self.state.offer_reason})"
        return "caller asked for a person"

    async def goodbye(self) -> EngineReply:
        result = await self.tool("end_call", reason="caller said goodbye")
        return EngineReply(result.speak, Intent.GOODBYE, end=True)

    async def public(self, intent: Intent) -> tuple[str, bool]:
        u = self.u
        if intent == Intent.GET_HOURS:
            day = next((d for d in u.days if d != "today"), u.days[0] if u.days else "")
            time = u.time.strftime("%H:%M") if u.time else ""
            result = await self.tool("get_business_hours", day=day, time=time, question=u.hours_question)
        elif intent == Intent.GET_LOCATION:
            result = await self.tool("get_location")
        else:
            result = await self.tool("list_services", query=self.service_query())
        offered = bool(result.data.get("offer_transfer"))
        if offered:
            self.offer(intent.lower())
        return result.speak, offered

    def service_query(self) -> str:
        """The caller's words about a service; a follow-up ("how much is it?") keeps the service asked about."""
        scratch = self.state.scratch
        if self.u.services:
            scratch[SERVICE_ASKED] = self.turn.text
            return self.turn.text
        if scratch.get(SERVICE_ASKED) and self.state.topic == Intent.GET_SERVICES:
            return f"{scratch[SERVICE_ASKED]} {self.turn.text}"
        return self.turn.text

    async def extras(self, *, exclude: Intent) -> str:
        """Answer one more public question asked in the same breath ("...and what time do you close?")."""
        for intent in self.u.also:
            if intent != exclude and intent in (Intent.GET_HOURS, Intent.GET_LOCATION, Intent.GET_SERVICES):
                text, _ = await self.public(intent)
                return text
        return ""

    async def with_extras(self, reply: EngineReply) -> EngineReply:
        extra = await self.extras(exclude=Intent.CHECK_STATUS)
        if extra and not reply.transfer:
            reply.text = join_sentences(extra, reply.text)
        return reply

    async def status(self) -> EngineReply:
        u, state = self.u, self.state
        if u.injection and not u.has_identity:
            return await self.unknown()
        changed = self.remember_facts()
        pending = state.pending
        if not changed and u.dont_know and state.awaiting == Awaiting.VERIFICATION:
            if pending.get("last_name") and (pending.get("make") or pending.get("model")):
                self.offer("verification")
                return EngineReply(
                    "I'm sorry, I can't find it without those details. Would you like me to connect you with "
                    "someone at the shop?",
                    Intent.CHECK_STATUS,
                )
            state.awaiting = Awaiting.VERIFICATION
            return EngineReply(pick(NO_RO, self.seed), Intent.CHECK_STATUS)
        if not changed and pending and _signature(pending) == state.scratch.get(FAILED_FACTS):
            # The same facts already failed: ask again rather than count another failed try.
            state.awaiting = Awaiting.VERIFICATION
            return EngineReply(pick(NO_RO, self.seed), Intent.CHECK_STATUS)

        vehicle = " ".join(p for p in (pending.get("make", ""), pending.get("model", "")) if p)
        hint = vehicle or pending.get("body", "")
        year = pending.get("year", "")
        lookup = await self.tool(
            "lookup_work_order",
            ro_number=pending.get("ro", ""),
            last_name=" ".join(p for p in (pending.get("first_name", ""), pending.get("last_name", "")) if p),
            vehicle=" ".join(p for p in (year, hint) if p),
        )
        if not lookup.ok:
            if lookup.summary.endswith("(no match)"):
                pending.pop("ro", None)  # a wrong RO number is not worth trying again
                state.scratch[FAILED_FACTS] = _signature(pending)
            if lookup.data.get("offer_transfer"):
                self.offer("verification")
            else:
                state.awaiting = Awaiting.VERIFICATION
            return EngineReply(lookup.speak, Intent.CHECK_STATUS)

        orders = lookup.data.get("orders") or []
        ro = orders[0]["ro_number"] if len(orders) == 1 else pending.get("ro", "")
        result = await self.tool(
            "get_work_order_status", ro_number=ro, vehicle=" ".join(p for p in (year, hint) if p) if not ro else ""
        )
        state.pending = {}
        if result.data.get("choose"):
            state.awaiting = Awaiting.WHICH_VEHICLE
            return EngineReply(result.speak, Intent.CHECK_STATUS)
        if not result.ok:
            state.awaiting = Awaiting.VERIFICATION
            return EngineReply(result.speak, Intent.CHECK_STATUS)
        if result.data.get("offer_transfer"):
            self.offer("status")
            return EngineReply(result.speak, Intent.CHECK_STATUS)
        return EngineReply(join_sentences(result.speak, self.anything_else()), Intent.CHECK_STATUS)

    def remember_facts(self) -> bool:
        """Add this turn's identifying facts to what the caller said before; True if anything new."""
        u, pending = self.u, self.state.pending
        before = dict(pending)
        if u.ro_numbers:
            pending["ro"] = u.ro_numbers[0]
        if u.last_names:
            pending["last_name"] = u.last_names[-1]
            if u.first_name:
                pending["first_name"] = u.first_name
            else:
                pending.pop("first_name", None)
        models = u.models
        if models:
            pending["model"] = models[0].model
            pending["make"] = models[0].make
            pending.pop("body", None)
        elif u.makes:
            pending["make"] = u.makes[0]
            pending.pop("model", None)
            pending.pop("body", None)
        if u.bodies and not models:
            pending["body"] = u.bodies[0]
        if u.year:
            pending["year"] = str(u.year)
        return pending != before

    async def unknown(self) -> EngineReply:
        u, state = self.u, self.state
        awaiting = state.awaiting
        if awaiting == Awaiting.TRANSFER_OFFER and u.no:
            topic = Intent(state.topic) if state.topic else Intent.UNKNOWN
            state.offer_reason = ""
            text = pick(DECLINED, self.seed)
            if topic == Intent.CHECK_STATUS and not state.is_verified:
                text += " If you find the RO number, I can look it up."
            return EngineReply(join_sentences(text, self.anything_else()), topic)
        if awaiting == Awaiting.ANYTHING_ELSE and u.yes and len(u.words) <= 3:
            state.awaiting = Awaiting.NOTHING
            return EngineReply(pick(GO_AHEAD, self.seed), Intent.UNKNOWN)
        if u.greeting and not u.injection:
            state.awaiting = Awaiting.NOTHING
            return EngineReply(pick(GREETING_REPLY, self.seed), Intent.UNKNOWN)
        state.unknown_streak += 1
        if state.unknown_streak >= UNKNOWN_LIMIT:
            self.offer("unknown")
            return EngineReply(OFFER_AFTER_UNKNOWN, Intent.UNKNOWN)
        if u.injection:
            state.awaiting = Awaiting.NOTHING
            return EngineReply(REFUSE_BULK, Intent.UNKNOWN)
        if awaiting in (Awaiting.VERIFICATION, Awaiting.WHICH_VEHICLE):
            # Keep the question open: the caller may still answer it next.
            return EngineReply(
                join_sentences(pick(NOT_UNDERSTOOD, self.seed).split(". ")[0], _reask(awaiting)), Intent.UNKNOWN
            )
        state.awaiting = Awaiting.NOTHING
        return EngineReply(pick(NOT_UNDERSTOOD, self.seed), Intent.UNKNOWN)


def _signature(pending: dict[str, str]) -> str:
    return "|".join(f"{k}={pending[k]}" for k in sorted(pending))


def _reask(awaiting: str) -> str:
    if awaiting == Awaiting.WHICH_VEHICLE:
        return "Which vehicle are you asking about? The make and model, or the RO number, will do."
    return "To check on a vehicle, I need the RO number, or the last name on the work order and the make or model."
