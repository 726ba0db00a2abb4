"""One caller utterance → intent + entities, for the offline engine.

Rules over normalised words, with fuzzy matching against the shop's vocabulary. Each intent collects
evidence from weighted cues; the strongest wins, and what the receptionist last asked (`awaiting`)
turns short answers ("yes", "Smith, the Civic", "the truck") into the intent they answer. Entities are
taken from the same words: last names (only the shop's own customers), makes/models/body types, the
year, RO numbers (spoken digits included), days and times, service concepts, yes/no.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from voice.context import Awaiting
from voice.intents import Intent
from voice.nlu.catalog import concepts_in
from voice.nlu.numbers import digits_in
from voice.nlu.text import COMMON_WORDS, Lexicon, word_set, words_of
from voice.nlu.vehicles import AMBIGUOUS_MODELS, BODY_WORDS, needs_make
from voice.nlu.vocab import ShopVocabulary, Vehicle, make_key, model_key

LATEST_MODEL_YEAR = 2035  # a four-digit number up to this, next to a make or model, is a year
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HOLIDAYS = ("holiday", "holidays", "christmas", "thanksgiving", "easter", "new years", "fourth of july",
            "4th of july", "july 4th", "labor day", "memorial day", "independence day", "xmas")  # fmt: skip

# Words the intent rules key on; a near-miss spelling of one is read as the word ("satuday", "adress").
KEYWORDS = Lexicon(
    set(WEEKDAY_NAMES)
    | word_set(
        """
        hours open opening closing closed close today tomorrow tonight weekend weekends address located location
        directions street where transfer operator representative person human someone somebody manager
        receptionist status ready finished update progress vehicle truck appointment schedule services service
        alignment brakes brake tires tire inspection transmission battery diagnostic oil change conditioning
        engine suspension exhaust recharge rotation estimate approve goodbye thanks thank parking mechanic
        technician advisor available customer
        """
    )
)

VEHICLE_WORDS = frozenset({"car", "truck", "vehicle", "van", "suv", "jeep", "ride", "auto", "pickup", "minivan",
                           "sedan", "coupe", "hatchback", "wagon", "crossover", "motorcycle", "rig"})  # fmt: skip
OWNER_WORDS = frozenset({"my", "our", "the", "his", "her", "their", "wifes", "wife", "husbands", "husband",
                         "moms", "dads", "sons", "daughters", "a", "an"})  # fmt: skip
NAME_CUES = frozenset({"name", "under", "mr", "mrs", "ms", "miss", "dr", "mister", "surname"})
YES = frozenset({"yes", "yeah", "yep", "yup", "sure", "please", "okay", "alright", "correct", "right", "absolutely",
                 "definitely", "certainly", "affirmative", "ya", "yes please", "go ahead", "do it", "sounds good",
                 "that would be great", "of course", "i would", "connect me", "please do"})  # fmt: skip
NO = frozenset({"no", "not", "nothing", "negative", "never mind", "nevermind", "no thanks", "no thank you",
                "i am good", "i am fine", "that is okay", "not now", "not right now", "dont", "nah"})  # fmt: skip
GREETINGS = frozenset({"hi", "hello", "hey", "good morning", "good afternoon", "good evening", "howdy", "yo",
                       "hi there", "hello there", "hey there"})  # fmt: skip


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


VEH = r"(?:car|truck|vehicle|van|suv|jeep|ride|auto|pickup|minivan|sedan|coupe|wagon|crossover|motorcycle)"
MY = r"(?:my|our|the|his|her|their|wifes|husbands|moms|dads|sons|daughters)"

# (pattern, weight) per intent. Patterns run on the normalised text (words joined by single spaces).
YOU = r"(?:you|y|ya|u|you all|you guys|the shop|your shop|it|the garage)"
CUES: dict[Intent, list[tuple[re.Pattern[str], float]]] = {
    Intent.TRANSFER_HUMAN: [
        (_rx(r"\b(real|live|actual|an actual|a real) (person|human|people|body|man|woman|rep|representative)\b"), 5),
        (
            _rx(
                r"\b(talk|speak|chat) (to|with) (a|an|the|some|someone|somebody|anyone|anybody|your|one of)\b",
                r"\b(talk|speak) (to|with) (a |the )?(person|human|manager|mechanic|tech|technician|owner|advisor)\b",
            ),
            4,
        ),
        (_rx(r"\b(operator|representative|receptionist|agent|human being|a human|customer service|front desk)\b"), 4),
        (
            _rx(
                r"\b(transfer|connect|patch|put) (me|us)\b",
                r"\bput me through\b",
                r"\btransfer\b(?! case)",
                r"\bget me (a|to|someone|somebody|the)\b",
            ),
            4,
        ),
        (
            _rx(
                r"\b(manager|supervisor|owner|service advisor|service writer|mechanic|technician|somebody|someone|"
                r"anyone|anybody|person|human)\b"
            ),
            1.5,
        ),
        (
            _rx(
                r"^(press |dial )?(a )?(person|human|someone|somebody|agent|operator|representative|zero|0)( please)?$"
            ),
            5,
        ),
        (
            _rx(
                r"\b(person|someone|somebody|anyone|anybody|human|people) (i|we) (can|could) (talk|speak) (to|with)\b",
                r"\b(give|get|find) me (a |an |the |some )?(person|human|someone|somebody|manager|representative)\b",
                r"\b(anyone|anybody|someone|somebody) (there )?(who|that) (can|could) help\b",
            ),
            4,
        ),
        (_rx(r"\b(appointment|book|booking|schedule|reschedule|set up a time|make a reservation|drop in)\b"), 3),
        (
            _rx(
                r"\b(call me back|callback|call back|have someone call|give me a call|leave a message|voicemail)\b",
                r"\b(complaint|complain|speak to someone|not happy|unhappy|ripped off)\b",
            ),
            3,
        ),
        (_rx(r"\b(approve|approval|authorize|go ahead with) (the )?(estimate|work|repair|repairs|quote)\b"), 3),
    ],
    Intent.GOODBYE: [
        (
            _rx(
                r"\b(bye|goodbye|bye bye|see you|see ya|take care|talk to you later)\b",
                r"\bhave a (good|great|nice|wonderful) (day|one|night|evening|weekend|afternoon)\b",
            ),
            4,
        ),
        (
            _rx(
                r"\b(that is (all|it|everything)|that will be (all|it)|that is all i needed|nothing else)\b",
                r"\b(i am all set|all set|i am (good|done)|no more questions|that covers it|that is what i needed)\b",
                r"\b(hang up|end (the )?call|got to go|i have to go|i need to go)\b",
            ),
            3,
        ),
        (
            _rx(
                r"^((okay|alright|great|perfect|cool|awesome|wonderful|got it|sounds good) )*(thank you|thanks|"
                r"thank you very much|thanks a lot|thanks so much|appreciate it|cheers)( (so much|a lot|again|bye))?$"
            ),
            4,
        ),
        (_rx(r"\b(thank you|thanks|appreciate)\b"), 0.5),
    ],
    Intent.GET_HOURS: [
        (_rx(r"\b(hours|business hours|opening hours|store hours|shop hours)\b"), 3),
        (
            _rx(
                r"\b(how late|how early|until when|until what time|what time .*(open|close|closing|shut))\b",
                r"\b(still open|open (today|tomorrow|now|right now|on|this|tonight|late|early|at|until))\b",
                r"\bopen (saturday|sunday|monday|tuesday|wednesday|thursday|friday|weekends?)\b",
                rf"\b(are|is) {YOU} (guys |all )?(open|closed)\b",
                rf"\bwhen (do|does|are|will) {YOU} (guys |all )?(open|close|closing|opening|shut|reopen)\b",
                r"\b(closing time|opening time|what time do you|when do you open|when do you close)\b",
            ),
            4,
        ),
        (_rx(r"\b(open|opened|opening|close|closing|closed|shut|reopen)\b"), 2),
        (_rx(r"\b(weekend|weekends|holiday|holidays|christmas|thanksgiving|new years|labor day|memorial day)\b"), 1),
        (_rx(r"\b(what time|when)\b"), 0.5),
        (
            _rx(
                r"\b(drop (it|my car|off|the car)|come (in|by)|stop by|swing by)\b",
                r"\bbring (it|my car|the car) (in|by)\b",
            ),
            1,
        ),
    ],
    Intent.GET_LOCATION: [
        (_rx(r"\b(address|located|location|directions|direction)\b"), 4),
        (
            _rx(
                r"\bwhere (are|is|r) (you|y|you all|you guys|the shop|your shop|your place|your garage|the garage|"
                r"your business|you located|it located|ya)\b",
                r"\bwhere (you|you all|y|ya) (at|located)\b",
                r"\bwhere (is|are) (it|that|you) at\b",
                r"\bhow (do|can|would) (i|we) (get|find|reach) (there|to you|you|to the shop|to your)\b",
                r"\b(find you|find the shop|find your|what street|which street|cross street|what road|zip code)\b",
                r"\b(what city|what town|which side of|gps|google maps|maps|landmark|near what|close to what)\b",
                r"\b(where do i (park|go|bring|drop|take)|where should i (park|go|bring|drop)|parking)\b",
            ),
            4,
        ),
        (
            _rx(
                r"\bwhere (exactly |abouts )?(are|is|r) (you|y|you all|you guys|the shop|your shop|the garage|ya)\b",
                r"\bwhere (you|you all|you guys) (are|is)\b",
                r"\b(are|is) (you|you guys|you all|the shop|it) (near|close to|by|next to|across from|behind|"
                r"off of|off|on|in|around)\b",
                r"\b(where|can|do) (can |should |do )?(i|we) park\b|\bpark\b",
                r"\b(way|how) to (get|go) (to you|there|to the shop|to your|over there)\b|\bwhereabouts\b",
                r"\bwhere (do|should|would) (i|we) (turn|go|exit|head)\b",
                r"\b(find|locate) (the|your) (place|shop|garage|building|business)\b",
            ),
            3,
        ),
        (_rx(r"\bwhere\b"), 1.5),
        (_rx(r"\b(near|nearby|close by|around the corner|next to)\b"), 0.5),
    ],
    Intent.GET_SERVICES: [
        (
            _rx(
                r"\bdo (you|y|ya|you all|you guys|u) (guys |all |folks )?(do|fix|repair|work on|service|handle|"
                r"offer|sell|replace|install|change|take care of|deal with|check|look at|specialize|carry|"
                r"perform|have)\b"
            ),
            2.5,
        ),
        (
            _rx(
                r"\b(services|service list|what (do|can) you (guys )?(do|fix|offer|work on))\b",
                r"\b(what kind of (work|services|repairs|cars|vehicles)|what (work|repairs) do you|specialize)\b",
            ),
            3,
        ),
        (_rx(r"\b(how much|price|prices|pricing|cost|costs|charge|charges|quote|rate|rates|expensive|cheap)\b"), 2),
        (_rx(r"\bhow long (does|do|will|would) (a |an |the |it take to )?\w+"), 1.5),
        (
            _rx(
                r"\bcan (you|y|ya|you all|you guys) (guys )?(fix|repair|look at|check|replace|change|do|handle)\b",
                r"\b(i need|need|looking for|want|get) (a |an |my |new |some )?\w*( \w+)? (done|changed|replaced|"
                r"fixed|checked|looked at|rotated|aligned|inspected|recharged|serviced)\b",
            ),
            1.5,
        ),
    ],
    Intent.CHECK_STATUS: [
        (_rx(rf"\b{MY} {VEH}\b", rf"\b{MY} (\w+ )?{VEH}\b"), 2),
        (
            _rx(
                r"\b(ready|done|finished|status|update|updates|progress|fixed yet|repaired|completed|complete|eta)\b",
                r"\b(any news|any word|heard anything|hear back|still working|working on it|coming along)\b",
                r"\blooking like\b",
            ),
            2,
        ),
        (
            _rx(
                r"\b(pick (it|him|her|them|my|the|up)|pickup|come get|come pick|collect (it|my))\b",
                r"\bget (it|my car|my truck) back\b",
                r"\b(is|was) (it|my \w+|the \w+) (ready|done|finished|fixed)\b",
                r"\bhow (is|are) (it|my|the) .*(going|coming|looking|doing)\b",
                r"\bwhere (is|are) my\b",
                r"\bwhat is (going on|happening|the story|the deal|the status) with\b",
                r"\b(did|have) (you|they|you guys) (find|figure|finish|fix|get|start|look)\b",
                r"\b(parts|part) (come|came|in|arrived|arrive|here)\b",
                r"\b(how much longer|how long until|when will)\b",
                r"\bwhat did (you|they) find\b",
                r"\bdid (it|my \w+|the \w+|she|he) (pass|fail)\b",
            ),
            3,
        ),
        (_rx(r"\b(work order|repair order|ro|ticket|invoice|order number|claim number|job number)\b"), 3),
        (
            _rx(
                r"\b(checking on|check on|calling about|calling on|following up|follow up|asking about)\b",
                r"\b(inquire about|find out about)\b",
            ),
            2,
        ),
        (_rx(r"\b(estimate|diagnosis|diagnostic|approval|approve)\b"), 0.5),
    ],
}

INJECTION = _rx(
    r"\b(ignore|disregard|forget|override|bypass) (all |any |your |the |previous |prior |above |my )*"
    r"(instructions|rules|prompt|programming|guidelines|restrictions|policy|policies)\b",
    r"\b(system prompt|developer mode|jailbreak|you are now|act as|pretend (you are|to be)|admin mode|debug mode|"
    r"sudo)\b",
    r"\b(all|every|each|list|dump|export|read me all|read out) (of )?(the |your )?(work orders?|orders?|customers?|"
    r"records?|cars?|vehicles?|tickets?|repair orders?|phone numbers?|names?|clients?)\b",
    r"\b(customer|client) (list|names|numbers|phone numbers|database|records)\b",
    r"\b(everyone|everybody|anyone|other (customers|people)|someone else|somebody else)s? (car|cars|order|orders|"
    r"status|vehicle|info|information|phone|number)\b",
    r"\bwho (else )?(has|owns|brought|dropped)\b",
)  # fmt: skip

_BUSINESS_HOURS_Q = {
    "open_now": _rx(r"\b(open (now|right now|at the moment|currently|yet|today)|currently open|still open)\b",
                    r"^(are|r) (you|y|you guys|you all) (guys |all )?open$", r"\b(are|is) .*open\b"),
    "closing": _rx(r"\b(close|closing|closed|shut|how late|until when|until what time|open until|open late|"
                   r"stay open|last drop)\b"),
    "opening": _rx(r"\b(open|opening|how early|reopen|first thing|start|earliest)\b"),
}  # fmt: skip


@dataclass
class Understanding:
    text: str
    words: list[str]
    nums: list[str]
    intent: Intent = Intent.UNKNOWN
    scores: dict[str, float] = field(default_factory=dict)
    also: list[Intent] = field(default_factory=list)  # other strong intents in the same breath
    last_names: list[str] = field(default_factory=list)
    first_name: str = ""  # the word before a last name ("Jane Smith"), to tell two Smiths apart
    vehicles: list[Vehicle] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    year: int | None = None
    ro_numbers: list[str] = field(default_factory=list)
    days: list[str] = field(default_factory=list)  # 'today', 'tomorrow', 'monday'…, 'weekend', 'holiday'
    time: dt.time | None = None
    hours_question: str = ""  # open_now / closing / opening / day / week / holiday
    services: list[str] = field(default_factory=list)
    yes: bool = False
    no: bool = False
    greeting: bool = False
    injection: bool = False
    dont_know: bool = False  # "I don't have it", "not sure"
    vehicle_tokens: set[int] = field(default_factory=set)  # positions in `nums` used by vehicles

    @property
    def makes(self) -> list[str]:
        return [v.make for v in self.vehicles if v.make and not v.model]

    @property
    def models(self) -> list[Vehicle]:
        return [v for v in self.vehicles if v.model]

    @property
    def has_identity(self) -> bool:
        """Something that can verify (or narrow) a work order: a name, vehicle, body, year or RO number."""
        return bool(self.last_names or self.vehicles or self.bodies or self.ro_numbers or self.year)


def understand(text: str, vocab: ShopVocabulary, *, awaiting: str = Awaiting.NOTHING) -> Understanding:
    raw_words = words_of(text)
    words = [KEYWORDS.correct(w) if w not in COMMON_WORDS and not vocab.names.get(w) else w for w in raw_words]
    nums = digits_in(raw_words)
    u = Understanding(text=" ".join(words), words=words, nums=nums)
    _vehicles(u, vocab, awaiting)
    _ro_numbers(u, awaiting)
    _names(u, raw_words, vocab, awaiting)
    _days_and_time(u)
    u.services = concepts_in(words)
    _yes_no(u)
    u.injection = bool(INJECTION.search(u.text))
    _classify(u, awaiting)
    return u


# ---------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------
def _vehicle_context(tokens: list[str], i: int, n: int, awaiting: str, vocab: ShopVocabulary) -> bool:
    """Is the word at tokens[i:i+n] used as a vehicle? ("my Escape", "2016 Edge", "the Ford Ranger")."""
    if awaiting in (Awaiting.VERIFICATION, Awaiting.WHICH_VEHICLE):
        return True
    before = tokens[max(0, i - 2) : i]
    after = tokens[i + n : i + n + 1]
    if any(w in OWNER_WORDS for w in before[-1:]):
        return True
    if any(w.isdigit() and len(w) == 4 for w in before):
        return True
    if any(vocab.make(w, fuzzy=False) for w in before):
        return True
    return any(w in VEHICLE_WORDS or w in ("is", "ready", "done") for w in after)


def _vehicles(u: Understanding, vocab: ShopVocabulary, awaiting: str) -> None:
    tokens = u.nums
    i = 0
    longest = min(vocab.longest_model, 3)
    seen: set[tuple[str, str]] = set()

    def add(vehicle: Vehicle) -> None:
        key = (make_key(vehicle.make), model_key(vehicle.model))
        if key not in seen:
            seen.add(key)
            u.vehicles.append(vehicle)

    makes_at: dict[int, str] = {}  # token index → make said there (fuzzy: "hunda" → Honda)
    while i < len(tokens):
        word = tokens[i]
        if word in BODY_WORDS:
            body = BODY_WORDS[word]
            if body not in u.bodies:
                u.bodies.append(body)
            i += 1
            continue
        if word.isdigit() and len(word) == 4 and 1980 <= int(word) <= LATEST_MODEL_YEAR:
            nxt = " ".join(tokens[i + 1 : i + 3])
            if nxt and (vocab.make(tokens[i + 1], fuzzy=False) or vocab.model(tokens[i + 1], fuzzy=False)
                        or any(t in VEHICLE_WORDS for t in tokens[i + 1 : i + 3])):  # fmt: skip
                u.year = int(word)
                i += 1
                continue
        matched = 0
        prev_make = makes_at.get(i - 1)
        for n in range(longest, 0, -1):
            span = tokens[i : i + n]
            if len(span) < n:
                continue
            candidates = vocab.model("".join(span), fuzzy=n == 1 and len(word) >= 4 and word not in COMMON_WORDS)
            if not candidates:
                continue
            key = model_key("".join(span))
            # "1500" or "ES" alone is not a vehicle; a code like "X3" is, if this shop works on one.
            code_on_file = key in vocab.shop_models and not key.isdigit() and not key.isalpha()
            if needs_make(key) and not prev_make and not code_on_file:
                continue
            if key in AMBIGUOUS_MODELS and not _vehicle_context(tokens, i, n, awaiting, vocab):
                continue
            if prev_make:
                fitting = [v for v in candidates if make_key(v.make) == make_key(prev_make)]
                candidates = fitting or [Vehicle(prev_make, candidates[0].model, candidates[0].body)]
            for vehicle in candidates[:1] if prev_make else _one_per_make(candidates):
                add(vehicle)
            # "Honda Civic": the make before the model is part of the same vehicle, not a second one.
            u.vehicles[:] = [v for v in u.vehicles if v.model or make_key(v.make) != make_key(prev_make or "")]
            matched = n
            break
        if matched:
            u.vehicle_tokens.update(range(i, i + matched))
            i += matched
            continue
        make = vocab.make(word, fuzzy=len(word) >= 4 and word not in COMMON_WORDS and not word.isdigit())
        if make and not _make_word_is_something_else(tokens, i):
            add(Vehicle(make, "", ""))
            makes_at[i] = make
        i += 1


def _make_word_is_something_else(tokens: list[str], i: int) -> bool:
    """'Mr Ford', 'my name is Dodge', 'a mini van': make names that are names or words here."""
    word = tokens[i]
    if word not in ("ram", "dodge", "ford", "mini", "genesis", "mercury", "saturn"):
        return False
    before = tokens[max(0, i - 2) : i]
    if NAME_CUES & set(before) or before[-2:] == ["this", "is"]:
        return True
    return word == "mini" and tokens[i + 1 : i + 2] == ["van"]


def _one_per_make(candidates: list[Vehicle]) -> list[Vehicle]:
    """A model name alone ("Civic") stands for one vehicle; keep the first make recorded for it."""
    return candidates[:1]


_RO_CUES = frozenset({"ro", "order", "number", "ticket", "invoice", "reference", "claim", "job", "repair", "work",
                      "confirmation", "is"})  # fmt: skip
_RO_TOKEN = re.compile(r"^[a-z]{0,2}\d{2,9}$")
_TIME_WORDS = frozenset({"at", "by", "until", "after", "before", "around", "am", "pm", "oclock", "clock", "minutes",
                         "hours", "hour", "days", "day", "weeks", "miles", "dollars", "bucks"})  # fmt: skip


def _ro_numbers(u: Understanding, awaiting: str) -> None:
    tokens = u.nums
    for i, tok in enumerate(tokens):
        if not _RO_TOKEN.match(tok) or (u.year and tok == str(u.year)) or i in u.vehicle_tokens:
            continue
        digits = re.sub(r"\D", "", tok)
        if len(digits) >= 10:  # a phone number, not an RO
            continue
        before = tokens[max(0, i - 3) : i]
        after = tokens[i + 1 : i + 2]
        cued = any(w in ("ro", "order", "ticket", "invoice", "reference", "claim", "job") for w in before) or (
            "number" in before
        )
        near_time_word = (before[-1:] and before[-1] in _TIME_WORDS) or (after and after[0] in _TIME_WORDS)
        if near_time_word and not cued:
            continue
        if cued or (len(digits) >= 3 and awaiting in (Awaiting.VERIFICATION, Awaiting.WHICH_VEHICLE)):
            u.ro_numbers.append(tok.upper() if not tok.isdigit() else tok)
        elif len(digits) >= 4 and "ro" not in before and not (len(digits) == 4 and 1980 <= int(digits) <= 2035):
            u.ro_numbers.append(tok)


def _names(u: Understanding, raw_words: list[str], vocab: ShopVocabulary, awaiting: str) -> None:
    """Last names of the shop's own customers, said plainly or after a cue ("name is", "under", "Mr")."""
    if not vocab.names:
        return
    tokens = raw_words
    found: list[tuple[int, str]] = []
    for i, word in enumerate(tokens):
        if word.isdigit():
            continue
        before = tokens[max(0, i - 3) : i]
        # "this is (Linda) White", "I am (Tyrone) Jackson", "name is White", "under White", "Mr White",
        # "White here": a first name may stand between the cue and the last name.
        lead = [before[-2:], before[-3:-1]]
        cued = (
            bool(NAME_CUES & set(before))
            or any(pair in (["this", "is"], ["i", "am"], ["it", "is"]) for pair in lead if len(pair) == 2)
            or (tokens[i + 1 : i + 2] in (["here"], ["speaking"]))
        )
        answering = awaiting in (Awaiting.VERIFICATION,) and not _followed_by_vehicle(tokens, i, vocab)
        fuzzy = cued or answering
        name = vocab.name(word, fuzzy=fuzzy) if len(word) > 1 else None
        if name is None and i + 1 < len(tokens) and (cued or answering):
            name = vocab.name(word + tokens[i + 1])  # "o neil", "mc donald"
        if name is None:
            continue
        if vocab.is_wordy_name(word) and not (cued or answering):
            continue
        found.append((i, name))
    # "John Smith": of two names side by side the second is the last name.
    kept = [(i, n) for k, (i, n) in enumerate(found) if not (k + 1 < len(found) and found[k + 1][0] == i + 1)]
    for i, name in kept:
        if name not in u.last_names:
            u.last_names.append(name)
        previous = tokens[i - 1] if i else ""
        if previous.isalpha() and len(previous) > 1 and previous not in COMMON_WORDS and previous not in NAME_CUES:
            u.first_name = previous


