"""Turning what a caller said (typed, or as a speech recogniser heard it) into clean words.

Lower-case, punctuation gone, contractions and possessives undone ("civic's" → "civic"), filler
words dropped ("um", "uh"), common recogniser slips fixed ("clothes" → "close"), and tools for fuzzy
matching: a bounded edit distance and Soundex, with a small lexicon class that corrects a word to its
nearest known word only when that is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

# Whole-utterance rewrites done before splitting into words (order matters).
_PHRASES = [
    (re.compile(r"\ba\s*/\s*c\b"), " ac "),
    (re.compile(r"\br\s*\.\s*o\s*\.?(?=\s|$|#|\d)"), " ro "),
    (re.compile(r"\br o\b"), " ro "),
    (re.compile(r"\ba c\b"), " ac "),
    (re.compile(r"#\s*(?=\d)"), " number "),
    (re.compile(r"(\d{1,2}):(\d{2})"), r" \1 \2 "),
    (re.compile(r"(\d)\s*(am|pm)\b"), r"\1 \2"),
    (re.compile(r"\b([ap])\s*\.\s*m\s*\.?"), r" \1m "),
    (re.compile(r"(?<=[a-z])-(?=\d)|(?<=\d)-(?=[a-z])"), ""),  # f-150 → f150, cx-5 → cx5
    (re.compile(r"&"), " and "),
]

_CONTRACTIONS = {
    "y'all": ["you", "all"],
    "yall": ["you", "all"],
    "ya'll": ["you", "all"],
    "what's": ["what", "is"],
    "whats": ["what", "is"],
    "where's": ["where", "is"],
    "wheres": ["where", "is"],
    "when's": ["when", "is"],
    "whens": ["when", "is"],
    "how's": ["how", "is"],
    "hows": ["how", "is"],
    "who's": ["who", "is"],
    "it's": ["it", "is"],
    "that's": ["that", "is"],
    "thats": ["that", "is"],
    "there's": ["there", "is"],
    "here's": ["here", "is"],
    "he's": ["he", "is"],
    "she's": ["she", "is"],
    "let's": ["let", "us"],
    "name's": ["name", "is"],
    "i'm": ["i", "am"],
    "im": ["i", "am"],
    "i've": ["i", "have"],
    "i'll": ["i", "will"],
    "i'd": ["i", "would"],
    "you're": ["you", "are"],
    "youre": ["you", "are"],
    "we're": ["we", "are"],
    "they're": ["they", "are"],
    "don't": ["do", "not"],
    "dont": ["do", "not"],
    "doesn't": ["does", "not"],
    "doesnt": ["does", "not"],
    "didn't": ["did", "not"],
    "didnt": ["did", "not"],
    "isn't": ["is", "not"],
    "isnt": ["is", "not"],
    "aren't": ["are", "not"],
    "arent": ["are", "not"],
    "can't": ["can", "not"],
    "cant": ["can", "not"],
    "won't": ["will", "not"],
    "wont": ["will", "not"],
    "haven't": ["have", "not"],
    "wasn't": ["was", "not"],
    "gonna": ["going", "to"],
    "wanna": ["want", "to"],
    "gotta": ["got", "to"],
    "lemme": ["let", "me"],
    "gimme": ["give", "me"],
    "ain't": ["is", "not"],
    "aint": ["is", "not"],
    "whatcha": ["what", "are", "you"],
    "y'all's": ["your"],
}

# Word-level slips of typing and of speech recognisers (homophones, chat shorthand).
_FIXES = {
    "u": "you",
    "ya": "you",
    "yu": "you",
    "ur": "your",
    "yer": "your",
    "r": "are",
    "wat": "what",
    "wut": "what",
    "whut": "what",
    "wen": "when",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "thanx": "thanks",
    "ty": "thanks",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "tmw": "tomorrow",
    "tomm": "tomorrow",
    "2morrow": "tomorrow",
    "tonite": "tonight",
    "2day": "today",
    "rn": "now",
    "sat": "saturday",
    "sun": "sunday",
    "mon": "monday",
    "tues": "tuesday",
    "wed": "wednesday",
    "thurs": "thursday",
    "fri": "friday",
    "hrs": "hours",
    "hr": "hour",
    "clothes": "close",
    "clothe": "close",
    "closeing": "closing",
    "brakes": "brakes",
    "breaks": "brakes",
    "break": "brake",
    "tyre": "tire",
    "tyres": "tires",
    "addy": "address",
    "rep": "representative",
    "ppl": "people",
    "ok": "okay",
    "k": "okay",
    "kk": "okay",
    "yea": "yeah",
    "ye": "yeah",
    "yah": "yeah",
    "ya'": "yeah",
    "nah": "no",
    "naw": "no",
    "nope": "no",
    "cuz": "because",
    "cause": "because",
    "b4": "before",
    "thru": "through",
    "til": "until",
    "till": "until",
    "tho": "though",
    "alot": "a lot",
    "truk": "truck",
    "vehical": "vehicle",
    "vehicule": "vehicle",
    "mechanics": "mechanic",
    "oclock": "o'clock",
}

# Sounds and verbal tics that carry no meaning.
FILLERS = frozenset(
    {"um", "umm", "ummm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "hmm", "hm", "mm", "mmm", "mhm", "eh"}
)


# Everyday words a fuzzy matcher must leave alone (they sit one typo away from domain words:
# "tired"/"tires", "later"/"latter", "record"/"accord"...).
def word_set(text: str) -> frozenset[str]:
    """A set of words written as one readable block of text."""
    return frozenset(text.split())


COMMON_WORDS = word_set(
    """
    a about above after again against ago all almost already also always am an and another any anybody anyone
    anything anyway are around as ask asked at away back bad be because been before being best better between
    big bit both bring brought but buy by call called calling came can car cars care case check checked checking
    close closed come comes coming could day days did do does doing done down drive drop during each early else
    end enough even evening ever every everything fine first fix fixed for found free friday from front full get
    gets getting give go goes going good got great guess guy guys had half happen happened has have having he
    hear heard hello help her here hey hi him his hold home hope hour hours how i if in info into is it its job
    just keep kind know last late later least leave left let like line little long look looking lot made make
    many may maybe me mean might mind minute minutes monday more morning most much must my name need needs never
    new next nice night no none noon not nothing now number of off office oh okay old on once one only open or
    other our out over own part parts past people person phone pick place please point pretty put quick quite
    operation operations ran rather ready real really record red right road said same saturday saw say see seen
    send set she shop
    should show side since so some someone something soon sorry sound start still stop street stuff sunday
    sure take talk tell than thank thanks that the their them then there these they thing things think this
    those though three through thursday time times tired to today told tomorrow too took tuesday two under
    until up us use used very wait waiting want wanted was way we wednesday week weekend well went were what
    when where whether which while white who whole why will wish with without work worked working would yeah
    year years yes yet you your
    """
)


def words_of(text: str) -> list[str]:
    """Normalised words of an utterance: lower-case, contractions expanded, fillers dropped, slips fixed."""
    s = (text or "").lower().translate(_APOSTROPHES)
    for pattern, repl in _PHRASES:
        s = pattern.sub(repl, s)
    out: list[str] = []
    for token in _join_spelled(_TOKEN.findall(s)):
        if token in _CONTRACTIONS:
            out.extend(_CONTRACTIONS[token])
            continue
        if token.endswith("'s"):  # possessive: "civic's", "smith's"
            token = token[:-2]
        elif "'" in token:
            token = token.replace("'", "")
        if token in FILLERS or not token:
            continue
        fixed = _FIXES.get(token, token)
        out.extend(fixed.split())
    return out


def _join_spelled(tokens: list[str]) -> list[str]:
    """Letters spelled out one by one ("s m i t h", "c r v") become one word."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token.isalpha():
            run.append(token)
            continue
        out.extend(["".join(run)] if len(run) >= 3 else run)
        run = []
        if token:
            out.append(token)
    return out


