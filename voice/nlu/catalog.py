"""Repair-shop services as callers name them, and matching a question to a shop's own service list.

Callers rarely say a shop's service names: "do you do alignments" means "Wheel alignment", "my brakes
are squeaking" means "Brake pads and rotors", "AC" means "A/C recharge". Each *concept* below lists the
words that point to it; a shop's services are mapped to concepts through the same table, and a question
matches the services that share its concepts (then plain word overlap and fuzzy spelling as a fallback).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voice.nlu.text import compact, edit_distance, words_of

# concept → trigger phrases (normalised words, as voice.nlu.text.words_of produces them)
CONCEPTS: dict[str, tuple[str, ...]] = {
    "oil": ("oil", "oil change", "lube", "oil and filter", "synthetic", "lube oil filter"),
    "brakes": ("brake", "brakes", "brake pad", "brake pads", "pads", "rotor", "rotors", "caliper", "squeak",
               "squeaking", "squealing", "grinding", "brake job", "brake fluid"),
    "alignment": ("alignment", "alignments", "align", "wheel alignment", "front end alignment", "pulls to",
                  "pulling to", "pulling"),
    "tires": ("tire", "tires", "flat", "flat tire", "rotation", "rotate", "tire rotation", "balance", "balancing",
              "mount", "mounting", "new tires", "wheels", "wheel balance"),
    "ac": ("ac", "air conditioning", "air conditioner", "air con", "freon", "refrigerant", "ac recharge",
           "ac repair", "cold air", "blowing hot", "ac not working"),
    "inspection": ("inspection", "inspections", "state inspection", "safety inspection", "emissions", "emission",
                   "smog", "smog check", "inspect", "sticker"),
    "battery": ("battery", "batteries", "dead battery", "jump", "wont start", "jump start"),
    "diagnosis": ("diagnosis", "diagnostic", "diagnostics", "check engine", "check engine light", "engine light",
                  "warning light", "code", "codes", "scan", "noise", "strange noise", "diagnose"),
    "transmission": ("transmission", "transmissions", "tranny", "gearbox", "shifting", "slipping", "trans fluid",
                     "transmission fluid", "transmission flush", "clutch"),
    "timing_belt": ("timing belt", "timing chain", "timing"),
    "suspension": ("suspension", "strut", "struts", "shock", "shocks", "shock absorbers", "control arm",
                   "ball joint", "bouncy", "steering", "tie rod"),
    "exhaust": ("exhaust", "muffler", "catalytic converter", "catalytic", "tailpipe", "loud exhaust"),
    "cooling": ("radiator", "coolant", "overheating", "overheat", "water pump", "thermostat", "antifreeze",
                "cooling system", "coolant flush", "hoses", "hose"),
    "belts": ("serpentine belt", "belt", "belts", "drive belt", "fan belt"),
    "tuneup": ("tune up", "tuneup", "tune", "spark plug", "spark plugs", "ignition", "misfire"),
    "electrical": ("electrical", "alternator", "starter", "wiring", "fuse", "lights", "headlight", "headlights",
                   "bulb", "bulbs", "power windows"),
    "maintenance": ("maintenance", "scheduled maintenance", "service", "tune", "fluids", "fluid", "filter",
                    "air filter", "cabin filter", "checkup", "check up", "30000 mile", "60000 mile", "90000 mile",
                    "mile service", "factory maintenance"),
    "engine": ("engine", "engine repair", "head gasket", "motor", "engine rebuild", "oil leak", "leak"),
    "wipers": ("wiper", "wipers", "wiper blades", "windshield wipers"),
    "glass": ("windshield", "glass", "window", "cracked windshield"),
    "body": ("body work", "bodywork", "collision", "dent", "dents", "paint", "bumper", "scratch", "fender"),
    "towing": ("tow", "towing", "tow truck", "roadside"),
    "detailing": ("detail", "detailing", "car wash", "wash", "cleaning"),
    "fuel": ("fuel", "fuel pump", "fuel injector", "injectors", "fuel system", "gas pump"),
    "hybrid": ("hybrid", "electric", "ev", "hybrids"),
    "diesel": ("diesel", "diesels"),
}  # fmt: skip


def _singular(word: str) -> str:
    """A crude singular, applied alike to phrases and questions ("timing belts" = "timing belt")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_PHRASE_TO_CONCEPTS: dict[tuple[str, ...], set[str]] = {}
for _concept, _phrases in CONCEPTS.items():
    for _phrase in _phrases:
        _PHRASE_TO_CONCEPTS.setdefault(tuple(_singular(w) for w in _phrase.split()), set()).add(_concept)
_LONGEST = max(len(p) for p in _PHRASE_TO_CONCEPTS)
# Words too general to match a service on their own ("service", "fluid" name half the list).
_WEAK = {"service", "fluid", "tune", "filter", "leak", "code", "scan", "noise", "timing", "hose"}
_GENERIC_WORDS = {"and", "or", "the", "a", "of", "for", "per", "to", "with", "change", "replacement", "repair",
                  "service", "services", "check", "new", "job", "axle", "system"}  # fmt: skip


def concepts_in(words: Sequence[str]) -> list[str]:
    """The service concepts a sequence of normalised words mentions, in order, longest phrases first.

    Plurals count as their singular ("windshields", "batteries").
    """
    words = [_singular(w) for w in words]
    found: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            span = tuple(words[i : i + n])
            if span in _PHRASE_TO_CONCEPTS and not (n == 1 and span[0] in _WEAK and _has_strong(words)):
                for c in sorted(_PHRASE_TO_CONCEPTS[span]):
                    if c not in found:
                        found.append(c)
                i += n
                break
        else:
            i += 1
    return found


def _has_strong(words: Sequence[str]) -> bool:
    return any((w,) in _PHRASE_TO_CONCEPTS and w not in _WEAK for w in words)


@dataclass(frozen=True)
class ServiceMatch:
    name: str
    price_note: str
    duration_note: str
    score: float  # 1.0: the concept the caller named; lower: related by words or spelling


def _service_words(name: str) -> list[str]:
    return [w for w in words_of(re.sub(r"[/]", "", name)) if w not in _GENERIC_WORDS]


def match_services(
    question_words: Sequence[str], services: Iterable[tuple[str, str, str]]
) -> tuple[list[str], list[ServiceMatch]]:
    """The concepts in a question and the shop's services (name, price_note, duration_note) that match.

    Returns (concepts asked about, matches best first). A match scores 1.0 when the service covers a
    concept the caller named, 0.6–0.9 when it shares a distinctive word or nearly does (typos).
    """
    asked = concepts_in(question_words)
    asked_words = {w for w in question_words if len(w) >= 4 and w not in _GENERIC_WORDS}
    matches: list[ServiceMatch] = []
    for name, price, duration in services:
        service_words = _service_words(name)
        service_concepts = set(concepts_in(words_of(name)))
        score = 0.0
        if asked and service_concepts & set(asked):
            score = 1.0
        else:
            for w in asked_words:
                for s in service_words:
                    if len(s) < 4:
                        continue
                    if w == s or compact(w) == compact(s):
                        score = max(score, 0.9)
                    elif edit_distance(w, s, 2) <= (1 if len(s) < 7 else 2):
                        score = max(score, 0.7)
        if score:
            matches.append(ServiceMatch(name, price, duration, score))
    matches.sort(key=lambda m: (-m.score, m.name))
    return asked, matches