def _followed_by_vehicle(tokens: list[str], i: int, vocab: ShopVocabulary) -> bool:
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    return bool(nxt) and (
        nxt in VEHICLE_WORDS or bool(vocab.make(nxt, fuzzy=False)) or bool(vocab.model(nxt, fuzzy=False))
    )


def _days_and_time(u: Understanding) -> None:
    text = u.text
    for word in u.words:
        if word in WEEKDAY_NAMES and word not in u.days:
            u.days.append(word)
    for word, day in (("today", "today"), ("tonight", "today"), ("tomorrow", "tomorrow")):
        if re.search(rf"\b{word}\b", text) and day not in u.days:
            u.days.append(day)
    if re.search(r"\bweekends?\b", text):
        u.days.append("weekend")
    if re.search(r"\bweekdays?\b|\bmonday (through|to|thru) friday\b|\bduring the week\b", text):
        u.days.append("weekdays")
    if any(re.search(rf"\b{h}\b", text) for h in HOLIDAYS):
        u.days.append("holiday")
    u.time = _time_in(u.nums)


def _time_in(tokens: list[str]) -> dt.time | None:
    for i, tok in enumerate(tokens):
        if tok in ("noon", "midday"):
            return dt.time(12)
        if not tok.isdigit() or len(tok) > 4:
            continue
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        after2 = tokens[i + 2] if i + 2 < len(tokens) else ""
        meridiem = next((m for m in (after, after2) if m in ("am", "pm")), "")
        if (
            before not in ("at", "by", "until", "after", "before", "around", "about", "past")
            and not meridiem
            and after not in ("oclock", "clock")
        ):
            continue
        value = int(tok)
        minute = 0
        if len(tok) >= 3:
            value, minute = divmod(value, 100)
        elif after.isdigit() and len(after) == 2 and int(after) < 60:
            minute = int(after)
        if not 1 <= value <= 12 or minute >= 60:
            if 13 <= value <= 23 and minute < 60:
                return dt.time(value, minute)
            continue
        evening = "evening" in tokens or "tonight" in tokens or "night" in tokens or "afternoon" in tokens
        morning = "morning" in tokens
        if meridiem == "pm" or evening or (not meridiem and not morning and value <= 6):
            value = value % 12 + 12
        elif value == 12 and meridiem == "am":
            value = 0
        return dt.time(value, minute)
    return None


