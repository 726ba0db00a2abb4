"""Offline speech recognition with PocketSphinx 5, biased towards what callers say to a repair shop.

Pieces, in the order a call uses them:

* `UtteranceDetector` — PocketSphinx's `Endpointer` (WebRTC-style VAD) over PCM16 16 kHz: tells when the
  caller starts talking (for barge-in) and hands over each finished utterance.
* `Recognizer` — one PocketSphinx decoder; `decode()` turns an utterance into text, `choices=` restricts it
  to a closed set (yes/no…). Decoders are big (~0.3 s and ~100 MB with the bundled LM), so
  `get_recognizer()` shares one per model per process.
* `build_domain_model(ShopVocabulary)` — a trigram ARPA language model and a pronunciation dictionary
  built from typical caller sentences plus the shop's own names, vehicles and RO numbers; cached on disk
  under a hash of the vocabulary, so it is rebuilt only when the shop's data changes.

Phone audio is μ-law 8 kHz; the bundled acoustic model needs 16 kHz (it refuses samprate=8000), so convert
with `voice.audio.AudioConverter(MULAW_8K, PCM16_16K)` first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voice.audio import PCM16_16K, AudioConverter, AudioFormat

if TYPE_CHECKING:
    from shops.models import Shop

MODEL_VERSION = 2  # bump when the corpus or the builder changes: old cached models are then rebuilt
SAMPLE_RATE = 16000
DEFAULT_CACHE_DIR = Path(os.environ.get("VOICE_ASR_CACHE_DIR", Path(tempfile.gettempdir()) / "voice-receptionist-asr"))

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


# -- language model -----------------------------------------------------------------------------


def train_arpa(sentences: Iterable[str], order: int = 3) -> str:
    """An ARPA back-off n-gram model with Witten-Bell smoothing, written out in full.

    Witten-Bell interpolates each order with the next lower one, weighting the lower order by how many
    different words followed the context: P(w|h) = (c(h,w) + T(h)·P_lower(w|h')) / (c(h) + T(h)). In
    back-off form the weight of an unseen continuation works out to exactly α(h) = T(h) / (c(h) + T(h))
    — no renormalisation sums needed.
    """
    counts: list[dict[tuple[str, ...], Counter[str]]] = [defaultdict(Counter) for _ in range(order)]
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        for i in range(1, len(words)):  # every word after <s> is predicted from up to order-1 before it
            for n in range(1, min(order, i + 1) + 1):
                counts[n - 1][tuple(words[i - n + 1 : i])][words[i]] += 1
    unigrams = counts[0][()]
    vocab = sorted(unigrams)  # every word but <s>
    total = sum(unigrams.values())
    types = len(vocab)

    def alpha(context: tuple[str, ...]) -> float:
        followers = counts[len(context)].get(context)
        if not followers:
            return 1.0
        seen = sum(followers.values())
        return len(followers) / (seen + len(followers))

    @cache
    def prob(word: str, context: tuple[str, ...]) -> float:
        if not context:
            return (unigrams[word] + 1) / (total + types)  # Witten-Bell over a uniform base: every word seen
        lower = prob(word, context[1:])
        followers = counts[len(context)].get(context)
        if not followers:
            return lower
        seen = sum(followers.values())
        t = len(followers)
        if word in followers:
            return (followers[word] + t * lower) / (seen + t)
        return alpha(context) * lower

    def log10(p: float) -> str:
        return f"{math.log10(p):.6f}"

    sections: list[list[str]] = [[] for _ in range(order)]
    sections[0].append(f"-99.000000\t<s>\t{log10(alpha(('<s>',)))}")
    for word in vocab:
        line = f"{log10(prob(word, ()))}\t{word}"
        if order > 1 and (word,) in counts[1]:
            line += f"\t{log10(alpha((word,)))}"
        sections[0].append(line)
    for n in range(2, order + 1):
        for context in sorted(counts[n - 1]):
            for word in sorted(counts[n - 1][context]):
                gram = (*context, word)
                line = f"{log10(prob(word, context))}\t{' '.join(gram)}"
                if n < order and gram in counts[n]:
                    line += f"\t{log10(alpha(gram))}"
                sections[n - 1].append(line)
    out = ["\\data\\"] + [f"ngram {n + 1}={len(lines)}" for n, lines in enumerate(sections)] + [""]
    for n, lines in enumerate(sections):
        out += [f"\\{n + 1}-grams:", *lines, ""]
    out.append("\\end\\")
    return "\n".join(out) + "\n"


# -- pronunciations -----------------------------------------------------------------------------

_IPA_TO_ARPABET = {
    "ə": "AH", "ʌ": "AH", "ɐ": "AH", "æ": "AE", "a": "AE", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO", "aʊ": "AW",
    "aɪ": "AY", "ɛ": "EH", "e": "EH", "eɪ": "EY", "ɜ": "ER", "ɚ": "ER", "ɝ": "ER", "ɪ": "IH", "ᵻ": "IH",
    "i": "IY", "oʊ": "OW", "o": "OW", "əʊ": "OW", "ɔɪ": "OY", "ʊ": "UH", "u": "UW", "b": "B", "d": "D",
    "f": "F", "ɡ": "G", "g": "G", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N", "ŋ": "NG",
    "p": "P", "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH", "t": "T", "θ": "TH", "ð": "DH", "v": "V", "w": "W",
    "z": "Z", "ʒ": "ZH", "tʃ": "CH", "dʒ": "JH", "ɾ": "T", "ʔ": "T", "x": "K", "ɬ": "L", "ç": "HH",
}  # fmt: skip


def _ipa_phone(token: str) -> list[str]:
    token = token.replace("ˈ", "").replace("ˌ", "").replace("ː", "").replace("̩", "")
    if not token:
        return []
    if token in _IPA_TO_ARPABET:
        return [_IPA_TO_ARPABET[token]]
    if token.endswith(("ɹ", "r")) and token[:-1] in _IPA_TO_ARPABET:
        return [_IPA_TO_ARPABET[token[:-1]], "R"]
    return [_IPA_TO_ARPABET[ch] for ch in token if ch in _IPA_TO_ARPABET]


def espeak_pronunciations(words: Sequence[str]) -> dict[str, str]:
    """ARPAbet pronunciations from espeak-ng's own letter-to-sound rules (IPA, mapped to CMU phones).
    Empty when espeak-ng is not installed."""
    binary = shutil.which("espeak-ng")
    if binary is None or not words:
        return {}
    text = "\n".join(words)
    done = subprocess.run(  # noqa: S603
        [binary, "-q", "--ipa", "--sep=_", "-v", "en-us"], input=text.encode(), capture_output=True, check=False
    )
    lines = [line.strip() for line in done.stdout.decode().splitlines() if line.strip()]
    if done.returncode != 0 or len(lines) != len(words):
        return {}
    result = {}
    for word, line in zip(words, lines, strict=True):
        phones = [p for token in re.split(r"[_\s]+", line) for p in _ipa_phone(token)]
        if phones:
            result[word] = " ".join(phones)
    return result


_LETTER_RULES = [
    ("tch", "CH"), ("sch", "S K"), ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("ck", "K"),
    ("ng", "NG"), ("qu", "K W"), ("wh", "W"), ("gh", ""), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"),
    ("ou", "AW"), ("ow", "OW"), ("oa", "OW"), ("ai", "EY"), ("ay", "EY"), ("ei", "EY"), ("ie", "IY"),
    ("au", "AO"), ("aw", "AO"), ("oi", "OY"), ("oy", "OY"), ("er", "ER"), ("ir", "ER"), ("ur", "ER"),
    ("ar", "AA R"), ("or", "AO R"), ("a", "AE"), ("e", "EH"), ("i", "IH"), ("o", "AA"), ("u", "AH"),
    ("b", "B"), ("d", "D"), ("f", "F"), ("g", "G"), ("h", "HH"), ("j", "JH"), ("k", "K"), ("l", "L"),
    ("m", "M"), ("n", "N"), ("p", "P"), ("r", "R"), ("s", "S"), ("t", "T"), ("v", "V"), ("w", "W"),
    ("x", "K S"), ("z", "Z"),
]  # fmt: skip


def letter_pronunciation(word: str) -> str:
    """A crude letter-to-sound guess, used only when espeak-ng is missing: better than dropping the word."""
    word = word.lower().replace("'", "")
    if len(word) > 3 and word.endswith("e") and word[-2] not in "aeiou":
        word = word[:-1]  # silent final e
    phones: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch == "c":
            phones.append("S" if word[i + 1 : i + 2] in ("e", "i", "y") else "K")
            i += 1
            continue
        if ch == "y":
            phones.append("Y" if i == 0 else "IY")
            i += 1
            continue
        for letters, sound in _LETTER_RULES:
            if word.startswith(letters, i):
                phones.extend(sound.split())
                i += len(letters)
                break
        else:
            i += 1
    # collapse doubled consonants ("ll" → L)
    collapsed = [p for j, p in enumerate(phones) if j == 0 or p != phones[j - 1]]
    return " ".join(collapsed)


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[str]]:
    from pocketsphinx import get_model_path

    entries: dict[str, list[str]] = defaultdict(list)
    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as fh:
        for line in fh:
            word, _, phones = line.strip().partition(" ")
            entries[re.sub(r"\(\d+\)$", "", word)].append(phones.strip())
    return dict(entries)


def pronunciations(words: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """CMUdict pronunciations for `words`; words it lacks get espeak-ng's (or, without espeak-ng, the
    letter rules'). Returns (dictionary, {word: source} for the words that were guessed)."""
    cmu = _cmudict()
    found: dict[str, list[str]] = {}
    missing = []
    for word in sorted(set(words)):
        if word in cmu:
            found[word] = cmu[word]
        else:
            missing.append(word)
    guessed: dict[str, str] = {}
    for word, phones in espeak_pronunciations(missing).items():
        found[word] = [phones]
        guessed[word] = "espeak-ng"
    for word in missing:
        if word not in found and (phones := letter_pronunciation(word)):
            found[word] = [phones]
            guessed[word] = "letter rules"
    return found, guessed


# -- building and caching the shop's model ------------------------------------------------------

_build_lock = threading.Lock()


def build_domain_model(vocabulary: ShopVocabulary, cache_dir: Path | str | None = None) -> Path:
    """Build (or find in the cache) the shop's language model; returns the model directory holding
    `domain.lm` (ARPA trigram), `domain.dict` and `manifest.json`. The directory name is a hash of the
    vocabulary, so changed shop data gives a new model and unchanged data costs a stat call."""
    root = Path(cache_dir or DEFAULT_CACHE_DIR)
    target = root / f"shop-{vocabulary.digest()}"
    if (target / "manifest.json").exists():
        return target
    with _build_lock:
        if (target / "manifest.json").exists():
            return target
        started = time.perf_counter()
        corpus = build_corpus(vocabulary)
        arpa = train_arpa(corpus)
        words = {w for sentence in corpus for w in sentence.split()}
        pron, guessed = pronunciations(words)
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        (tmp / "domain.lm").write_text(arpa, encoding="utf-8")
        with open(tmp / "domain.dict", "w", encoding="utf-8") as fh:
            for word in sorted(pron):
                for i, phones in enumerate(pron[word]):
                    fh.write(f"{word if i == 0 else f'{word}({i + 1})'} {phones}\n")
        manifest = {
            "version": MODEL_VERSION,
            "digest": vocabulary.digest(),
            "sentences": len(corpus),
            "words": len(words),
            "guessed_pronunciations": guessed,
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        # The manifest is written last: its presence means the model is complete.
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            tmp.rename(target)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
        return target


# -- recognition --------------------------------------------------------------------------------


@dataclass
class Transcript:
    text: str
    audio_seconds: float
    decode_seconds: float
    score: float = 0.0

    @property
    def words(self) -> list[str]:
        return self.text.split()

    @property
    def real_time_factor(self) -> float:
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else 0.0


class Recognizer:
    """One PocketSphinx decoder. `model=None` uses the bundled general English LM; otherwise a directory
    from `build_domain_model`. Thread-safe (one utterance at a time); share it through `get_recognizer`."""

    CHUNK_BYTES = 3200  # 0.1 s: the decoder holds the GIL while it works, so feed it in small bites

    def __init__(self, model: Path | str | None = None, *, flat_pass: bool = False, loglevel: str = "FATAL") -> None:
        from pocketsphinx import Decoder

        self.model = Path(model) if model else None
        # PocketSphinx's second "flat lexicon" pass runs inside end_utt(), in one GIL-holding call (~0.25 s
        # for a 6 s utterance with the domain LM, ~0.7 s with the bundled one) after the caller stopped
        # talking. On our evaluation it bought no accuracy (WER 0.443 with, 0.437 without) and cost ~40% of
        # the CPU, so it is off: end_utt() then takes milliseconds.
        config: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": loglevel, "fwdflat": flat_pass}
        if self.model is not None:
            config.update(lm=str(self.model / "domain.lm"), dict=str(self.model / "domain.dict"))
        started = time.perf_counter()
        self._decoder = Decoder(**config)
        self.init_seconds = time.perf_counter() - started
        self._lock = threading.Lock()
        self._grammars: OrderedDict[tuple[str, ...], str] = OrderedDict()

    def decode(self, pcm: bytes, *, choices: Sequence[str] | None = None) -> Transcript:
        """Recognise one utterance of PCM16 mono 16 kHz. With `choices`, the answer is one of them (as
        normalised words) or "" — a closed-set grammar, far more reliable than open recognition."""
        with self._lock:
            started = time.perf_counter()
            search = self._grammar(choices) if choices else "_default"
            if self._decoder.current_search() != search:
                self._decoder.activate_search(search)
            self._decoder.start_utt()
            for i in range(0, len(pcm), self.CHUNK_BYTES):
                self._decoder.process_raw(pcm[i : i + self.CHUNK_BYTES], False, False)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            text = " ".join(w for w in (hyp.hypstr.split() if hyp else []) if not w.startswith(("<", "[", "++")))
            return Transcript(
                text=text,
                audio_seconds=len(pcm) / (2 * SAMPLE_RATE),
                decode_seconds=time.perf_counter() - started,
                score=hyp.best_score if hyp else 0,
            )

    async def adecode(self, pcm: bytes, *, choices: Sequence[str] | None = None) -> Transcript:
        """`decode` in a worker thread, so the event loop keeps serving other calls' audio."""
        return await asyncio.to_thread(self.decode, pcm, choices=choices)

    def _grammar(self, choices: Sequence[str]) -> str:
        phrases = tuple(sorted({" ".join(normalize_text(c)) for c in choices} - {""}))
        if phrases in self._grammars:
            self._grammars.move_to_end(phrases)
            return self._grammars[phrases]
        missing = {w for p in phrases for w in p.split() if self._decoder.lookup_word(w) is None}
        if missing:
            pron, _ = pronunciations(missing)
            for word, variants in pron.items():
                self._decoder.add_word(word, variants[0], True)
        name = f"choices{len(self._grammars)}-{hashlib.sha1(repr(phrases).encode()).hexdigest()[:8]}"  # noqa: S324
        body = " | ".join(f"( {p} )" for p in phrases)
        self._decoder.add_jsgf_string(name, f"#JSGF V1.0;\ngrammar choices;\npublic <choice> = {body};\n")
        self._grammars[phrases] = name
        return name


class RecognizerPool:
    """One shared `Recognizer` per model per process (a decoder costs ~0.3 s and tens of MB to create);
    the least recently used models are dropped beyond `max_models`."""

    def __init__(self, max_models: int = 8) -> None:
        self.max_models = max_models
        self._recognizers: OrderedDict[str, Recognizer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: Path | str | None = None) -> Recognizer:
        key = str(Path(model).resolve()) if model else "<default>"
        with self._lock:
            recognizer = self._recognizers.get(key)
            if recognizer is None:
                recognizer = Recognizer(model)
                self._recognizers[key] = recognizer
                while len(self._recognizers) > self.max_models:
                    self._recognizers.popitem(last=False)
            self._recognizers.move_to_end(key)
            return recognizer

    async def aget(self, model: Path | str | None = None) -> Recognizer:
        return await asyncio.to_thread(self.get, model)

    def __len__(self) -> int:
        return len(self._recognizers)


pool = RecognizerPool()


def get_recognizer(model: Path | str | None = None) -> Recognizer:
    """The process-wide recognizer for `model` (None: the bundled general English model)."""
    return pool.get(model)


# -- endpointing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds since the detector started


@dataclass(frozen=True)
class Utterance:
    start: float
    end: float
    pcm: bytes = field(repr=False)  # PCM16 16 kHz

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)


class UtteranceDetector:
    """Turns a stream of audio (chunks of any size) into `SpeechStarted` and `Utterance` events; the
    utterances' audio is PCM16 16 kHz, ready for `Recognizer.decode`. Give `input_format=MULAW_8K` to
    feed Twilio frames directly (they are converted, with resampler state kept across frames).

    Built on PocketSphinx's `Endpointer`: speech starts when `ratio` of a `window`-second window is voiced
    and ends when `ratio` of it is not, so both events arrive about `window` seconds late; a longer window
    waits out longer pauses before ending the caller's turn. An utterance longer than `max_seconds` is cut
    (and the rest continues as the next one)."""

    def __init__(
        self,
        *,
        window: float = 0.3,
        ratio: float = 0.9,
        vad_mode: int = 0,
        max_seconds: float = 15.0,
        min_seconds: float = 0.1,
        input_format: AudioFormat = PCM16_16K,
    ) -> None:
        from pocketsphinx import Endpointer

        self._converter = AudioConverter(input_format, PCM16_16K)

        self._endpointer = Endpointer(window=window, ratio=ratio, vad_mode=vad_mode, sample_rate=SAMPLE_RATE)
        self.frame_bytes: int = self._endpointer.frame_bytes
        self.max_seconds = max_seconds
        self.min_seconds = min_seconds
        self._pending = bytearray()
        self._speech: list[bytes] = []
        self._speech_bytes = 0
        self._start = 0.0  # where the utterance being collected starts

    @property
    def in_speech(self) -> bool:
        return bool(self._endpointer.in_speech)

    def feed(self, audio: bytes) -> list[SpeechStarted | Utterance]:
        self._pending += self._converter.convert(audio)
        events: list[SpeechStarted | Utterance] = []
        usable = len(self._pending) // self.frame_bytes * self.frame_bytes
        for i in range(0, usable, self.frame_bytes):
            self._process(bytes(self._pending[i : i + self.frame_bytes]), events, last=False)
        del self._pending[:usable]
        return events

    def flush(self) -> list[SpeechStarted | Utterance]:
        """End of stream: whatever speech is still open becomes a last utterance."""
        events: list[SpeechStarted | Utterance] = []
        self._process(bytes(self._pending), events, last=True)
        self._pending.clear()
        return events

    def _process(self, frame: bytes, events: list[SpeechStarted | Utterance], *, last: bool) -> None:
        was_in_speech = self._endpointer.in_speech
        speech = self._endpointer.end_stream(frame) if last else self._endpointer.process(frame)
        if not was_in_speech and self._endpointer.in_speech:
            self._start = self._endpointer.speech_start
            events.append(SpeechStarted(at=self._start))
        if speech is not None:
            self._speech.append(speech)
            self._speech_bytes += len(speech)
        if not self._speech:
            return
        ended = not self._endpointer.in_speech
        too_long = self._speech_bytes >= self.max_seconds * 2 * SAMPLE_RATE
        if ended or too_long or last:
            seconds = self._speech_bytes / (2 * SAMPLE_RATE)
            end = self._endpointer.speech_end if ended else self._start + seconds
            utterance = Utterance(start=self._start, end=end, pcm=b"".join(self._speech))
            self._speech, self._speech_bytes = [], 0
            self._start = end  # a cut utterance continues from here
            if utterance.duration >= self.min_seconds:
                events.append(utterance)
