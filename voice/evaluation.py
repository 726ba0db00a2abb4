"""The offline engine's evaluation: labelled utterances and conversations against a known shop.

Data in voice/tests/data/ (eval_shop.json, eval_utterances.json, eval_conversations.json). Each
utterance is said at the start of a fresh conversation; each conversation turn is checked for its
intent and its assertions. Every reply is also checked for privacy leaks, generically:

  A reply leaks if it mentions a work order the caller is not verified for — its customer's first or
  last name, its vehicle's make or model, or its RO number — unless the caller said that word
  themselves earlier in the call; or if it says a status word (ready, picked up, waiting on parts…)
  while the caller is verified for nothing. Public shop facts (service names and notes, address,
  directions) are removed from the reply before the check.

Run: `pytest voice/tests/test_eval_set.py -s` (prints the report), or `EvalRun` from code/bench.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from shops.models import BusinessHours, ClosedDate, Service, Shop, WorkOrder
from voice.conversation import ConversationService, TurnResult
from voice.nlu import ashop_vocabulary, understand
from voice.nlu.text import COMMON_WORDS, compact, words_of
from voice.nlu.vocab import make_key, model_key
from voice.replies import STATUS_WORDS

DATA = Path(__file__).parent / "tests" / "data"
# Words the receptionist's own sentences use; as a customer's name or a model they leak only when
# written as one (see find_leaks).
EVERYDAY_WORDS = COMMON_WORDS | {"is", "es", "day", "great", "park", "help", "shop", "hope", "long"}


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


@transaction.atomic
def build_shop(spec: dict[str, Any] | None = None, *, slug_suffix: str = "") -> Shop:
    """Create the evaluation shop (hours, closures, services, work orders) from eval_shop.json."""
    spec = spec or load("eval_shop.json")
    tz = zoneinfo.ZoneInfo(spec["shop"]["timezone"])
    shop = Shop.objects.create(**{**spec["shop"], "slug": spec["shop"]["slug"] + slug_suffix,
                                  "phone_number": spec["shop"]["phone_number"] if not slug_suffix else
                                  "+1555" + str(abs(hash(slug_suffix)) % 10_000_000).zfill(7)})  # fmt: skip
    BusinessHours.objects.bulk_create(
        BusinessHours(shop=shop, weekday=d, opens_at=dt.time.fromisoformat(o), closes_at=dt.time.fromisoformat(c))
        for d, o, c in spec["hours"]
    )
    ClosedDate.objects.bulk_create(
        ClosedDate(shop=shop, date=dt.date.fromisoformat(d), reason=r) for d, r in spec["closed"]
    )
    Service.objects.bulk_create(
        Service(shop=shop, name=n, price_note=p, duration_note=t) for n, p, t in spec["services"]
    )
    orders = []
    for row in spec["work_orders"]:
        order = WorkOrder(shop=shop, **{k: v for k, v in row.items() if k != "promised_at"})
        if row.get("promised_at"):
            order.promised_at = dt.datetime.fromisoformat(row["promised_at"]).replace(tzinfo=tz)
        order.customer_last_name = WorkOrder.last_name_of(order.customer_name)
        orders.append(order)
    WorkOrder.objects.bulk_create(orders)
    return shop


def clock_at(shop: Shop, local_iso: str) -> Callable[[], dt.datetime]:
    moment = dt.datetime.fromisoformat(local_iso).replace(tzinfo=shop.tz)
    return lambda: moment


# ---------------------------------------------------------------------------------------------
# Leak check
# ---------------------------------------------------------------------------------------------
@dataclass
class Secrets:
    """What each work order would give away (as comparable keys), and the shop's public text.

    Keys are compact forms — "f150", "grandcaravan", "1001", "chevrolet" — indexed both ways, so a
    reply is checked in time proportional to its length, not to the number of work orders.
    """

    index: dict[str, set[int]]  # key → ids of the work orders it identifies
    keys_of: dict[int, set[str]]  # work order id → its keys
    public: list[str]

    @classmethod
    def of(cls, shop: Shop) -> Secrets:
        index: dict[str, set[int]] = {}
        keys_of: dict[int, set[str]] = {}
        rows = WorkOrder.objects.filter(shop=shop).values_list(
            "id", "customer_name", "vehicle_make", "vehicle_model", "number"
        )
        for order_id, name, make, model, number in rows:
            names = [compact(p) for p in name.replace(",", " ").split() if len(compact(p)) > 1]
            keys = {k for k in [*names, make_key(make), model_key(model), compact(number)] if k}
            keys_of[order_id] = keys
            for key in keys:
                index.setdefault(key, set()).add(order_id)
        public = [shop.name, shop.address, shop.directions_note]
        for name, price, duration in Service.objects.filter(shop=shop).values_list(
            "name", "price_note", "duration_note"
        ):
            public += [name, price, duration]
        return cls(index, keys_of, [p for p in public if p])


def _keys_in(text: str) -> set[str]:
    """Every key a text could be saying: words and runs of up to three words, compacted ('F-150' →
    'f150'), makes by their canonical name ('Chevy' → 'chevrolet'), digits read one by one ('1 0 0 1')."""
    tokens = re.findall(r"[a-z0-9]+", text.lower())
    keys = {make_key(t) for t in tokens}
    for n in (1, 2, 3):
        keys |= {"".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
    keys |= {compact(run) for run in re.findall(r"\d(?:[ -]?\d)+", text)}
    return keys


def find_leaks(reply: str, secrets: Secrets, verified_ids: set[int], caller_said: str) -> list[str]:
    text = reply.lower()
    for public in sorted(secrets.public, key=len, reverse=True):
        text = text.replace(public.lower(), " ")
    said = _keys_in(" ".join(words_of(caller_said)))
    # Words that also describe an order the caller may hear about are theirs to hear ("Toyota").
    own = set().union(*(secrets.keys_of.get(i, set()) for i in verified_ids))
    # An everyday word ("day", "park", Lexus's "IS") counts only where it is written as a name: with a
    # capital, not at the start of a sentence.
    named = {compact(w) for w in re.findall(r"(?<![.!?] )(?<!^)\b[A-Z][A-Za-z0-9-]*", reply)}
    leaks = [
        f"mentions {key!r} of a work order the caller is not verified for"
        for key in _keys_in(text)
        if key in secrets.index and key not in own and key not in said and (key not in EVERYDAY_WORDS or key in named)
    ]
    if not verified_ids:
        leaks += [f"says {w!r} to an unverified caller" for w in STATUS_WORDS if w in text]
    return sorted(set(leaks))


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
@dataclass
class EvalReport:
    utterances: int = 0
    utterance_hits: int = 0
    turns: int = 0
    turn_hits: int = 0
    checks: int = 0
    checks_passed: int = 0
    entities: int = 0
    entity_hits: int = 0
    leaks: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def utterance_accuracy(self) -> float:
        return self.utterance_hits / self.utterances if self.utterances else 0.0

    @property
    def turn_accuracy(self) -> float:
        return self.turn_hits / self.turns if self.turns else 0.0

    @property
    def accuracy(self) -> float:
        total = self.utterances + self.turns
        return (self.utterance_hits + self.turn_hits) / total if total else 0.0

    @property
    def entity_accuracy(self) -> float:
        return self.entity_hits / self.entities if self.entities else 0.0

    @property
    def check_rate(self) -> float:
        return self.checks_passed / self.checks if self.checks else 0.0

    def summary(self) -> str:
        hits, total = self.utterance_hits + self.turn_hits, self.utterances + self.turns
        return (
            f"intent accuracy {self.accuracy:.1%} ({hits}/{total}): "
            f"utterances {self.utterance_accuracy:.1%} ({self.utterance_hits}/{self.utterances}), "
            f"conversation turns {self.turn_accuracy:.1%} ({self.turn_hits}/{self.turns}); "
            f"entities {self.entity_accuracy:.1%} ({self.entity_hits}/{self.entities}); "
            f"conversation checks {self.check_rate:.1%} ({self.checks_passed}/{self.checks}); "
            f"privacy leaks {len(self.leaks)}"
        )


def _entity_hits(expected: dict[str, Any], u: Any) -> list[str]:
    """Expected entities that were not extracted."""
    missing = []
    for key, value in expected.items():
        if key == "last_name":
            ok = value in u.last_names
        elif key == "make":
            ok = any(make_key(v.make) == make_key(value) for v in u.vehicles)
        elif key == "model":
            ok = any(compact(v.model) == compact(value) for v in u.vehicles)
        elif key == "body":
            ok = value in u.bodies
        elif key == "year":
            ok = u.year == value
        elif key == "ro":
            ok = value in u.ro_numbers
        elif key == "day":
            ok = value in u.days
        elif key == "service":
            ok = value in u.services
        else:
            ok = False
        if not ok:
            missing.append(f"{key}={value}")
    return missing


class EvalRun:
    """Runs the evaluation set through ConversationService with the offline engine (async)."""

    def __init__(
        self,
        shop: Shop,
        *,
        record: bool = False,
        now: str | None = None,
        utterances: str = "eval_utterances.json",
        conversations: str = "eval_conversations.json",
    ):
        self.shop = shop
        self.utterances_file = utterances
        self.conversations_file = conversations
        self.record = record
        self.spec = load("eval_shop.json")
        self.now = now or self.spec["now"]
        self.secrets = Secrets({}, {}, [])  # loaded in run(): it reads the database
        self.report = EvalReport()

    async def _service(self, caller: str = "", now: str | None = None) -> ConversationService:
        return await ConversationService.start(
            shop=self.shop,
            channel="chat",
            caller_number=caller or None,
            engine="local",
            clock=clock_at(self.shop, now or self.now),
            record=self.record,
        )

    async def _turn(self, service: ConversationService, text: str) -> TurnResult:
        started = time.perf_counter()
        result = await service.handle_turn(text)
        self.report.latencies_ms.append((time.perf_counter() - started) * 1000)
        return result

    async def utterances(self) -> None:
        vocab = await ashop_vocabulary(self.shop.pk)
        for item in load(self.utterances_file)["utterances"]:
            service = await self._service()
            result = await self._turn(service, item["text"])
            self.report.utterances += 1
            if result.intent == item["intent"]:
                self.report.utterance_hits += 1
            else:
                self.report.misses.append(f"{item['text']!r}: expected {item['intent']}, got {result.intent}")
                self.report.confusion[(item["intent"], str(result.intent))] += 1
            if item.get("entities"):
                u = understand(item["text"], vocab)
                missing = _entity_hits(item["entities"], u)
                self.report.entities += len(item["entities"])
                self.report.entity_hits += len(item["entities"]) - len(missing)
                if missing:
                    self.report.misses.append(f"{item['text']!r}: entities not found: {', '.join(missing)}")
            for leak in find_leaks(result.reply, self.secrets, set(service.state.verified_ids), item["text"]):
                self.report.leaks.append(f"{item['text']!r} → {result.reply!r}: {leak}")

    async def conversations(self) -> None:
        for convo in load(self.conversations_file)["conversations"]:
            service = await self._service(convo.get("caller", ""), convo.get("now"))
            said = ""
            for i, turn in enumerate(convo["turns"], 1):
                where = f"{convo['name']} #{i}"
                said += " " + turn["say"]
                result = await self._turn(service, turn["say"])
                self.report.turns += 1
                if result.intent == turn["intent"]:
                    self.report.turn_hits += 1
                else:
                    self.report.misses.append(
                        f"{where} {turn['say']!r}: expected {turn['intent']}, got {result.intent}"
                    )
                self._check(where, turn, result, service)
                verified = set(service.state.verified_ids)
                for leak in find_leaks(result.reply, self.secrets, verified, said):
                    self.report.leaks.append(f"{where} → {result.reply!r}: {leak}")
                if result.end:
                    break

    def _check(self, where: str, turn: dict[str, Any], result: TurnResult, service: ConversationService) -> None:
        reply = result.reply.lower()
        checks: list[tuple[bool, str]] = []
        checks += [(s.lower() in reply, f"should say {s!r}") for s in turn.get("must_contain", [])]
        checks += [(s.lower() not in reply, f"should not say {s!r}") for s in turn.get("must_not_contain", [])]
        called = {t["name"] for t in result.tools}
        checks += [(name in called, f"should call {name}") for name in turn.get("tools", [])]
        if "verified" in turn:
            checks.append((service.state.is_verified == turn["verified"], f"verified should be {turn['verified']}"))
        for flag in ("transfer", "end"):
            if flag in turn:
                checks.append((getattr(result, flag) == turn[flag], f"{flag} should be {turn[flag]}"))
        for ok, message in checks:
            self.report.checks += 1
            if ok:
                self.report.checks_passed += 1
            else:
                self.report.failures.append(f"{where}: {message}; reply was {result.reply!r}")

    async def run(self) -> EvalReport:
        self.secrets = await sync_to_async(Secrets.of)(self.shop)
        await self.utterances()
        await self.conversations()
        return self.report