def _yes_no(u: Understanding) -> None:
    text = u.text
    first = " ".join(u.words[:2])
    u.yes = any(text == y or text.startswith(y + " ") or first == y for y in YES)
    u.no = (not u.yes and any(text == n or text.startswith(n + " ") for n in NO)) or text in ("no", "nope")
    u.greeting = text in GREETINGS or any(text.startswith(g + " ") and len(u.words) <= 3 for g in GREETINGS)
    u.dont_know = bool(re.search(r"\b(do not|dont) (know|have|remember|recall)\b|\bnot sure\b|\bno idea\b|"
                                 r"\b(lost|cannot find|can not find)\b", text))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Intent
# ---------------------------------------------------------------------------------------------
_STATUS_WORDS = _rx(
    r"\b(ready|done|finished|status|update|updates|progress|fixed|repaired|completed|complete|eta|news|word)\b",
    r"\b(pick (it|him|her|them|my|the|up)|pickup|come get|how much longer|how long until|when will|parts)\b",
    r"\b(pass|passed|fail|failed)\b",
)
_PRIORITY = [Intent.TRANSFER_HUMAN, Intent.CHECK_STATUS, Intent.GET_HOURS, Intent.GET_LOCATION,
             Intent.GET_SERVICES, Intent.GOODBYE]  # fmt: skip
