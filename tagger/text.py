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


_MARKS_UNICODE = "14.0.0"  # the Unicode of Python 3.11
_MARKS = (  # _mark_class() under _MARKS_UNICODE, written out: scanning the BMP took 8 ms of every start
    r"\u00ad\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1-\u05c2\u05c4-\u05c5\u05c7"
    r"\u0600-\u0605\u0610-\u061a\u061c\u064b-\u065f\u0670\u06d6-\u06dd\u06df-\u06e4\u06e7-\u06e8"
    r"\u06ea-\u06ed\u070f\u0711\u0730-\u074a\u07a6-\u07b0\u07eb-\u07f3\u07fd\u0816-\u0819"
    r"\u081b-\u0823\u0825-\u0827\u0829-\u082d\u0859-\u085b\u0890-\u0891\u0898-\u089f\u08ca-\u0903"
    r"\u093a-\u093c\u093e-\u094f\u0951-\u0957\u0962-\u0963\u0981-\u0983\u09bc\u09be-\u09c4"
    r"\u09c7-\u09c8\u09cb-\u09cd\u09d7\u09e2-\u09e3\u09fe\u0a01-\u0a03\u0a3c\u0a3e-\u0a42"
    r"\u0a47-\u0a48\u0a4b-\u0a4d\u0a51\u0a70-\u0a71\u0a75\u0a81-\u0a83\u0abc\u0abe-\u0ac5"
    r"\u0ac7-\u0ac9\u0acb-\u0acd\u0ae2-\u0ae3\u0afa-\u0aff\u0b01-\u0b03\u0b3c\u0b3e-\u0b44"
    r"\u0b47-\u0b48\u0b4b-\u0b4d\u0b55-\u0b57\u0b62-\u0b63\u0b82\u0bbe-\u0bc2\u0bc6-\u0bc8"
    r"\u0bca-\u0bcd\u0bd7\u0c00-\u0c04\u0c3c\u0c3e-\u0c44\u0c46-\u0c48\u0c4a-\u0c4d\u0c55-\u0c56"
    r"\u0c62-\u0c63\u0c81-\u0c83\u0cbc\u0cbe-\u0cc4\u0cc6-\u0cc8\u0cca-\u0ccd\u0cd5-\u0cd6"
    r"\u0ce2-\u0ce3\u0d00-\u0d03\u0d3b-\u0d3c\u0d3e-\u0d44\u0d46-\u0d48\u0d4a-\u0d4d\u0d57"
    r"\u0d62-\u0d63\u0d81-\u0d83\u0dca\u0dcf-\u0dd4\u0dd6\u0dd8-\u0ddf\u0df2-\u0df3\u0e31"
    r"\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd\u0f18-\u0f19\u0f35\u0f37\u0f39"
    r"\u0f3e-\u0f3f\u0f71-\u0f84\u0f86-\u0f87\u0f8d-\u0f97\u0f99-\u0fbc\u0fc6\u102b-\u103e"
    r"\u1056-\u1059\u105e-\u1060\u1062-\u1064\u1067-\u106d\u1071-\u1074\u1082-\u108d\u108f"
    r"\u109a-\u109d\u135d-\u135f\u1712-\u1715\u1732-\u1734\u1752-\u1753\u1772-\u1773\u17b4-\u17d3"
    r"\u17dd\u180b-\u180f\u1885-\u1886\u18a9\u1920-\u192b\u1930-\u193b\u1a17-\u1a1b\u1a55-\u1a5e"
    r"\u1a60-\u1a7c\u1a7f\u1ab0-\u1ace\u1b00-\u1b04\u1b34-\u1b44\u1b6b-\u1b73\u1b80-\u1b82"
    r"\u1ba1-\u1bad\u1be6-\u1bf3\u1c24-\u1c37\u1cd0-\u1cd2\u1cd4-\u1ce8\u1ced\u1cf4\u1cf7-\u1cf9"
    r"\u1dc0-\u1dff\u200c-\u200f\u202a-\u202e\u2061-\u2064\u2066-\u206f\u20d0-\u20f0\u2cef-\u2cf1"
    r"\u2d7f\u2de0-\u2dff\u302a-\u302f\u3099-\u309a\ua66f-\ua672\ua674-\ua67d\ua69e-\ua69f"
    r"\ua6f0-\ua6f1\ua802\ua806\ua80b\ua823-\ua827\ua82c\ua880-\ua881\ua8b4-\ua8c5\ua8e0-\ua8f1"
    r"\ua8ff\ua926-\ua92d\ua947-\ua953\ua980-\ua983\ua9b3-\ua9c0\ua9e5\uaa29-\uaa36\uaa43"
    r"\uaa4c-\uaa4d\uaa7b-\uaa7d\uaab0\uaab2-\uaab4\uaab7-\uaab8\uaabe-\uaabf\uaac1\uaaeb-\uaaef"
    r"\uaaf5-\uaaf6\uabe3-\uabea\uabec-\uabed\ufb1e\ufe00-\ufe0f\ufe20-\ufe2f\ufff9-\ufffb"
    r"\U000e0000-\U000e01ef"
)
_M = _MARKS if unicodedata.unidata_version == _MARKS_UNICODE else _mark_class()
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
