"""Offline recognition. Synthetic speech is recognised poorly and unevenly (shared/protocols.md D), so
these tests assert coarse facts with tolerance — segment timing, a closed set, key words — never exact
transcripts. Accuracy and speed are measured by bench/asr_eval.py."""

from __future__ import annotations

import math
import re
import shutil
from collections import defaultdict

import pytest

from voice import asr
from voice.asr import (
    Recognizer,
    RecognizerPool,
    ShopVocabulary,
    SpeechStarted,
    Utterance,
    UtteranceDetector,
    build_domain_model,
    normalize_text,
    number_words,
    train_arpa,
)
from voice.asr import model as asr_model
from voice.audio import MULAW_8K, PCM16_16K, silence
from voice.testing.speech import caller_audio, caller_frames, through_phone

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
# The phones the bundled acoustic model knows: those its dictionary uses.
CMU_PHONES = {p for variants in asr_model._cmudict().values() for v in variants for p in v.split()}

VOCABULARY = ShopVocabulary(
    shop_name="Demo Auto Repair",
    customer_names=("John Smith", "Anna Kowalski", "Tran Nguyen", "Zbigniew Przybylski", "Ola Qwertzowski"),
    vehicles=(("Honda", "Civic"), ("Subaru", "Outback"), ("Ford", "F-150")),
    ro_numbers=("4512", "10873"),
    services=("Oil change", "Brake service"),
)


@pytest.fixture(scope="module")
def domain_model(tmp_path_factory):
    return build_domain_model(VOCABULARY, tmp_path_factory.mktemp("asr"))


@pytest.fixture(scope="module")
def recognizer(domain_model):
    return Recognizer(domain_model)


def phone(text: str, **kwargs) -> bytes:
    """`text` spoken, as our side hears it after a phone call (PCM16 16 kHz)."""
    return through_phone(caller_audio(text, fmt=PCM16_16K, **kwargs), 16000)


def test_it_spells_out_what_callers_say():
    assert " ".join(normalize_text("My 2018 Honda CR-V")) == "my twenty eighteen honda c r v"
    assert " ".join(normalize_text("RAV4, F-150 & BMW X5")) == "rav four f one fifty and b m w x five"
    assert " ".join(normalize_text("RO #10873, it's done!")) == "ro one zero eight seven three it's done"
    assert number_words(2005) == "two thousand five"
    assert number_words(101) == "one oh one"
    assert number_words(1999) == "nineteen ninety nine"


def test_it_writes_a_language_model_whose_probabilities_sum_to_one():
    corpus = ["is my car ready", "is my truck ready", "is it done", "my car is done", "yes", "no thanks"]
    unigrams, bigrams, trigrams = parse_arpa(train_arpa(corpus))
    vocab = [w for w in unigrams if w != "<s>"]

    def p(word, context):
        if len(context) == 2 and (*context, word) in trigrams:
            return 10 ** trigrams[(*context, word)][0]
        if len(context) == 2:
            back = bigrams.get(context, (0, 0))[1]
            return 10**back * p(word, context[1:])
        if (*context, word) in bigrams:
            return 10 ** bigrams[(*context, word)][0]
        return 10 ** unigrams[context[0]][1] * 10 ** unigrams[word][0]

    for context in [("<s>",), ("my",), ("<s>", "is"), ("is", "my"), ("my", "car"), ("car", "is")]:
        assert math.isclose(sum(p(w, context) for w in vocab), 1.0, rel_tol=1e-4), context
    assert p("ready", ("my", "car")) > p("done", ("my", "car"))


def parse_arpa(text: str):
    tables: list[dict] = [{}, {}, {}]
    order = 0
    for line in text.splitlines():
        if m := re.match(r"\\(\d)-grams:", line):
            order = int(m.group(1))
            continue
        parts = line.split("\t")
        if order and len(parts) >= 2:
            words = tuple(parts[1].split())
            key = words[0] if order == 1 else words
            tables[order - 1][key] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return tables


def test_it_builds_a_model_once_per_vocabulary(tmp_path):
    first = build_domain_model(VOCABULARY, tmp_path)
    stamp = (first / "domain.lm").stat().st_mtime_ns
    assert build_domain_model(VOCABULARY, tmp_path) == first
    assert (first / "domain.lm").stat().st_mtime_ns == stamp
    changed = ShopVocabulary(**{**VOCABULARY.__dict__, "ro_numbers": ("4512", "10873", "777")})
    assert build_domain_model(changed, tmp_path) != first
    reordered = ShopVocabulary(**{**VOCABULARY.__dict__, "customer_names": VOCABULARY.customer_names[::-1]})
    assert build_domain_model(reordered, tmp_path) == first


def test_it_knows_how_to_say_every_word_of_the_model(domain_model):
    lm_words = set(parse_arpa((domain_model / "domain.lm").read_text())[0]) - {"<s>", "</s>"}
    pronunciations = defaultdict(list)
    for line in (domain_model / "domain.dict").read_text().splitlines():
        word, phones = line.split(" ", 1)
        pronunciations[re.sub(r"\(\d+\)$", "", word)].append(phones.split())
    assert lm_words <= set(pronunciations)
    assert {"kowalski", "nguyen", "qwertzowski", "civic", "outback", "saturday"} <= lm_words
    assert all(set(p) <= CMU_PHONES for variants in pronunciations.values() for p in variants)