THRESHOLD = 2.0


def _classify(u: Understanding, awaiting: str) -> None:
    text = u.text
    scores: dict[Intent, float] = {}
    for intent, cues in CUES.items():
        scores[intent] = sum(weight for pattern, weight in cues if pattern.search(text))
    owned_vehicle = bool(re.search(rf"\b{MY} (\w+ )?(\w+ )?{VEH}\b", text)) or (
        bool(u.vehicles) and bool(re.search(r"\b(my|our|the|his|her)\b", text))
    )
    if u.vehicles or u.year:
        scores[Intent.CHECK_STATUS] += 2 if owned_vehicle or u.last_names else 0.5
    if u.ro_numbers:
        scores[Intent.CHECK_STATUS] += 3
    if u.last_names:
        scores[Intent.CHECK_STATUS] += 2
    if u.vehicles and len(u.words) <= 4 and max(scores.values()) < 2:
        scores[Intent.CHECK_STATUS] += 1.5  # "the Honda Civic": naming a vehicle is about that vehicle
    status_words = bool(_STATUS_WORDS.search(text))
    if u.services:
        # "Is my oil change done?" asks about a car; "do you do oil changes?" and "my car is pulling to
        # the left" ask about the shop's work.
        scores[Intent.GET_SERVICES] += 1 if status_words and scores[Intent.CHECK_STATUS] >= 2 else 2.5
    if re.search(r"\b(what time|when) (can|could|should) (i|we) (drop|bring|come)\b", text) or (
        re.search(r"\b(drop|bring) (it |my \w+ |the \w+ )?(off|in)\b|\bdrop (it|my \w+|the \w+) off\b", text)
        and (u.time or u.days)
        and not status_words
    ):
        scores[Intent.GET_HOURS] += 3  # "can I drop my car off at 7?" is a question about opening hours
    if re.search(r"\bwhere (is|are) (my|our|the) (\w+ )?(\w+ )?" + VEH, text) or re.search(
        r"\bwhere (is|are) my\b", text
    ):
        scores[Intent.GET_LOCATION] = max(0.0, scores[Intent.GET_LOCATION] - 4)
    if re.search(r"\b(pick (it|my|the)|pickup|pick up)\b", text) and scores[Intent.CHECK_STATUS] >= 2:
        scores[Intent.GET_HOURS] = min(scores[Intent.GET_HOURS], 2.5)
    if u.days and scores[Intent.GET_HOURS] >= 2:
        scores[Intent.GET_HOURS] += 1
    elif (u.days or u.time) and max(scores.values()) < 2 and not u.has_identity:
        scores[Intent.GET_HOURS] += 2  # "and on Saturday?", "you guys work weekends": days are about hours
    if scores[Intent.GET_SERVICES] >= 2 and re.search(r"\bhow long\b", text) and not owned_vehicle:
        scores[Intent.CHECK_STATUS] = min(scores[Intent.CHECK_STATUS], 1)
    u.scores = {str(k): v for k, v in scores.items()}

    best = max(_PRIORITY, key=lambda i: (scores[i], -_PRIORITY.index(i)))
    intent = best if scores[best] >= THRESHOLD else Intent.UNKNOWN

    # Short answers to what the receptionist just asked.
    strong_other = max((s for i, s in scores.items() if i not in (Intent.CHECK_STATUS, Intent.GOODBYE)), default=0)
    if awaiting in (Awaiting.VERIFICATION, Awaiting.WHICH_VEHICLE) and strong_other < 4:
        if u.has_identity or u.dont_know or (u.no and intent == Intent.UNKNOWN):
            intent = Intent.CHECK_STATUS
    elif awaiting == Awaiting.TRANSFER_OFFER and intent in (Intent.UNKNOWN, Intent.GOODBYE) and u.yes:
        intent = Intent.TRANSFER_HUMAN
    elif awaiting == Awaiting.ANYTHING_ELSE and intent == Intent.UNKNOWN and u.no:
        intent = Intent.GOODBYE
    if u.injection and intent in (Intent.CHECK_STATUS, Intent.UNKNOWN) and not (u.has_identity and not _bulk(text)):
        intent = Intent.UNKNOWN
    u.intent = intent
    u.also = [i for i in _PRIORITY if i != intent and i != Intent.GOODBYE and scores[i] >= 4]

    if intent == Intent.GET_HOURS or Intent.GET_HOURS in u.also:
        u.hours_question = _hours_question(u)


