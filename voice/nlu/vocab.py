"""A shop's own words: its customers' last names and the makes and models it works on.

Built from the shop's work orders (one DISTINCT query) on top of the common makes/models list, and
cached per process. The cache is keyed by the shop and a version — the count and latest `updated_at`
of its work orders — which is read at most every VERSION_CHECK_SECONDS per shop (the aggregate reads
every row of a 10,000-order shop: 2–7 ms, too much for every turn); the vocabulary is rebuilt when the
version changed, or when it is older than MAX_AGE_SECONDS (bulk `update()`s do not touch `updated_at`).

The vocabulary only helps *recognise* names and vehicles in what a caller says; verification always
queries the database, so a few seconds of staleness never lets anyone hear what they should not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Max

from shops.models import WorkOrder
from voice.nlu.text import COMMON_WORDS, Lexicon, compact, edit_distance, soundex, word_set
from voice.nlu.vehicles import MAKE_ALIASES, MAKES, MODEL_ALIASES, MODELS

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300
VERSION_CHECK_SECONDS = 5.0
MAX_SHOPS = 512

# Last names that are also everyday words or vehicle words: only taken as a name when the caller
# says so ("my name is White", "it's under Ford") or answers a question about the name.
_WORDY_NAMES = COMMON_WORDS | word_set(
    """
    black brown green gray grey young king long short little wood woods stone hill hills bell rose may will
    ford dodge price rich bond case park banks cook baker carter hunter mason page ward bush fox wolf lamb
    love hope joy day night west east north south street lane field fields chase cash gold silver pope
    rice bird sparks rivers waters summer winter march april june august sharp strong wise good hall
    walker turner fisher miller taylor clay grant gates holiday honey lake marsh moon pool post price
    rush sage small snow swift tate temple thorn bay bowman free french english irish church bishop
    tire tires brake brakes oil parts ready truck car van jeep
    """
)


@dataclass(frozen=True)
class Vehicle:
    make: str = ""  # as shops write it: "Honda", "Mercedes-Benz"
    model: str = ""  # "Civic", "F-150"
    body: str = ""  # truck / suv / van / car, when known

    @property
    def spoken(self) -> str:
        if self.make and self.model.lower().startswith(self.make.lower()):
            return self.model  # "Mazda3", not "Mazda Mazda3"
        return " ".join(p for p in (self.make, self.model) if p)


def make_key(make: str) -> str:
    """The comparable form of a make: 'Chevy' and 'Chevrolet' both → 'chevrolet'."""
    key = compact(make)
    return compact(MAKE_ALIASES.get(key, make))


def model_key(model: str) -> str:
    key = compact(model)
    return compact(MODEL_ALIASES.get(key, model))


def model_matches(said: str, recorded: str) -> bool:
    """Does the model a caller said name the model on a work order? 'F-150' fits 'F-150 XLT'."""
    a, b = model_key(said), model_key(recorded)
    return bool(a) and bool(b) and (a == b or (len(a) >= 2 and b.startswith(a)))


@dataclass
class ShopVocabulary:
    names: dict[str, str] = field(default_factory=dict)  # compact → stored last name
    names_by_sound: dict[str, list[str]] = field(default_factory=dict)  # soundex → compact names
    makes: dict[str, str] = field(default_factory=dict)  # compact spoken form → make
    models: dict[str, list[Vehicle]] = field(default_factory=dict)  # compact model → vehicles
    make_lexicon: Lexicon = field(default_factory=lambda: Lexicon(()))
    model_lexicon: Lexicon = field(default_factory=lambda: Lexicon(()))
    longest_model: int = 1  # words in the longest model name
    shop_models: set[str] = field(default_factory=set)  # compact models on this shop's own work orders

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str, str]] = ()) -> ShopVocabulary:
        """From (customer_last_name, vehicle_make, vehicle_model) rows, on top of the common list."""
        vocab = cls()
        for make in MAKES:
            vocab._add_make(make)
        for alias, make in MAKE_ALIASES.items():
            vocab.makes[alias] = make
        for make, model, body in MODELS:
            vocab._add_model(Vehicle(make, model, body))
        body_of = {model_key(m): b for _, m, b in MODELS}
        for last_name, make, model in rows:
            if last_name:
                vocab._add_name(last_name)
            if make:
                vocab._add_make(MAKE_ALIASES.get(compact(make), make))
            if model:
                canonical = MAKE_ALIASES.get(compact(make), make) if make else ""
                vocab._add_model(Vehicle(canonical, model, body_of.get(model_key(model), "")))
                vocab.shop_models.add(model_key(model))
        for alias, model in MODEL_ALIASES.items():
            key = model_key(model)
            if key in vocab.models:
                vocab.models.setdefault(compact(alias), vocab.models[key])
        # Vehicle words are fuzzy-matched from five letters up: "hunda" is a Honda, "word" is not a Ford.
        vocab.make_lexicon = Lexicon((k for k in vocab.makes if k.isalpha()), protected=_WORDY_NAMES, min_fuzzy=5)
        vocab.model_lexicon = Lexicon((k for k in vocab.models if k.isalpha()), protected=_WORDY_NAMES, min_fuzzy=5)
        return vocab

    def _add_name(self, last_name: str) -> None:
        key = compact(last_name)
        if not key or key in self.names:
            return
        self.names[key] = last_name
        self.names_by_sound.setdefault(soundex(key), []).append(key)

    def _add_make(self, make: str) -> None:
        self.makes.setdefault(compact(make), make)

    def _add_model(self, vehicle: Vehicle) -> None:
        key = model_key(vehicle.model)
        if not key:
            return
        known = self.models.setdefault(key, [])
        if vehicle not in known:
            # A model the shop recorded without a make keeps the common list's make, if any.
            if not vehicle.make and known:
                return
            known.append(vehicle)
        self.longest_model = max(self.longest_model, len(vehicle.model.replace("-", " ").split()))

    # -- lookups --------------------------------------------------------------------------------
    def name(self, word: str, *, fuzzy: bool = False) -> str | None:
        """The stored last name `word` is (or, with fuzzy, sounds like and nearly spells), else None."""
        key = compact(word)
        if key in self.names:
            return self.names[key]
        if not fuzzy or len(key) < 4:
            return None
        limit = 1 if len(key) < 7 else 2
        near = [(edit_distance(key, k, limit), k) for k in self.names_by_sound.get(soundex(key), ())]
        near = sorted((d, k) for d, k in near if d <= limit)
        if near and (len(near) == 1 or near[0][0] < near[1][0]):
            return self.names[near[0][1]]
        return None

    def is_wordy_name(self, word: str) -> bool:
        key = compact(word)
        return key in _WORDY_NAMES or key in self.makes or key in self.models

    def make(self, word: str, *, fuzzy: bool = True) -> str | None:
        key = compact(word)
        if key in self.makes:
            return self.makes[key]
        if fuzzy and (near := self.make_lexicon.nearest(key)):
            return self.makes[near]
        return None

    def model(self, words: str, *, fuzzy: bool = True) -> list[Vehicle]:
        key = compact(words)
        if key in self.models:
            return self.models[key]
        if fuzzy and (near := self.model_lexicon.nearest(key)):
            return self.models[near]
        return []


# ---------------------------------------------------------------------------------------------
# Per-process cache
# ---------------------------------------------------------------------------------------------
_COMMON: ShopVocabulary | None = None
_cache: OrderedDict[int, tuple[Any, float, ShopVocabulary]] = OrderedDict()
_checked: dict[int, float] = {}  # shop id → when its version was last read (monotonic)
_lock = threading.Lock()


def common_vocabulary() -> ShopVocabulary:
    """Makes and models only: for a shop with no work orders yet, or code without a shop."""
    global _COMMON
    if _COMMON is None:
        _COMMON = ShopVocabulary.build()
    return _COMMON


def _version_query(shop_id: int) -> Any:
    return WorkOrder.objects.filter(shop_id=shop_id).aggregate(n=Count("id"), latest=Max("updated_at"))


def _rows_query(shop_id: int) -> Any:
    return (
        WorkOrder.objects.filter(shop_id=shop_id)
        .values_list("customer_last_name", "vehicle_make", "vehicle_model")
        .distinct()
        .order_by()
    )


def _fresh(shop_id: int) -> ShopVocabulary | None:
    """The cached vocabulary if its version was checked recently enough not to check again."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(shop_id)
        if hit and now - _checked.get(shop_id, 0.0) < VERSION_CHECK_SECONDS and now - hit[1] < MAX_AGE_SECONDS:
            _cache.move_to_end(shop_id)
            return hit[2]
    return None