def test_it_guesses_pronunciations_without_espeak():
    for word in ("przybylski", "zbigniew", "kowalski", "chevy"):
        phones = asr.letter_pronunciation(word).split()
        assert phones and set(phones) <= CMU_PHONES


@needs_espeak
def test_it_asks_espeak_for_names_missing_from_the_dictionary(domain_model):
    import json

    guessed = json.loads((domain_model / "manifest.json").read_text())["guessed_pronunciations"]
    assert guessed["qwertzowski"] == "espeak-ng"


def test_it_hears_nothing_in_silence(recognizer):
    result = recognizer.decode(silence(500, PCM16_16K))
    assert result.text == ""
    assert result.audio_seconds == pytest.approx(0.5)


def test_it_shares_one_decoder_per_model(domain_model):
    pool = RecognizerPool(max_models=1)
    first = pool.get(domain_model)
    assert pool.get(str(domain_model)) is first
    pool.get(None)  # the bundled model pushes the domain model out
    assert len(pool) == 1
    assert pool.get(domain_model) is not first


@needs_espeak
def test_it_finds_utterances_at_the_right_times():
    detector = UtteranceDetector(input_format=MULAW_8K)
    frames = caller_frames("yes", lead_ms=1000, trail_ms=1200) + caller_frames("goodbye then", trail_ms=1000)
    events = []
    for frame in frames:  # exactly what the Twilio path delivers: 20 ms μ-law frames
        events += detector.feed(frame)
    events += detector.flush()

    starts = [e for e in events if isinstance(e, SpeechStarted)]
    utterances = [e for e in events if isinstance(e, Utterance)]
    yes_ms = len(caller_frames("yes", lead_ms=1000, trail_ms=1200)) * 20 / 1000
    assert len(utterances) == 2 and len(starts) == 2
    assert abs(utterances[0].start - 1.0) < 0.35
    assert utterances[0].end < yes_ms
    assert abs(utterances[1].start - yes_ms) < 0.35
    assert all(s.at == u.start for s, u in zip(starts, utterances, strict=True))
    assert all(u.duration > 0.2 for u in utterances)


@needs_espeak
def test_it_cuts_an_endless_utterance():
    detector = UtteranceDetector(max_seconds=1.0)
    speech = caller_audio("please tell me about all of the services that you offer at your shop", fmt=PCM16_16K)
    events = detector.feed(silence(300, PCM16_16K) + speech + silence(1000, PCM16_16K)) + detector.flush()
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) >= 3
    assert all(u.duration <= 1.05 for u in utterances)


@needs_espeak
def test_it_recognises_a_closed_set_through_the_phone(recognizer):
    choices = ["yes", "no", "transfer me", "goodbye"]
    right = sum(recognizer.decode(phone(word), choices=choices).text == word for word in choices)
    assert right >= 3
    assert recognizer.decode(phone("maybe later"), choices=choices).text in {"", *choices}


@needs_espeak
def test_it_catches_key_words_with_the_domain_model(recognizer):
    phrases = {
        "Is my Honda Civic ready?": "civic",
        "What time do you close on Saturday?": "saturday",
        "Can I talk to a person?": "person",
        "Where are you located?": "located",
        "My last name is Kowalski.": "kowalski",
        "Do you do oil changes?": "oil",
    }
    hits = sum(key in recognizer.decode(phone(text)).words for text, key in phrases.items())
    assert hits >= 4


@needs_espeak
async def test_it_decodes_off_the_event_loop(recognizer):
    result = await recognizer.adecode(phone("yes"), choices=["yes", "no"])
    assert result.text in {"yes", "no", ""}
    assert result.decode_seconds > 0


@pytest.mark.django_db
def test_it_takes_the_vocabulary_from_the_shops_open_work_orders():
    from shops.models import WorkOrder
    from shops.tests.factories import ServiceFactory, ShopFactory, WorkOrderFactory

    shop = ShopFactory(name="Kowalski Garage")
    ServiceFactory(shop=shop, name="Brake service")
    WorkOrderFactory(
        shop=shop, number="4512", customer_name="Anna Nowak", vehicle_make="Subaru", vehicle_model="Outback"
    )
    WorkOrderFactory(shop=shop, number="999", customer_name="Old Customer", status=WorkOrder.Status.PICKED_UP)
    WorkOrderFactory(number="555")  # another shop

    vocabulary = ShopVocabulary.from_shop(shop)

    assert vocabulary.shop_name == "Kowalski Garage"
    assert vocabulary.customer_names == ("Anna Nowak",)
    assert vocabulary.vehicles == (("Subaru", "Outback"),)
    assert vocabulary.ro_numbers == ("4512",)
    assert vocabulary.services == ("Brake service",)