def _bulk(text: str) -> bool:
    """Asking about many work orders, or other people's ("which cars are ready", "who has a BMW")."""
    return bool(
        re.search(
            r"\b(all|every|list|dump|everyone|everybody|other|whose|who has|who owns|which (cars|vehicles|trucks))\b",
            text,
        )
    )


def _hours_question(u: Understanding) -> str:
    text = u.text
    if "holiday" in u.days:
        return "holiday"
    if _BUSINESS_HOURS_Q["closing"].search(text) and not re.search(
        r"\b(when|what time) .*\bopen\b(?! until| late)", text
    ):
        return "closing"
    if re.search(r"\b(what time|when|how early)\b.*\b(open|opening|reopen)\b", text) or re.search(
        r"\b(opening time|how early|first thing)\b", text
    ):
        return "opening"
    if u.days and not re.search(r"\b(today|now|right now)\b", text) or "weekend" in u.days:
        return "day"
    if _BUSINESS_HOURS_Q["open_now"].search(text):
        return "open_now"
    return "week"


def vehicles_in(text: str, vocab: ShopVocabulary) -> Understanding:
    """Just the vehicle facts (make/model, body type, year) in a short phrase such as 'Honda Civic'."""
    raw_words = words_of(text)
    u = Understanding(text=" ".join(raw_words), words=raw_words, nums=digits_in(raw_words))
    _vehicles(u, vocab, Awaiting.VERIFICATION)
    return u