def _cached(shop_id: int, version: Any) -> ShopVocabulary | None:
    now = time.monotonic()
    with _lock:
        _checked[shop_id] = now
        hit = _cache.get(shop_id)
        if hit and hit[0] == version and now - hit[1] < MAX_AGE_SECONDS:
            _cache.move_to_end(shop_id)
            return hit[2]
    return None


def _stale(shop_id: int, exc: DatabaseError) -> ShopVocabulary:
    """The cached vocabulary, however old, when the database can't be asked (a restart mid-call): the
    call goes on understanding names and cars as of a moment ago. Re-raises `exc` if there is none."""
    with _lock:
        hit = _cache.get(shop_id)
    if hit is None:
        raise exc
    logger.warning("shop %s: database unavailable, using the vocabulary cached before (%s)", shop_id, exc)
    return hit[2]


def _store(shop_id: int, version: Any, vocab: ShopVocabulary) -> ShopVocabulary:
    with _lock:
        _cache[shop_id] = (version, time.monotonic(), vocab)
        _cache.move_to_end(shop_id)
        while len(_cache) > MAX_SHOPS:
            evicted, _ = _cache.popitem(last=False)
            _checked.pop(evicted, None)
    return vocab


def shop_vocabulary(shop_id: int) -> ShopVocabulary:
    if (vocab := _fresh(shop_id)) is not None:
        return vocab
    version = tuple(_version_query(shop_id).values())
    if (vocab := _cached(shop_id, version)) is not None:
        return vocab
    return _store(shop_id, version, ShopVocabulary.build(list(_rows_query(shop_id))))


async def ashop_vocabulary(shop_id: int) -> ShopVocabulary:
    if (vocab := _fresh(shop_id)) is not None:
        return vocab
    try:
        version = tuple(
            (
                await WorkOrder.objects.filter(shop_id=shop_id).aaggregate(n=Count("id"), latest=Max("updated_at"))
            ).values()
        )
        if (vocab := _cached(shop_id, version)) is not None:
            return vocab
        rows = [row async for row in _rows_query(shop_id)]
    except DatabaseError as exc:
        return _stale(shop_id, exc)
    return _store(shop_id, version, ShopVocabulary.build(rows))


def forget(shop_id: int | None = None) -> None:
    """Drop cached vocabularies (one shop, or all): tests, and after bulk edits that skip updated_at."""
    with _lock:
        if shop_id is None:
            _cache.clear()
            _checked.clear()
        else:
            _cache.pop(shop_id, None)
            _checked.pop(shop_id, None)
