"""What callers say to a repair shop: text normalisation (numbers and abbreviations spelled out as
spoken), sentence templates, and the shop's own vocabulary that fills them."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shops.models import Shop

MODEL_VERSION = 2  # bump when the corpus or the builder changes: cached models are then rebuilt


# -- text normalisation -------------------------------------------------------------------------

ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
DIGITS = ONES[:10]


def number_words(n: int) -> str:
    """0–9999 as spoken: 42 → "forty two", 150 → "one fifty", 2018 → "twenty eighteen", 2005 → "two
    thousand five" (how people say model numbers and years)."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        if rest == 0:
            return ONES[n // 100] + " hundred"
        return ONES[n // 100] + " " + (number_words(rest) if rest >= 10 else "oh " + ONES[rest])
    if 2000 <= n <= 2009:
        return "two thousand" + ("" if n == 2000 else " " + ONES[n % 10])
    high, low = divmod(n, 100)
    if low == 0:
        return number_words(high) + " hundred"
    return number_words(high) + " " + (number_words(low) if low >= 10 else "oh " + ONES[low])


def digits_words(digits: str, *, zero: str = "zero") -> str:
    """Digit by digit, as RO and phone numbers are read: "4072" → "four zero seven two"."""
    return " ".join(zero if d == "0" else DIGITS[int(d)] for d in digits if d.isdigit())


_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*|\d+", re.IGNORECASE)


def normalize_text(text: str) -> list[str]:
    """Text → the lower-case words a caller would say: numbers spelled out ("RAV4" → "rav four", "F-150" →
    "f one fifty"), all-consonant abbreviations spelled letter by letter ("BMW" → "b m w"), punctuation
    dropped."""
    words: list[str] = []
    for raw in re.split(r"[\s\-/]+", text.replace("&", " and ")):
        for token in _TOKEN.findall(raw):
            if token.isdigit():
                words.extend((number_words(int(token)) if len(token) <= 4 else digits_words(token)).split())
            elif token.isupper() and len(token) <= 4 and not re.search(r"[AEIOUY]", token):
                words.extend(token.lower())
            else:
                words.append(token.lower())
    return words


# -- what callers say ---------------------------------------------------------------------------

CALLER_TEMPLATES: tuple[str, ...] = (
    # work order status
    "is my {vehicle} ready",
    "is my car ready",
    "is my car ready yet",
    "is my truck done",
    "i'm calling to check on my {vehicle}",
    "i'm calling about my {vehicle}",
    "i'm checking on the status of my car",
    "what's the status of my {vehicle}",
    "can you tell me if my car is done",
    "when will my {vehicle} be ready",
    "when will it be ready",
    "is it done yet",
    "how much longer will it take",
    "did you find out what's wrong with it",
    "are the parts in yet",
    "can i pick up my car today",
    "what time can i pick it up",
    "this is {name} calling about my {vehicle}",
    "hi this is {name}",
    "my name is {name}",
    "it's {name}",
    "it's under {name}",
    "the name is {last}",
    "my last name is {last}",
    "last name {last}",
    "i have a {year} {make} {model}",
    "it's a {make} {model}",
    "it's a {year} {make} {model}",
    "a {make} {model}",
    "the {model}",
    "my repair order number is {ro}",
    "the ro number is {ro}",
    "my work order number is {ro}",
    "order number {ro}",
    "it's {ro}",
    "{ro}",
    "my phone number is {phone}",
    "you can reach me at {phone}",
    # hours
    "what are your hours",
    "what are your hours on {day}",
    "what time do you open",
    "what time do you close",
    "what time do you close today",
    "what time do you open tomorrow",
    "are you open on {day}",
    "are you open today",
    "are you open right now",
    "are you open on the weekend",
    "are you closed on {day}",
    "when do you open on {day}",
    "how late are you open",
    "how late are you open today",
    "can i come in at {time}",
    "can i drop my car off at {time} on {day}",
    "can i drop off my car {day}",
    # location
    "where are you located",
    "what's your address",
    "where is the shop",
    "how do i get there",
    "can you give me directions",
    "what street are you on",
    "is there parking",
    # services
    "do you do {service}",
    "how much is {service}",
    "how much is an oil change",
    "how much do you charge for {service}",
    "what services do you offer",
    "what kind of work do you do",
    "do you work on {make}",
    "can you do {service} on my {vehicle}",
    "i need {service}",
    "i need an appointment",
    "i'd like to make an appointment",
    "i'd like to schedule {service}",
    "do you have any openings {day}",
    "my check engine light is on",
    "my brakes are squeaking",
    "my car won't start",
    "my car is making a noise",
    "i have a question about my bill",
    "how much do i owe",
    "can i pay over the phone",
    # people
    "can i talk to a person",
    "can i speak to someone",
    "let me speak to someone",
    "transfer me to a human",
    "i want to talk to a real person",
    "can i speak to the manager",
    "can i talk to a mechanic",
    "put me through to the front desk",
    "can i talk to {first}",
    "operator",
    "representative",
    "a person please",
    "can someone call me back",
    "please call me back",
    # closing and small talk
    "goodbye",
    "bye",
    "bye bye",
    "thank you goodbye",
    "thanks bye",
    "thank you",
    "thanks",
    "thanks for your help",
    "that's all",
    "that's it thanks",
    "no that's all thank you",
    "have a nice day",
    "hello",
    "hi",
    "hi there",
    "hello is anyone there",
    "can you repeat that",
    "sorry what was that",
    "i didn't catch that",
    "say that again",
    "what",
    "i have a question",
    # yes / no
    "yes",
    "yeah",
    "yes please",
    "yes that's right",
    "no",
    "nope",
    "no thanks",
    "no thank you",
    "correct",
    "that's right",
    "that's correct",
    "sure",
    "okay",
    "i don't know",
    "maybe",
    "not really",
)

DEFAULT_VEHICLES: tuple[tuple[str, str], ...] = (
    ("Honda", "Civic"),
    ("Honda", "Accord"),
    ("Honda", "CR-V"),
    ("Toyota", "Camry"),
    ("Toyota", "Corolla"),
    ("Toyota", "RAV4"),
    ("Toyota", "Tacoma"),
    ("Ford", "F-150"),
    ("Ford", "Escape"),
    ("Ford", "Explorer"),
    ("Chevy", "Silverado"),
    ("Chevrolet", "Malibu"),
    ("Chevrolet", "Equinox"),
    ("Nissan", "Altima"),
    ("Nissan", "Rogue"),
    ("Jeep", "Wrangler"),
    ("Jeep", "Grand Cherokee"),
    ("Subaru", "Outback"),
    ("Subaru", "Forester"),
    ("Hyundai", "Elantra"),
    ("Kia", "Sorento"),
    ("Dodge", "Ram"),
    ("BMW", "X5"),
    ("Volkswagen", "Jetta"),
)
DEFAULT_SERVICES = (
    "oil change",
    "brakes",
    "brake job",
    "tires",
    "tire rotation",
    "alignment",
    "inspection",
    "state inspection",
    "diagnostics",
    "transmission",
    "battery",
    "AC repair",
    "tune up",
    "engine repair",
)
DAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "this weekend",
    "saturday morning",
    "next week",
)
TIMES = (
    "eight",
    "eight thirty",
    "nine",
    "nine a m",
    "ten o'clock",
    "eleven",
    "noon",
    "one",
    "two thirty",
    "three",
    "four thirty",
    "five p m",
    "six",
    "seven a m",
)
FIRST_NAMES = ("john", "mary", "mike", "sarah", "david", "lisa")
LAST_NAMES = ("smith", "johnson", "williams", "brown", "jones", "garcia")


@dataclass(frozen=True)
class ShopVocabulary:
    """The words that make a shop's calls different from any other's. Order does not matter."""

    shop_name: str = ""
    customer_names: tuple[str, ...] = ()  # "John Smith"
    vehicles: tuple[tuple[str, str], ...] = ()  # (make, model)
    ro_numbers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    extra_phrases: tuple[str, ...] = ()  # anything else callers say here (street names, staff names…)

    def digest(self) -> str:
        data = asdict(self)
        data = {k: sorted(map(str, v)) if isinstance(v, tuple) else v for k, v in data.items()}
        payload = json.dumps({"v": MODEL_VERSION, **data}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_shop(cls, shop: Shop, *, max_work_orders: int = 500) -> ShopVocabulary:
        """The vocabulary of a shop's current data: its services and its open work orders (newest first).
        Synchronous ORM access: call it from a thread (`sync_to_async`) in async code."""
        from shops.models import WorkOrder

        closed = [WorkOrder.Status.PICKED_UP, WorkOrder.Status.CANCELLED]
        orders = (
            WorkOrder.objects.filter(shop=shop)
            .exclude(status__in=closed)
            .order_by("-updated_at")
            .values_list("customer_name", "vehicle_make", "vehicle_model", "number")[:max_work_orders]
        )
        names, vehicles, numbers = set(), set(), set()
        for name, make, model, number in orders:
            if name:
                names.add(name)
            if make or model:
                vehicles.add((make or "", model or ""))
            if number:
                numbers.add(number)
        return cls(
            shop_name=shop.name,
            customer_names=tuple(sorted(names)),
            vehicles=tuple(sorted(vehicles)),
            ro_numbers=tuple(sorted(numbers)),
            services=tuple(sorted(shop.services.values_list("name", flat=True))),
        )


def _spoken_ro(number: str, rng: random.Random) -> str:
    digits = re.sub(r"\D", "", number)
    if not digits:
        return " ".join(normalize_text(number))
    return digits_words(digits, zero=rng.choice(("zero", "oh")))


def build_corpus(vocabulary: ShopVocabulary, *, samples_per_template: int = 12) -> list[str]:
    """Sentences to train the language model on: every template filled with slot values drawn from the
    shop's data and generic defaults, plus one sentence per shop-specific value so none is missed."""
    rng = random.Random(vocabulary.digest())  # deterministic for a given vocabulary  # noqa: S311
    vehicles = list(vocabulary.vehicles) + list(DEFAULT_VEHICLES)
    names = [n for n in vocabulary.customer_names if n.strip()] or [
        f"{f} {last}" for f, last in zip(FIRST_NAMES, LAST_NAMES, strict=True)
    ]
    services = list(vocabulary.services) + list(DEFAULT_SERVICES)
    ro_numbers = list(vocabulary.ro_numbers) or ["1001", "2345"]

    def year() -> str:
        n = rng.randint(2005, 2025)
        # "twenty eighteen" and "two thousand eighteen" are both common
        return number_words(n) if n < 2010 or rng.random() < 0.7 else f"two thousand {number_words(n % 100)}"

    def fill(template: str, vehicle: tuple[str, str] | None = None, name: str | None = None) -> str:
        make, model = vehicle or rng.choice(vehicles)
        full = name or rng.choice(names)
        parts = full.split()
        slots = {
            "make": make,
            "model": model,
            "vehicle": rng.choice([f"{make} {model}", model, f"{year()} {make} {model}", "car", "truck"]),
            "year": year(),
            "name": rng.choice([full, parts[-1]]) if parts else "",
            "first": parts[0] if parts else "",
            "last": parts[-1] if parts else "",
            "ro": _spoken_ro(rng.choice(ro_numbers), rng)
            if rng.random() < 0.6
            else digits_words("".join(rng.choice("0123456789") for _ in range(rng.randint(3, 6)))),
            "phone": digits_words("".join(rng.choice("0123456789") for _ in range(10))),
            "day": rng.choice(DAYS),
            "time": rng.choice(TIMES),
            "service": rng.choice(services),
        }
        return template.format(**slots)

    sentences: list[str] = []
    for template in CALLER_TEMPLATES:
        count = samples_per_template if "{" in template else 2
        sentences.extend(fill(template) for _ in range(count))
    for vehicle in vehicles:
        sentences.append(fill("is my {make} {model} ready", vehicle=vehicle))
        sentences.append(fill("it's a {year} {make} {model}", vehicle=vehicle))
    for name in names:
        sentences.append(fill("this is {name} calling about my {vehicle}", name=name))
        sentences.append(fill("my last name is {last}", name=name))
    for number in vocabulary.ro_numbers:
        sentences.append(f"my repair order number is {_spoken_ro(number, rng)}")
    for service in vocabulary.services:
        sentences.append(f"do you do {service}")
    if vocabulary.shop_name:
        sentences.append(f"is this {vocabulary.shop_name}")
        sentences.append(f"hi is this {vocabulary.shop_name}")
    sentences.extend(vocabulary.extra_phrases)
    return [" ".join(words) for s in sentences if (words := normalize_text(s))]
