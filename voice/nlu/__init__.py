"""Natural-language understanding for the offline engine: normalising words, numbers, vocabularies,
service concepts, and `understand()` (intent + entities for one utterance)."""

from __future__ import annotations

from voice.nlu.understand import Understanding, understand, vehicles_in
from voice.nlu.vocab import ShopVocabulary, Vehicle, ashop_vocabulary, common_vocabulary, shop_vocabulary

__all__ = [
    "ShopVocabulary",
    "Understanding",
    "Vehicle",
    "ashop_vocabulary",
    "common_vocabulary",
    "shop_vocabulary",
    "understand",
    "vehicles_in",
]
