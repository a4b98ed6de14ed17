"""Raw text -> sentences -> words with character offsets, for Ukrainian ("uk") and English ("en").

Ukrainian follows the tokenisation and sentence splitting of the lang-uk ner-uk corpus
(scripts/tokenizer_agreement.py measures the agreement); English follows WNUT-17 social-media
text (@mentions, #hashtags, URLs, emoji and emoticons are tokens; "don't" stays whole, "'s"
is split off). Every non-whitespace character (``str.isspace``) lands in exactly one token,
whitespace in none. Matching is linear-time: every pattern either consumes what it scans or
looks ahead a bounded distance, so long runs without spaces cannot trigger rescans.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["LANGS", "Token", "split_sentences", "tokenize"]

LANGS = ("uk", "en")


@dataclass(frozen=True, slots=True)
class Token:
    """A word of a document: its text and half-open character offsets into the document."""

    text: str
    start: int
    end: int


def _mark_class() -> str:
    """Character-class body of combining marks and invisible format characters (BMP)."""
    # Scanning the BMP only keeps import fast; ZWSP, word joiner and BOM separate words,
    # so they are left out (they become one-character tokens).
    skip = {0x200B, 0x2060, 0xFEFF}
    cps = [
        cp
        for cp in range(0x10000)
        if cp not in skip and unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me", "Cf")
    ]
    ranges: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        ranges.append(f"\\u{cps[i]:04x}" + (f"-\\u{cps[j]:04x}" if j > i else ""))
        i = j + 1
    return "".join(ranges) + r"\U000e0000-\U000e01ef"  # + tags and variation selectors


_M = _mark_class()
_W = rf"[\w{_M}]"  # word character: \w (letters, digits, "_") or a mark attached to one
_NOT_W = rf"(?!{_W})"
_EMOJI = r"[\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff]"
# Flags are pairs of regional indicators; ZWJ sequences and skin tones stay one emoji.
_EMOJI_SEQ = (
    rf"[\U0001f1e6-\U0001f1ff]{{2}}|{_EMOJI}(?:\u200d{_EMOJI}|[{_M}\U0001f3fb-\U0001f3ff])*"
)
# A URL runs to the next space, less trailing punctuation (%s: more of it) that belongs to
# the sentence; English tweets end truncated links with "…", which WNUT keeps in the token.
_URL = r"(?:(?:https?|ftp)://|www\.)(?:\S*[^\s.,;:!?)\]}»”\"'’%s])?"
# The look-behind and bounded, possessive repeats keep failed attempts O(1) per position.
_EMAIL = r"(?<![\w.+-])[\w.+-]{1,64}+@[\w-]{1,63}(?:\.[\w-]{1,63})+"
_OTHER = rf"\S[{_M}]*"  # anything else: one character plus its marks


def _alternation(alternatives: list[str]) -> str:
    """One pattern trying `alternatives` in order; the look-ahead skips whitespace cheaply."""
    return r"(?=\S)(?:" + "|".join(alternatives) + ")"


_TOKEN_RE = {  # compiled on first use of a language (by _pattern): start-up stays short
    "uk": _alternation(
        [
            _URL % "…",
            _EMAIL,
            # Numbers: 1,5  2.3.3  10-15  2014-го  +1 (also "1+1" -> "1" "+1"); the corpus
            # splits a suffix after a range or decimal ("1920-30 - ті", "4,5 - метровий").
            rf"(?<![^\W\d])[+\-−]?\d+(?:(?:[.,]\d+)+(?:-\d+)*|(?:-\d+)++{_NOT_W}|(?:-{_W}+)*)",
            # Words with inner apostrophes/hyphens: м'ясо, з’явився, по-справжньому. "т.д.",
            # "ім." and domains ("ictv.ua") are split at the dots, as in the corpus.
            rf"{_W}+(?:[-'’`\u00ad\u2011]{_W}+)*",
            r"[.?!…]+",  # "...", "?!", "!.." are single tokens in the corpus
            _EMOJI_SEQ,
            _OTHER,
        ]
    ),
    "en": _alternation(
        [
            _URL % "",
            _EMAIL,
            rf"[@#]{_W}+",  # @mentions, #hashtags
            r"&(?:amp|lt|gt|quot|apos|nbsp|#\d{1,7});",  # HTML entities, as tweets carry them
            r"(?:[A-Za-z]\.){2,}|(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Inc|Ltd|Co)\.",  # U.S., Dr.
            r"[:;=][-o^']?[()\[\]DPpO/\\|*3](?!\w)|<3|\^\^|-_-|\^_\^",  # emoticons
            r"\d+(?:[.,:]\d+)+",  # 7:30, 30,000 (plain digits go with letters: 1st, 7pm)
            rf"w/o?(?!{_W}|/)",  # "w/" = with
            # WNUT keeps don't/I'm/IT'S whole but splits a lower-case 's (it 's, Trump 's);
            # a hyphen before a space stays on its word ("Sci- Fi").
            rf"{_W}+(?:-{_W}+|['’](?!s{_NOT_W}){_W}+)*(?:-(?!\S))?",
            rf"['’](?:s|m|re|ve|ll|d){_NOT_W}",  # clitics written apart ("I 'm")
            r"[.?!…]+|-{2,}",
            _EMOJI_SEQ,
            _OTHER,
        ]
    ),
}

# Abbreviations after which "." does not end a sentence (lower-cased, without the dot).
_UK_ABBR = (
    "т д п ім вул м р рр ст с тис млн млрд грн див напр проф доц акад канд ін інш обл буд кв "
    "пл пров просп оз о смт ч л н е мол зв пор англ лат св"
)
_ABBR = {
    "uk": frozenset(_UK_ABBR.split()),
    "en": frozenset({"no", "fig", "vol", "pp", "approx", "dept", "est", "cf", "ca", "al", "ft", "mt"}),
}
# English news abbreviations, matched with their capital, so "he sat." or "the sun." still ends a
# sentence: titles and US states (AP style) always continue it ("Sen. Warren", "Springfield, Ill.,
# said"); a month only before a number ("Jan. 5"; "in Jan. The" ends one).
_EN_TITLES = ("Sen Gov Rep Gen Col Lt Sgt Capt Cmdr Adm Maj Brig Cpl Pvt Det Insp Rev Hon Pres Supt Atty Amb Fr"
              " Rt Gens Reps Sens Messrs Mmes Ala Ariz Ark Calif Colo Conn Del Fla Ga Ill Ind Kan Ky La Md Mass"
              " Mich Minn Miss Mo Mont Neb Nev Okla Ore Pa Tenn Tex Va Vt Wash Wis Wyo Mon Tue Tues Wed Thu"
              " Thur Thurs Fri Sat Sun Ave Blvd Rd Mt Ft No Nos Vol Gov't")
_CASED_ABBR = {"uk": frozenset(), "en": frozenset(_EN_TITLES.split())}
_BEFORE_NUMBER = {"uk": frozenset(), "en": frozenset("Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec".split())}
# Sentence-final punctuation (tokens starting with it); ner-uk rarely ends a sentence at "…".
_ENDERS = {"uk": frozenset(".?!"), "en": frozenset(".?!…")}
_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # the str.splitlines() boundaries


@functools.cache
def _compiled(lang: str) -> re.Pattern[str]:
    return re.compile(_TOKEN_RE[lang])


def _pattern(lang: str) -> re.Pattern[str]:
    """Token pattern of `lang`; ValueError naming the supported languages otherwise."""
    try:
        return _compiled(lang)
    except (KeyError, TypeError):
        raise ValueError(f"unsupported lang {lang!r}: expected one of {', '.join(LANGS)}") from None


def tokenize(text: str, lang: str) -> list[Token]:
    """Words of `text` (no sentence splitting)."""
    return [Token(m.group(), m.start(), m.end()) for m in _pattern(lang).finditer(text)]


def _ends_sentence(tokens: list[Token], i: int, lang: str) -> bool:
    """Whether token i is sentence-final punctuation (not the dot of an abbreviation or initial)."""
    text = tokens[i].text
    if text[0] not in _ENDERS[lang]:
        return False
    if text != "." or i == 0 or tokens[i - 1].end != tokens[i].start:
        return True
    prev = tokens[i - 1].text
    # "Т. Шевченко", "1,5 тис. грн": an initial or a known abbreviation continues the sentence
    if (len(prev) == 1 and prev.isupper()) or prev.lower() in _ABBR[lang] or prev in _CASED_ABBR[lang]:
        return False
    return not (prev in _BEFORE_NUMBER[lang] and i + 1 < len(tokens) and tokens[i + 1].text[0].isdigit())


def split_sentences(text: str, lang: str) -> list[list[Token]]:
    """Split a document into sentences of words; offsets index `text` (Python str indices)."""
    tokens = tokenize(text, lang)
    enders = _ENDERS[lang]
    sentences: list[list[Token]] = []
    current: list[Token] = []
    after_end = False  # the previous token ended a sentence
    for i, tok in enumerate(tokens):
        if current:
            gap = text[current[-1].end : tok.start]
            first = tok.text[0]
            # ner-uk never starts a sentence with a dash, quote or digit (dialogue, lists)
            starts = first.isupper() if lang == "uk" else not first.islower()
            if (after_end and gap and starts) or (gap and gap != " " and _BREAK.search(gap)):
                sentences.append(current)
                current = []
        current.append(tok)
        # Only a bare ?/!/. counts: «Що робити?» Таке… mostly continues in the corpus.
        after_end = tok.text[0] in enders and _ends_sentence(tokens, i, lang)
    if current:
        sentences.append(current)
    return sentences