def compact(text: str) -> str:
    """Letters and digits only, lower-case: 'F-150' → 'f150', "O'Neil" → 'oneil'."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (a swap of two letters counts 1), or limit+1 once beyond limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
            best = min(best, value)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1] if prev[-1] <= limit else limit + 1


_SOUNDEX_CODES = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


def soundex(word: str) -> str:
    """American Soundex ('smith', 'smyth' → 'S530'): names that sound alike share a code."""
    letters = [ch for ch in word.lower() if ch.isalpha()]
    if not letters:
        return ""
    first = letters[0]
    code = first.upper()
    last = _SOUNDEX_CODES.get(first, "")
    for ch in letters[1:]:
        digit = _SOUNDEX_CODES.get(ch, "")
        if digit and digit != last:
            code += digit
            if len(code) == 4:
                break
        if ch not in "hw":
            last = digit
    return code.ljust(4, "0")


def allowed_typos(word: str) -> int:
    """How many edits a word of this length may be away from a known word and still mean it."""
    if len(word) < 4:
        return 0
    return 1 if len(word) < 7 else 2


# First letters a recogniser confuses ("sivic"/"civic", "hunda"/"onda", "fort"/"ford"): near-miss
# spellings are looked for among words starting with a letter of the same group.
_FIRST_LETTER_GROUPS = ["ckqsxz", "aeiouyh", "bfpvw", "dt", "gj", "mn", "l", "r"]
_GROUP_OF = {ch: group[0] for group in _FIRST_LETTER_GROUPS for ch in group}


def _bucket(word: str) -> str:
    return _GROUP_OF.get(word[:1], word[:1])


class Lexicon:
    """A set of known words; `correct()` maps a near-miss to its one nearest word (or leaves it).

    Lookups are cached: callers repeat themselves, and a turn touches few distinct words.
    """

    def __init__(self, words: Iterable[str], protected: Iterable[str] = COMMON_WORDS, *, min_fuzzy: int = 4):
        self.words = frozenset(words)
        self.min_fuzzy = min_fuzzy
        self.protected = frozenset(protected)
        self._by_first: dict[str, list[str]] = {}
        for w in self.words:
            self._by_first.setdefault(_bucket(w), []).append(w)
        self._cache: dict[str, str | None] = {}

    def __contains__(self, word: str) -> bool:
        return word in self.words

    def nearest(self, word: str) -> str | None:
        """The known word `word` is a typo of, if exactly one is close enough; else None."""
        if word in self.words:
            return word
        if word in self._cache:
            return self._cache[word]
        found: str | None = None
        limit = allowed_typos(word) if len(word) >= self.min_fuzzy else 0
        if limit and word not in self.protected and word.isalpha():
            # Typos rarely change how a word starts; checking only words that start alike keeps this cheap.
            scored = sorted(
                (d, w) for w in self._by_first.get(_bucket(word), ()) if (d := edit_distance(word, w, limit)) <= limit
            )
            if scored and (len(scored) == 1 or scored[0][0] < scored[1][0]):
                found = scored[0][1]
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[word] = found
        return found

    def correct(self, word: str) -> str:
        return self.nearest(word) or word
