"""A fast English word tokenizer and sentence counter that reproduce DataTrove's decisions.

DataTrove 0.10.1 tokenizes English with ``spacy.blank("en")`` plus the ``sentencizer``
component, then strips every token and drops whitespace-only ones. This module
re-implements the same algorithm without importing spaCy:

* the text is cut into whitespace-separated *chunks* (``str.split()`` uses the same
  ``isspace`` test as spaCy), and each chunk is tokenized with spaCy's English rules:
  special cases (contractions, abbreviations, emoticons), prefixes, suffixes, URLs and
  infixes, applied in spaCy's order;
* a chunk's tokens are cached, so a word seen before costs one dictionary lookup; chunks
  made of one-character affixes around a plain core skip the affix loop (:func:`_affixed`);
* :class:`BatchTokens` tokenizes a whole batch with pyarrow and numpy: each distinct chunk
  of the batch is tokenized once, a word with ASCII marks around it in Arrow
  (:func:`_arrow_tokens`), any other with one cache lookup; :func:`batch_tokens` keeps the
  last batch's result, so the four rule-set scorers run over the same batch tokenize it
  once;
* sentences are counted like the sentencizer: a new sentence starts at the first token
  that is not punctuation after a token that is exactly a sentence-final character
  (:func:`count_sentences_batch` does it for many lines at once).

Not reproduced: spaCy's phrase matcher that re-merges special cases split across
whitespace (``": )"`` becomes ``":)"`` in spaCy), and its exact Unicode letter tables
outside the ranges listed below. Both are rare in English text.

``PUNCTUATION_SET`` and ``TERMINAL_PUNCTUATION`` are DataTrove's character sets, shared
by the rule-set scorers.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, cached_property
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scorers.text.columns import (
    SPACE,
    LastResult,
    char_bytes_before,
    re2_class,
    split_whitespace,
)

# ---------------------------------------------------------------------------------------
# DataTrove's punctuation sets (datatrove/utils/text.py)
# ---------------------------------------------------------------------------------------

#: Sentence-final characters of many scripts (DataTrove's TERMINAL_PUNCTUATION).
TERMINAL_PUNCTUATION = frozenset(
    "᪩？⁈𑩂．꩞𑅃﹗𑂾\u1b7d፧𑅂꡶꘎⁉࠾᪨𑊩𑱂᱿𖩮᥅\U00011f43\U00011f44﹒𑈹𑈸።܂؞꛳\U00010f88𑗍𐩖𑙂\u061d꩟᠉"
    "\u1b7e𑗗᰼𑻸؟𑪜꧉𑗉𐽙𖫵𖬷܀꓿᜵𑗏𑁇𑗓𑥄៖𑥆𑗑𑗒꯫۔𐩗\U00010f86꡷\u2e54｡៕߹⸮.𑇅࠹𛲟꫰꤯𐽗᭞𑜼፨𑃁"
    "꣏𑇟𖬸𑪛𑜾࠷𝪈?𑃀𑗃！։꣎॥𑗖᭛᠃!၊𖺘⁇𑗌𑑋𖭄᭟𑅁𑙁⸼꩝𑗋。꧈꫱𑜽𐽖𑂿᙮។꛷\U00010f89៚᥄𑗕𑗎᪪᭚࠽𑇞"
    "𑗊𐽘\u2e53𑗔𖩯𑇍𑻷𐽕𑩃।𑗂𑇆𑁈။᱾𑱁꘏܁᜶‼𑈻‽᪫﹖𑑌𑈼\U00010f87𑗐៙᰻"
)
_ASCII_AND_CJK_PUNCTUATION = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
)
_CONTROL_CHARACTERS = "".join(
    chr(x) for lo, hi in ((0, 9), (11, 13), (13, 32), (127, 160)) for x in range(lo, hi)
)
#: A token made only of these characters is a "symbol" token (DataTrove's PUNCTUATION_SET).
PUNCTUATION_SET = frozenset(_ASCII_AND_CJK_PUNCTUATION + _CONTROL_CHARACTERS) | TERMINAL_PUNCTUATION

#: Characters the spaCy sentencizer treats as sentence-final (its default ``punct_chars``).
SENTENCE_FINAL = frozenset(
    "!.?։؟۔܀܁܂߹।॥၊။።፧፨᙮᜵᜶᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？"
    "𐩖𐩗𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑩂𑩃𑪛𑪜𑱁𑱂𖩮𖩯𖫵𖬷𖬸𖭄𛲟𝪈｡。"
)

# ---------------------------------------------------------------------------------------
# Character classes (spaCy's lang/char_classes.py, as code-point ranges)
# ---------------------------------------------------------------------------------------

_LATIN_RANGES = (
    "A-Za-z\uFF21-\uFF3A\uFF41-\uFF5A\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF\u0100-\u017F"
    "\u0180-\u01BF\u01C4-\u024F\u2C60-\u2C7B\u2C7E\u2C7F\uA722-\uA76F\uA771-\uA787"
    "\uA78B-\uA78E\uA790-\uA7B9\uA7FA\uAB30-\uAB5A\uAB60-\uAB64\u0250-\u02AF\u1D00-\u1D25"
    "\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1EFF"
)
_CYRILLIC_GREEK_LOWER = "ёа-яәөүҗңһα-ωάέίόώήύіїєґѓѕјљњќѐѝ"
_CYRILLIC_GREEK_UPPER = "ЁА-ЯӘӨҮҖҢҺΑ-ΩΆΈΊΌΏΉΎІЇЄҐЃЅЈЉЊЌЀЍ"
_UNCASED = (
    "\u1200-\u137F\u0980-\u09FF\u0591-\u05F4\uFB1D-\uFB4F"
    "\u0620-\u064A\u066E-\u06D5\u06E5-\u06FF\u0750-\u077F\u08A0-\u08BD"
    "\uFB50-\uFBB1\uFBD3-\uFD3D\uFD50-\uFDC7\uFDF0-\uFDFB\uFE70-\uFEFC\U0001EE00-\U0001EEBB"
    "\u0D80-\u0DFF\u0900-\u097F\u0C80-\u0CFF\u0B80-\u0BFF\u0C00-\u0C7F"
    "\uAC00-\uD7AF\u1100-\u11FF\u3040-\u309F\u30A0-\u30FFー"
    "\u4E00-\u62FF\u6300-\u77FF\u7800-\u8CFF\u8D00-\u9FFF\u3400-\u4DBF"
    "\U00020000-\U000215FF\U00021600-\U000230FF\U00023100-\U000245FF"
    "\U00024600-\U000260FF\U00026100-\U000275FF\U00027600-\U000290FF"
    "\U00029100-\U0002A6DF\U0002A700-\U0002B73F\U0002B740-\U0002B81F"
    "\U0002B820-\U0002CEAF\U0002CEB0-\U0002EBEF\u2E80-\u2EFF\u2F00-\u2FDF"
    "\u2FF0-\u2FFF\u3000-\u303F\u31C0-\u31EF\u3200-\u32FF\u3300-\u33FF"
    "\uF900-\uFAFF\uFE30-\uFE4F\U0001F200-\U0001F2FF\U0002F800-\U0002FA1F"
)


def _expand(ranges: str) -> list[str]:
    """The characters of a regex-style class body such as ``"a-z\\u00e0"``."""
    out, i = [], 0
    while i < len(ranges):
        if i + 2 < len(ranges) and ranges[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(ranges[i]), ord(ranges[i + 2]) + 1))
            i += 3
        else:
            out.append(ranges[i])
            i += 1
    return out


def _latin_case(pred) -> str:
    """Latin letters whose case matches ``pred``; spaCy lists them one by one."""
    return "".join(re.escape(c) for c in _expand(_LATIN_RANGES) if pred(c))


_ALPHA = _LATIN_RANGES + _CYRILLIC_GREEK_LOWER + _CYRILLIC_GREEK_UPPER + _UNCASED
_ALPHA_LOWER = _latin_case(str.islower) + _CYRILLIC_GREEK_LOWER + _UNCASED
_ALPHA_UPPER = _latin_case(str.isupper) + _CYRILLIC_GREEK_UPPER + _UNCASED

# Dingbats, arrows, emoji and other "So" symbols that spaCy splits off as icons.
_ICONS = (
    "\u00A6\u00A9\u00AE\u00B0\u0482\u058D\u058E\u060E\u060F\u06DE\u06E9\u06FD\u06FE\u07F6\u09FA"
    "\u0B70\u0BF3-\u0BF8\u0BFA\u0C7F\u0D4F\u0D79\u0F01-\u0F03\u0F13\u0F15-\u0F17\u0F1A-\u0F1F"
    "\u0F34\u0F36\u0F38\u0FBE-\u0FC5\u0FC7-\u0FCC\u0FCE\u0FCF\u0FD5-\u0FD8\u109E\u109F"
    "\u1390-\u1399\u1940\u19DE-\u19FF\u1B61-\u1B6A\u1B74-\u1B7C\u2100\u2101\u2103-\u2106\u2108"
    "\u2109\u2114\u2116\u2117\u211E-\u2123\u2125\u2127\u2129\u212E\u213A\u213B\u214A\u214C"
    "\u214D\u214F\u218A\u218B\u2195-\u2199\u219C-\u219F\u21A1\u21A2\u21A4\u21A5\u21A7-\u21AD"
    "\u21AF-\u21CD\u21D0\u21D1\u21D3\u21D5-\u21F3\u2300-\u2307\u230C-\u231F\u2322-\u2328"
    "\u232B-\u237B\u237D-\u239A\u23B4-\u23DB\u23E2-\u2426\u2440-\u244A\u249C-\u24E9"
    "\u2500-\u25B6\u25B8-\u25C0\u25C2-\u25F7\u2600-\u266E\u2670-\u2767\u2794-\u27BF"
    "\u2800-\u28FF\u2B00-\u2B2F\u2B45\u2B46\u2B4D-\u2B73\u2B76-\u2B95\u2B98-\u2BC8"
    "\u2BCA-\u2BFE\u2CE5-\u2CEA\u2E80-\u2E99\u2E9B-\u2EF3\u2F00-\u2FD5\u2FF0-\u2FFB\u3004"
    "\u3012\u3013\u3020\u3036\u3037\u303E\u303F\u3190\u3191\u3196-\u319F\u31C0-\u31E3"
    "\u3200-\u321E\u322A-\u3247\u3250\u3260-\u327F\u328A-\u32B0\u32C0-\u32FE\u3300-\u33FF"
    "\u4DC0-\u4DFF\uA490-\uA4C6\uA828-\uA82B\uA836\uA837\uA839\uAA77-\uAA79\uFDFD\uFFE4"
    "\uFFE8\uFFED\uFFEE\uFFFC\uFFFD\U00010137-\U0001013F\U00010179-\U00010189"
    "\U0001018C-\U0001018E\U00010190-\U0001019B\U000101A0\U000101D0-\U000101FC\U00010877"
    "\U00010878\U00010AC8\U0001173F\U00016B3C-\U00016B3F\U00016B45\U0001BC9C"
    "\U0001D000-\U0001D0F5\U0001D100-\U0001D126\U0001D129-\U0001D164\U0001D16A-\U0001D16C"
    "\U0001D183\U0001D184\U0001D18C-\U0001D1A9\U0001D1AE-\U0001D1E8\U0001D200-\U0001D241"
    "\U0001D245\U0001D300-\U0001D356\U0001D800-\U0001D9FF\U0001DA37-\U0001DA3A"
    "\U0001DA6D-\U0001DA74\U0001DA76-\U0001DA83\U0001DA85\U0001DA86\U0001ECAC"
    "\U0001F000-\U0001F02B\U0001F030-\U0001F093\U0001F0A0-\U0001F0AE\U0001F0B1-\U0001F0BF"
    "\U0001F0C1-\U0001F0CF\U0001F0D1-\U0001F0F5\U0001F110-\U0001F16B\U0001F170-\U0001F1AC"
    "\U0001F1E6-\U0001F202\U0001F210-\U0001F23B\U0001F240-\U0001F248\U0001F250\U0001F251"
    "\U0001F260-\U0001F265\U0001F300-\U0001F3FA\U0001F400-\U0001F6D4\U0001F6E0-\U0001F6EC"
    "\U0001F6F0-\U0001F6F9\U0001F700-\U0001F773\U0001F780-\U0001F7D8\U0001F800-\U0001F80B"
    "\U0001F810-\U0001F847\U0001F850-\U0001F859\U0001F860-\U0001F887\U0001F890-\U0001F8AD"
    "\U0001F900-\U0001F90B\U0001F910-\U0001F93E\U0001F940-\U0001F970\U0001F973-\U0001F976"
    "\U0001F97A\U0001F97C-\U0001F9A2\U0001F9B0-\U0001F9B9\U0001F9C0-\U0001F9C2"
    "\U0001F9D0-\U0001F9FF\U0001FA60-\U0001FA6D"
)

# Regex pieces, in spaCy's order (order matters: the first matching alternative wins).
_PUNCT = (r"… …… , : ; \! \? ¿ ؟ ¡ \( \) \[ \] \{ \} < > _ # \* & "
          r"。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪").split()
_QUOTES = r"\' \" ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 〈 〉 ⟦ ⟧".split()
_CURRENCY = (r"\$ £ € ¥ ฿ US\$ C\$ A\$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ € ₭ ₮ ₯ ₰ "
             r"₱ ₲ ₳ ₴ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₽ ₾ ₿").split()
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft "
    "kg g mg µg t lb oz m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb "
    "TB T G M K % км км² км³ м м² м³ дм дм² дм³ см см² см³ мм мм² мм³ нм "
    "кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ тб"
    "كم كم² كم³ م م² م³ سم سم² سم³ مم مم² مم³ كم غرام جرام جم كغ ملغ كوب اكواب"
).split()
_HYPHENS = "-|–|—|--|---|——|~"
_ELLIPSES = [r"\.\.+", "…"]
_CONCAT_QUOTES = "".join(_QUOTES)


_CLASS_ITEM = re.compile(r"(\\.|[^\\])(?:-(\\.|[^\\]))?", re.S)


def _one_of(body: str) -> str:
    """A regex for one character of the class ``[body]``, matching the same characters.

    ``re`` scans the ranges above U+FFFF of a class one by one for every character tested,
    so a class mixing both planes is written as its Basic Multilingual Plane part, then the
    rest behind a one-range test that only such characters pass.
    """
    bmp, astral = [], []
    for m in _CLASS_ITEM.finditer(body):
        first, last = m.group(1)[-1], (m.group(2) or m.group(1))[-1]
        if first < "\U00010000" <= last:
            raise ValueError(f"range {m.group()!r} crosses U+10000")
        (astral if last >= "\U00010000" else bmp).append(m.group())
    if not astral:
        return f"[{body}]"
    return "(?:[{}]|(?=[\U00010000-\U0010ffff])[{}])".format("".join(bmp), "".join(astral))


_ICON = _one_of(_ICONS)


def _unescape(piece: str) -> str:
    """The literal a regex piece such as ``US\\$`` stands for."""
    return re.sub(r"\\(.)", r"\1", piece)


_PREFIXES = (["§", "%", "=", "—", "–", r"\+(?![0-9])"] + _PUNCT + _ELLIPSES + _QUOTES
             + _CURRENCY + [_ICON])
# Suffixes are matched at the end of a string, so the longest one that fits wins (spaCy
# searches the alternatives with "$"). They are literals, literals after an ASCII digit
# (currencies, units, "+"), icons, runs of dots, or a single "." after certain characters.
_SUFFIX_LITERALS = frozenset(_unescape(p) for p in _PUNCT + ["…"] + _QUOTES
                             + ["'s", "'S", "’s", "’S", "—", "–"])
_SUFFIXES_AFTER_DIGIT = frozenset(_unescape(p) for p in _CURRENCY + _UNITS + ["+"])
_SUFFIX_MAX = max(map(len, _SUFFIX_LITERALS | _SUFFIXES_AFTER_DIGIT))
_LONG_SUFFIX_ENDS = frozenset(p[-1] for p in _SUFFIX_LITERALS | _SUFFIXES_AFTER_DIGIT
                              if len(p) > 1)
# spaCy interpolates its "|"-joined punctuation and "(?:quotes)" inside this class.
_DOT_SUFFIX_AFTER = re.compile(_one_of(
    r"0-9{}%²\-\+{}(?:{})".format(_ALPHA_LOWER, "|".join(_PUNCT), _CONCAT_QUOTES)))
_UPPER = re.compile(_one_of(_ALPHA_UPPER))
_ICON_CHAR = re.compile(_ICON)
_INFIXES = _ELLIPSES + [_ICON] + [
    r"(?<=[0-9])[+\-\*^](?=[0-9-])",
    rf"(?<={_one_of(_ALPHA_LOWER + _CONCAT_QUOTES)})\.(?={_one_of(_ALPHA_UPPER + _CONCAT_QUOTES)})",
    rf"(?<={_one_of(_ALPHA)}),(?={_one_of(_ALPHA)})",
    rf"(?<={_one_of(_ALPHA + '0-9')})(?:{_HYPHENS})(?={_one_of(_ALPHA)})",
    rf"(?<={_one_of(_ALPHA + '0-9')})[:<>=/](?={_one_of(_ALPHA)})",
]

_PREFIX_RE = re.compile("|".join("^" + p for p in _PREFIXES))
# Every infix starts with one of the characters of the leading look-ahead, which lets other
# positions fail fast.
_ASCII_INFIX_START = re.compile(r"[.+\-*^,~:<>=/]").search
_INFIX_SPLIT = re.compile("((?=[.…+\\-*^,–—~:<>=/]|{})(?:{}))".format(
    _ICON, "|".join(_INFIXES))).split
# spaCy's URL_MATCH (from Diego Perini's URL regex, with spaCy's modifications).
_URL_RE = re.compile(
    r"^(?:(?:[\w\+\-\.]{2,})://)?(?:\S+(?::\S*)?@)?(?:"
    r"(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})"
    r"(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
    r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
    r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    r"|(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    r"(?:" + _one_of(_ALPHA_LOWER) + r"{2,63}))(?::\d{2,5})?(?:[/?#]\S*)?$"
)

# ---------------------------------------------------------------------------------------
# Special cases (spaCy's English tokenizer exceptions): chunk -> its tokens
# ---------------------------------------------------------------------------------------

_EMOTICONS = r"""
:) :-) :)) :-)) :))) :-))) (: (-: =) (= :] :-] [: [-: [= =] :o) (o: :} :-} 8) 8-) (-8 ;) ;-)
(; (-; :( :-( :(( :-(( :((( :-((( ): )-: =( >:( :') :'-) :'( :'-( :/ :-/ =/ =| :| :-| ]= =[
:1 :P :-P :p :-p :O :-O :o :-o :0 :-0 :() >:o :* :-* :3 :-3 =3 :> :-> :X :-X :x :-x :D :-D ;D
;-D =D xD XD xDD XDD 8D 8-D ^_^ ^__^ ^___^ >.< >.> <.< ._. ;_; -_- -__- v.v V.V v_v V_V o_o
o_O O_o O_O 0_o o_0 0_0 o.O O.o O.O o.o 0.0 o.0 0.o @_@ <3 <33 <333 </3 (^_^) (-_-) (._.)
(>_<) (*_*) (¬_¬) ಠ_ಠ ಠ︵ಠ (ಠ_ಠ) ¯\(ツ)/¯ (╯°□°）╯︵┻━┻ ><(((*>
""".split()

_SINGLE_TOKENS = [
    "'", '\\")', "<space>", "''", "C++", "\\t", "\\n", "\u2014", "ä.", "ö.", "ü.",
    *(f"{c}." for c in "abcdefghijklmnopqrstuvwxyz"),
    "'S", "'s", "\u2018S", "\u2018s", "and/or", "w/o", "'re", "'Cause", "'cause", "'cos", "'Cos",
    "'coz", "'Coz", "'cuz", "'Cuz", "'bout", "ma'am", "Ma'am", "o'clock", "O'clock",
    "lovin'", "Lovin'", "lovin", "Lovin", "havin'", "Havin'", "havin", "Havin",
    "doin'", "Doin'", "doin", "Doin", "goin'", "Goin'", "goin", "Goin",
    "Mt.", "Ak.", "Ala.", "Apr.", "Ariz.", "Ark.", "Aug.", "Calif.", "Colo.", "Conn.", "Dec.",
    "Del.", "Feb.", "Fla.", "Ga.", "Ia.", "Id.", "Ill.", "Ind.", "Jan.", "Jul.", "Jun.", "Kan.",
    "Kans.", "Ky.", "La.", "Mar.", "Mass.", "Mich.", "Minn.", "Miss.", "N.C.", "N.D.", "N.H.",
    "N.J.", "N.M.", "N.Y.", "Neb.", "Nebr.", "Nev.", "Nov.", "Oct.", "Okla.", "Ore.", "Pa.",
    "S.C.", "Sep.", "Sept.", "Tenn.", "Va.", "Wash.", "Wis.",
    "'d", "a.m.", "Adm.", "Bros.", "co.", "Co.", "Corp.", "D.C.", "Dr.", "e.g.", "E.g.", "E.G.",
    "Gen.", "Gov.", "i.e.", "I.e.", "I.E.", "Inc.", "Jr.", "Ltd.", "Md.", "Messrs.", "Mo.",
    "Mont.", "Mr.", "Mrs.", "Ms.", "p.m.", "Ph.D.", "Prof.", "Rep.", "Rev.", "Sen.", "St.",
    "vs.", "v.s.",
    "em", "'em", "ll", "'ll", "nuff", "'nuff",
    *_EMOTICONS,
]
# Strings the contraction rules would produce but spaCy removes again (real words).
_NOT_CONTRACTIONS = {"Ill", "ill", "Its", "its", "Hell", "hell", "Shell", "shell", "Shed", "shed",
                     "were", "Were", "Well", "well", "Whore", "whore"}
# Contraction endings: written form -> its tokens.
_ENDINGS = {e: tuple(p) for e, p in {
    "'m": ["'m"], "m": ["m"], "'ma": ["'m", "a"], "ma": ["m", "a"],
    "'ll": ["'ll"], "ll": ["ll"], "'ll've": ["'ll", "'ve"], "llve": ["ll", "ve"],
    "'d": ["'d"], "d": ["d"], "'d've": ["'d", "'ve"], "dve": ["d", "ve"],
    "'ve": ["'ve"], "ve": ["ve"], "'re": ["'re"], "re": ["re"], "'s": ["'s"], "s": ["s"],
    "n't": ["n't"], "nt": ["nt"], "n't've": ["n't", "'ve"], "ntve": ["nt", "ve"],
}.items()}
_WILL_WOULD = ("'ll", "ll", "'ll've", "llve", "'d", "d", "'d've", "dve")
_CONTRACTION_GROUPS = [
    (["i"], ("'m", "m", "'ma", "ma")),
    (["i", "you", "he", "she", "it", "we", "they"], _WILL_WOULD),
    (["i", "you", "we", "they"], ("'ve", "ve")),
    (["you", "we", "they"], ("'re", "re")),
    (["he", "she", "it"], ("'s", "s")),
    (["who", "what", "when", "where", "why", "how", "there", "that", "this"], ("'s", "s")),
    (["who", "what", "when", "where", "why", "how", "there", "that", "this", "these", "those"],
     _WILL_WOULD),
    (["who", "what", "when", "where", "why", "how", "there", "these", "those"],
     ("'re", "re", "'ve", "ve")),
    (["ca", "could", "do", "does", "did", "had", "may", "might", "must", "need", "ought", "sha",
      "should", "wo", "would"], ("n't", "nt", "n't've", "ntve")),
    (["could", "might", "must", "should", "would"], ("'ve", "ve")),
    (["ai", "are", "is", "was", "were", "have", "has", "dare"], ("n't", "nt")),
]
_OTHER_SPLITS = {
    "y'all": ("y'", "all"), "yall": ("y", "all"), "how'd'y": ("how", "'d", "'y"),
    "How'd'y": ("How", "'d", "'y"), "not've": ("not", "'ve"), "notve": ("not", "ve"),
    "Not've": ("Not", "'ve"), "Notve": ("Not", "ve"), "cannot": ("can", "not"),
    "Cannot": ("Can", "not"), "gonna": ("gon", "na"), "Gonna": ("Gon", "na"),
    "gotta": ("got", "ta"), "Gotta": ("Got", "ta"), "let's": ("let", "'s"),
    "Let's": ("Let", "'s"), "c'mon": ("c'm", "on"), "C'mon": ("C'm", "on"),
}


def _special_cases() -> dict[str, tuple[str, ...]]:
    """Every special-case chunk and its tokens, typographic apostrophes included."""
    cases: dict[str, tuple[str, ...]] = {t: (t,) for t in _SINGLE_TOKENS}
    for unit in "cfkCFK":
        cases[f"°{unit}."] = ("°", unit, ".")
    for words, endings in _CONTRACTION_GROUPS:
        for word in words:
            for base in (word, word.title()):
                for ending in endings:
                    cases[base + ending] = (base, *_ENDINGS[ending])
    for word in ("nothin", "nuthin", "ol", "somethin"):
        for base in (word, word.title()):
            cases[base] = (base,)
            cases[base + "'"] = (base + "'",)
    for hour in range(1, 13):
        for period in ("a.m.", "am", "p.m.", "pm"):
            cases[f"{hour}{period}"] = (str(hour), period)
    cases.update(_OTHER_SPLITS)
    for word in _NOT_CONTRACTIONS:
        cases.pop(word, None)
    for chunk, tokens in list(cases.items()):
        if "'" in chunk:
            cases[chunk.replace("'", "’")] = tuple(t.replace("'", "’") for t in tokens)
    return cases


SPECIAL_CASES = _special_cases()

# ---------------------------------------------------------------------------------------
# Chunk tokenizer (spaCy's affix algorithm)
# ---------------------------------------------------------------------------------------


# Shortcuts that skip a regex when it cannot match. No prefix starts with a letter or digit
# except the currencies US$, C$ and A$; a suffix ending in a letter or digit is either a
# unit after an ASCII digit or 's after an apostrophe; every infix and URL has a character
# that is not a letter or digit.
_LETTER_PREFIXES = ("US$", "C$", "A$")
_has_ascii_digit = re.compile("[0-9]").search


def _prefix_len(s: str) -> int:
    if s[0].isalnum() and not s.startswith(_LETTER_PREFIXES):
        return 0
    m = _PREFIX_RE.match(s)
    return m.end() if m else 0


def _suffix_len(s: str) -> int:
    n = len(s)
    if not n or (s[-1].isalnum() and s[-2:-1] not in ("'", "’") and not _has_ascii_digit(s)):
        return 0
    if s[-1] == ".":
        if n == 1:
            return 0
        if s[-2] == ".":
            return n - len(s.rstrip("."))
        if _DOT_SUFFIX_AFTER.match(s, n - 2) or (
                n > 2 and ((s[-3] == "°" and s[-2] in "FfCcKk")
                           or (_UPPER.match(s, n - 3) and _UPPER.match(s, n - 2)))):
            return 1
        return 0
    longest = min(_SUFFIX_MAX, n) if s[-1] in _LONG_SUFFIX_ENDS else 1
    for size in range(longest, 0, -1):
        end = s[-size:]
        if end in _SUFFIX_LITERALS or (end in _SUFFIXES_AFTER_DIGIT and n > size
                                       and "0" <= s[-size - 1] <= "9"):
            return size
    return 1 if _ICON_CHAR.match(s, n - 1) else 0


def _split_affixes(s: str, specials: dict) -> tuple[list[str], str, list[str]]:
    """Peel prefixes and suffixes off ``s`` until a special case or nothing is left."""
    prefixes: list[str] = []
    suffixes: list[str] = []
    last = -1
    while s and len(s) != last:
        if s in specials:
            break
        last = len(s)
        pre = _prefix_len(s)
        if pre:
            rest = s[pre:]
            if rest and rest in specials:
                prefixes.append(s[:pre])
                s = rest
                break
        suf = _suffix_len(s[pre:])
        if suf:
            rest = s[:-suf]
            if rest and rest in specials:
                suffixes.append(s[-suf:])
                s = rest
                break
        if pre and suf and pre + suf <= len(s):
            prefixes.append(s[:pre])
            suffixes.append(s[-suf:])
            s = s[pre:-suf]
        elif pre:
            prefixes.append(s[:pre])
            s = s[pre:]
        elif suf:
            suffixes.append(s[-suf:])
            s = s[:-suf]
    return prefixes, s, suffixes


def _split_infixes(s: str) -> list[str] | None:
    """``s`` cut around its infixes like spaCy's ``finditer`` loop (which ignores an infix
    at the very start); None when it has none."""
    parts = _INFIX_SPLIT(s)
    if len(parts) == 1:
        return None
    if not parts[0]:
        parts[:3] = [parts[1] + parts[2]]
    return [p for p in parts if p]


def _core_tokens(core: str) -> list[str]:
    """Tokens of what the affix loop left of a chunk, when it is not a special case: one
    token if it is a URL or has no infix, else its pieces around the infixes."""
    if core.isalnum() or (core.isascii() and not _ASCII_INFIX_START(core)):
        return [core]
    pieces = _split_infixes(core)
    return [core] if pieces is None or _URL_RE.match(core) else pieces


def _tokenize_chunk(chunk: str, specials: dict) -> list[str]:
    """Tokens of one whitespace-free chunk, following spaCy's ``Tokenizer._tokenize``."""
    if chunk in specials:
        return list(specials[chunk])
    if chunk.isalpha():
        return [chunk]
    prefixes, core, suffixes = _split_affixes(chunk, specials)
    tokens = prefixes
    if core:
        if core in specials:
            tokens.extend(specials[core])
        else:
            tokens.extend(_core_tokens(core))
    tokens.extend(reversed(suffixes))
    return tokens


def _affix_only_patterns() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Special cases that plain affix splitting would break apart (spaCy re-merges them)."""
    patterns = {}
    for chunk, tokens in SPECIAL_CASES.items():
        plain = tuple(_tokenize_chunk(chunk, {}))
        if len(plain) > 1 and plain != tokens:
            patterns[plain] = tokens
    return patterns


_MERGE_PATTERNS = _affix_only_patterns()
_MERGE_MAX = max(len(p) for p in _MERGE_PATTERNS)
_MERGE_FIRST = {p[0] for p in _MERGE_PATTERNS}
# Tokens can only need a merge if two consecutive ones start such a special case.
_MERGE_PAIRS = frozenset(p[:2] for p in _MERGE_PATTERNS)


def _merge_specials(tokens: list[str]) -> list[str]:
    """Re-merge special cases inside a chunk's tokens, longest match first like spaCy."""
    matches = []
    for i, tok in enumerate(tokens):
        if tok in _MERGE_FIRST:
            for n in range(2, min(_MERGE_MAX, len(tokens) - i) + 1):
                if tuple(tokens[i:i + n]) in _MERGE_PATTERNS:
                    matches.append((n, i))
    if not matches:
        return tokens
    taken: set[int] = set()
    chosen = []
    for n, i in sorted(matches, key=lambda m: (-m[0], m[1])):
        if i not in taken and i + n - 1 not in taken:
            chosen.append((i, n))
        taken.update(range(i, i + n))
    out, pos = [], 0
    for i, n in sorted(chosen):
        out.extend(tokens[pos:i])
        out.extend(_MERGE_PATTERNS[tuple(tokens[i:i + n])])
        pos = i + n
    out.extend(tokens[pos:])
    return out


# Shortcuts for the commonest chunk shapes: an ASCII word with one punctuation mark before
# or after it, which spaCy splits off unconditionally (a final "." only after a lowercase
# letter or two capitals).
_WORD_MARK = re.compile(r"([A-Za-z]+)([^\w\s])")
_MARK_WORD = re.compile(r"([^\w\s])([A-Za-z]+)")
_MARK_SUFFIXES = frozenset(c for c in _SUFFIX_LITERALS if len(c) == 1 and not c.isalnum())
_MARK_PREFIXES = frozenset(
    c for c in _SUFFIX_LITERALS | _SUFFIXES_AFTER_DIGIT | {"§", "%", "=", "+"}
    if len(c) == 1 and not c.isalnum() and (m := _PREFIX_RE.match(c + "a")) and m.end() == 1)


def _shortcut(chunk: str) -> list[str] | None:
    """Tokens of a one-mark chunk such as ``word,`` or ``(word``; None for other shapes."""
    if m := _WORD_MARK.fullmatch(chunk):
        word, mark = m.groups()
        if mark == ".":
            if not (word[-1].islower() or (len(word) > 1 and word[-2:].isupper())):
                return [chunk]
        elif mark not in _MARK_SUFFIXES:
            return None
        return [*SPECIAL_CASES.get(word, (word,)), mark]
    if (m := _MARK_WORD.fullmatch(chunk)) and m.group(1) in _MARK_PREFIXES:
        return [m.group(1), *SPECIAL_CASES.get(m.group(2), (m.group(2),))]
    return None


# Chunks shaped "prefix marks, core, suffix marks", e.g. ``("well-known"),`` or ``a.b()``, are
# tokenized without spaCy's affix loop when it provably gives the same result: every
# leading mark is a one-character prefix whatever follows it, every trailing mark a
# one-character suffix whatever precedes it (a "." only after a character that makes it
# one), the core is a fixed point of the loop, and no string the loop would look up can be a
# special case, because the core is not part of any.
_ONE_CHAR_PREFIXES = "".join(sorted(
    c for c in map(_unescape, _PREFIXES) if len(c) == 1 and not c.isalnum() and c != "+"))
_ONE_CHAR_SUFFIXES = "".join(sorted(
    c for c in _SUFFIX_LITERALS
    if len(c) == 1 and not c.isalnum() and c not in _LONG_SUFFIX_ENDS and c != "."))
_SUFFIXES_AND_DOT = _ONE_CHAR_SUFFIXES + "."
_POSSESSIVES = ("'s", "'S", "’s", "’S")
_SPECIAL_PIECES = frozenset(case[i:j] for case in SPECIAL_CASES
                            for i in range(len(case)) for j in range(i + 1, len(case) + 1))


def _affixed(chunk: str) -> list[str] | None:
    """Tokens of a chunk made of one-character prefixes, a core (possibly ending in a
    possessive "'s") and one-character suffixes (see above); None when the chunk has
    another shape or the shortcut might not hold."""
    rest = chunk.lstrip(_ONE_CHAR_PREFIXES)
    core = rest.rstrip(_SUFFIXES_AND_DOT)
    suffixes = rest[len(core):]
    if "." in suffixes and not all(c != "." or _DOT_SUFFIX_AFTER.match(rest, i - 1)
                                   for i, c in enumerate(suffixes, len(core))):
        return None
    possessive = core[-2:] in _POSSESSIVES
    if possessive:
        core = core[:-2]
    prefixes = chunk[:len(chunk) - len(rest)]
    # A core of three characters or more keeps the suffix rules' look-back inside it once
    # the suffixes are used up and only prefixes are left to peel.
    if len(core) < (3 if len(prefixes) > len(suffixes) + possessive else 2) \
            or core in _SPECIAL_PIECES or _prefix_len(core) or _suffix_len(core):
        return None
    tokens = [*prefixes, *_core_tokens(core)]
    if possessive:
        tokens.append(rest[len(core):len(core) + 2])
    tokens += suffixes
    return tokens


def tokenize_chunk(chunk: str) -> tuple[str, ...]:
    """spaCy-English tokens of a string without whitespace."""
    if chunk in SPECIAL_CASES:
        return SPECIAL_CASES[chunk]
    if chunk.isalpha():
        return (chunk,)
    tokens = _shortcut(chunk) or _affixed(chunk) or _tokenize_chunk(chunk, SPECIAL_CASES)
    if len(tokens) > 1 and not _MERGE_PAIRS.isdisjoint(zip(tokens, tokens[1:])):
        tokens = _merge_specials(tokens)
    return tuple(tokens)


class _Memo(dict):
    """key -> ``compute(key)``, computed on first use; it forgets everything when it holds
    ``max_size`` entries, so its memory stays bounded however large the corpus."""

    def __init__(self, compute, max_size: int = 1_000_000):
        super().__init__()
        self.compute, self.max_size = compute, max_size

    def __missing__(self, key):
        if len(self) >= self.max_size:
            self.clear()
        value = self[key] = self.compute(key)
        return value


_CHUNKS = _Memo(tokenize_chunk)
chunk_tokens = _CHUNKS.__getitem__


def words(text: str) -> list[str]:
    """DataTrove's ``split_into_words(text, "en")``: spaCy tokens, whitespace dropped."""
    return list(chain.from_iterable(map(chunk_tokens, text.split())))


# ---------------------------------------------------------------------------------------
# Whole batches: each distinct chunk of a batch is tokenized once, the rest is numpy
# ---------------------------------------------------------------------------------------


# Chunks tokenized in Arrow: an ASCII core that starts and ends with a letter or digit, with
# at most one one-character prefix mark before it and two one-character suffix marks after
# it, e.g. ``(word``, ``“x_1”,`` or ``f(x)``. On that shape spaCy's rules give one token per
# mark and one for the core (the shortcut of :func:`_affixed`) unless a string the affix
# loop looks up is a special case (the loop only looks up the core with some of its marks),
# two of the tokens start a special case that spaCy merges again, the core is too short for
# the shortcut (when the chunk is not all letters), the core holds an infix
# (``_ARROW_INFIXES``) or ``_ARROW_EXCEPTIONS`` matches. Those chunks, like every other, are
# tokenized in Python. The core has no "'" (a possessive or contraction) and no "$" (the
# prefixes US$, C$ and A$).
_P, _S = re2_class(_ONE_CHAR_PREFIXES), re2_class(_SUFFIXES_AND_DOT)
_CORE_INNER = re2_class(c for c in map(chr, range(0x21, 0x7f)) if c not in "'$")
_ARROW_SHAPE = f"^{_P}?[A-Za-z0-9](?:{_CORE_INNER}*[A-Za-z0-9])?{_S}{{0,2}}$"
# spaCy's infixes that can match in an ASCII core (none at its first character, which is a
# letter or digit), each written with its look-behind and look-ahead characters
_ARROW_INFIXES = "|".join([
    r"\.\.", r"[0-9][+\-*^][0-9\-]", r"[a-z'\"`,]\.[A-Z'\"`,]", "[A-Za-z],[A-Za-z]",
    r"[A-Za-z0-9](?:-|--|---|~)[A-Za-z]", "[A-Za-z0-9][:<>=/][A-Za-z]",
])
_ARROW_EXCEPTIONS = "|".join([
    # a "." after an uppercase letter or after a mark (not always a suffix there)
    rf"[A-Z]\.{_S}?$", rf"{_S}\.$",
    # two marks that spaCy merges again
    *(f"[A-Za-z0-9]{re.escape(a)}{re.escape(b)}$" for a, b in sorted(_MERGE_PAIRS)
      if len(a) == len(b) == 1 and a in _SUFFIXES_AND_DOT and b in _SUFFIXES_AND_DOT),
    # a unit after a digit, which is a suffix
    "[0-9](?:{}){}{{0,2}}$".format("|".join(sorted(
        u for u in _SUFFIXES_AFTER_DIGIT if u.isascii() and u.isalnum())), _S),
])


@cache
def _arrow_lookups() -> pa.Array:
    """The strings that keep an Arrow-shaped chunk out of Arrow when the chunk or its core
    with some of its marks is one of them: the special cases, and a mark joined to the
    token that starts or ends a merged special case with it (built on first use: the first
    ``pa.array`` call imports pandas)."""
    merged = {a + b for a, b in _MERGE_PAIRS if (len(a) == 1 and a in _ONE_CHAR_PREFIXES)
              or (len(b) == 1 and b in _SUFFIXES_AND_DOT)}
    return pa.array(sorted(SPECIAL_CASES.keys() | merged), pa.string())


def _ranges_in(data: pa.Buffer, starts: np.ndarray, stops: np.ndarray,
               value_set: pa.Array) -> np.ndarray:
    """Whether each string ``data[starts[i]:stops[i]]`` is in ``value_set``; the ranges are
    ascending and disjoint, so they and the gaps between them are the strings of one array."""
    if not len(starts):
        return np.zeros(0, bool)
    return pc.is_in(_ranges(data, starts, stops), value_set=value_set).to_numpy(
        zero_copy_only=False)[::2]


def _ranges(data: pa.Buffer, starts: np.ndarray, stops: np.ndarray) -> pa.Array:
    """The strings ``data[starts[i]:stops[i]]`` at the even positions of a string array, the
    gaps between them at the odd ones (``starts`` and ``stops`` ascending and disjoint)."""
    offsets = np.stack([starts, stops], axis=1).ravel().astype(np.int32)
    if (np.diff(offsets) < 0).any():  # Arrow would read outside the data
        raise ValueError("byte ranges must be ascending and disjoint")
    return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), data)


def _ranges_match(data: pa.Buffer, starts: np.ndarray, stops: np.ndarray,
                  pattern: str) -> np.ndarray:
    """Whether ``pattern`` (RE2) is found in each string ``data[starts[i]:stops[i]]`` (the
    ranges as in :func:`_ranges_in`)."""
    if not len(starts):
        return np.zeros(0, bool)
    return pc.match_substring_regex(_ranges(data, starts, stops), pattern).to_numpy(
        zero_copy_only=False)[::2]


_ALNUM_BYTE = np.zeros(256, bool)
_ALNUM_BYTE[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                          np.uint8)] = True
#: bytes of a UTF-8 character by the high four bits of its first byte
_UTF8_LENGTH = np.array([1] * 12 + [2, 2, 3, 4], np.int64)


def _arrow_tokens(chunks: pa.Array) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(mask, tokens, sizes): which ``chunks`` (a string array) are tokenized in Arrow,
    their tokens one after the other, and the number of tokens of each."""
    shaped = pc.match_substring_regex(chunks, _ARROW_SHAPE).to_numpy(zero_copy_only=False)
    candidates = chunks.filter(pa.array(shaped))
    ends = np.frombuffer(candidates.buffers()[1], np.int32)[
        candidates.offset:candidates.offset + len(candidates) + 1]  # string offsets: int32
    starts, stops = ends[:-1], ends[1:]
    data = candidates.buffers()[2]
    # The shape makes each end character a mark or the core's letter or digit, so one byte
    # tells which; the tokens tile the chunks' bytes: cut after the prefix and before each
    # suffix mark, each mark being one character of whatever byte length.
    byte = np.frombuffer(data, np.uint8) if len(candidates) else np.zeros(1, np.uint8)
    prefix = ~_ALNUM_BYTE[byte[starts]]
    suffix1 = ~_ALNUM_BYTE[byte[stops - 1]]
    last = char_bytes_before(byte, stops)
    suffix2 = suffix1 & ~_ALNUM_BYTE[byte[stops - last - 1]]
    before_last = char_bytes_before(byte, stops - last)
    first = _UTF8_LENGTH[byte[starts] >> 4]
    sizes = 1 + prefix.astype(np.int64) + suffix1 + suffix2
    core_start = starts + np.where(prefix, first, 0)
    inner_suffix = np.where(suffix2, stops - last, stops)  # where the last suffix starts
    core_stop = inner_suffix - np.where(suffix2, before_last, suffix1 * last)
    cuts = np.stack([starts, np.where(prefix, core_start, -1), np.where(suffix1, core_stop, -1),
                     np.where(suffix2, inner_suffix, -1)], axis=1).ravel()
    cuts = np.append(cuts[cuts >= 0], ends[-1]).astype(np.int32)
    tokens = pa.StringArray.from_buffers(len(cuts) - 1, pa.py_buffer(cuts), data)
    # a chunk of letters only is one token whatever its length or letters
    not_only_letters = prefix | suffix1 | pc.match_substring_regex(
        candidates, "[^A-Za-z]").to_numpy(zero_copy_only=False)
    ok = ~(pc.match_substring_regex(candidates, _ARROW_EXCEPTIONS).to_numpy(zero_copy_only=False)
           | (not_only_letters & (core_stop - core_start < 2 + (prefix & ~suffix1)))
           | _ranges_match(data, core_start, core_stop, _ARROW_INFIXES))
    # the core with none, some or all of its marks: [start, stop) byte ranges of the chunks
    # that have those marks
    lookups = _arrow_lookups()
    every = np.ones(len(candidates), bool)
    for start, with_start in ((core_start, every), (starts, prefix)):
        for stop, with_stop in ((core_stop, every), (inner_suffix, suffix1), (stops, suffix2)):
            has = with_start & with_stop
            ok[has] &= ~_ranges_in(data, start[has], stop[has], lookups)
    mask = np.zeros(len(chunks), bool)
    mask[np.flatnonzero(shaped)[ok]] = True
    return mask, tokens.filter(pa.array(np.repeat(ok, sizes))), sizes[ok]


class BatchTokens:
    """The word tokens of a batch of texts (``words`` of each), as ids into a vocabulary.

    The texts are split with :func:`~scorers.text.columns.split_whitespace` (which splits
    where ``str.split()`` does; the empty strings it adds around leading or trailing whitespace
    have no tokens) and the chunks are dictionary-encoded, so each distinct chunk of the
    batch is tokenized once: in Arrow when it is a word with ASCII marks around it
    (:func:`_arrow_tokens`), else with one chunk-cache lookup. Every per-token array is a
    numpy gather.

    ``offsets``: text i's tokens are positions ``offsets[i]:offsets[i + 1]``; ``counts``:
    tokens per text. ``vocab`` (the batch's distinct tokens, an Arrow array), ``ids``
    (each token's index in ``vocab``) and ``lengths`` (characters per vocab entry) are
    built on first use.
    """

    def __init__(self, texts: pa.Array):
        if texts.type != pa.string():  # _arrow_tokens reads 32-bit string offsets
            texts = texts.cast(pa.string())
        chunks = split_whitespace(texts)
        encoded = pc.dictionary_encode(pc.list_flatten(chunks))
        distinct = encoded.dictionary
        in_arrow, arrow_tokens, arrow_sizes = _arrow_tokens(distinct)
        others = np.flatnonzero(~in_arrow)
        other_tokens = list(map(chunk_tokens, distinct.filter(pa.array(~in_arrow)).to_pylist()))
        # the distinct chunks' tokens, one after the other: those from Arrow, then the others
        self._flat = pa.concat_arrays([
            arrow_tokens, pa.array(list(chain.from_iterable(other_tokens)), pa.string())])
        order = np.concatenate([np.flatnonzero(in_arrow), others])  # the chunks, as in _flat
        sizes = np.empty(len(distinct), np.int64)
        sizes[order] = np.concatenate([
            arrow_sizes, np.fromiter(map(len, other_tokens), np.int64, len(other_tokens))])
        #: position in ``_flat`` of each distinct chunk's first token
        self._first = np.empty(len(distinct), np.int64)
        self._first[order] = np.cumsum(sizes[order]) - sizes[order]
        self._occurrences = encoded.indices.to_numpy(zero_copy_only=False)
        self._sizes = sizes[self._occurrences]  # tokens per chunk occurrence
        token_ends = np.cumsum(self._sizes)
        chunk_ends = np.cumsum(pc.list_value_length(chunks).to_numpy(zero_copy_only=False))
        self.offsets = np.concatenate([[0], token_ends])[np.concatenate([[0], chunk_ends])]
        self.counts = np.diff(self.offsets)

    @cached_property
    def _encoded(self) -> pa.DictionaryArray:
        """The tokens of the distinct chunks, one after the other, dictionary-encoded."""
        return pc.dictionary_encode(self._flat)

    @cached_property
    def vocab(self) -> pa.Array:
        return self._encoded.dictionary

    @cached_property
    def lengths(self) -> np.ndarray:
        return pc.utf8_length(self.vocab).to_numpy(zero_copy_only=False).astype(np.int64)

    @cached_property
    def ids(self) -> np.ndarray:
        flat = self._encoded.indices.to_numpy(zero_copy_only=False)
        # Token t of occurrence k is flat[first + t], first being its chunk's first token:
        # positions into flat rise by one along an occurrence and jump at the next one.
        # (32-bit positions: a batch's tokens are far fewer than 2**31, and half the bytes
        # to move)
        occurring = self._sizes > 0
        first = self._first.astype(np.int32)[self._occurrences[occurring]]
        sizes = self._sizes.astype(np.int32)[occurring]
        step = np.ones(int(self.offsets[-1]), np.int32)
        if len(first):
            starts = np.cumsum(sizes, dtype=np.int32) - sizes
            step[starts[0]] = first[0]
            step[starts[1:]] = first[1:] - (first[:-1] + sizes[:-1] - 1)
        return flat[np.cumsum(step, dtype=np.int32)].astype(np.int64)


#: ``batch_tokens(texts)``: :class:`BatchTokens` of a string array without nulls, remembered
#: for the most recent array, so the scorers run on the same batch tokenize it once.
batch_tokens = LastResult(BatchTokens)


_SYMBOLS_ONLY = f"^{re2_class(PUNCTUATION_SET)}+$"


def token_flags(tokens: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per token: (made only of PUNCTUATION_SET characters, has a ``str.isalpha`` one).

    Letters are found by Arrow in ASCII tokens and by Python in the others."""
    symbol = pc.match_substring_regex(tokens, _SYMBOLS_ONLY).to_numpy(zero_copy_only=False)
    ascii_ = pc.string_is_ascii(tokens).to_numpy(zero_copy_only=False)
    alpha = np.zeros(len(tokens), bool)
    alpha[ascii_] = pc.match_substring_regex(tokens.filter(pa.array(ascii_)),
                                             "[A-Za-z]").to_numpy(zero_copy_only=False)
    alpha[~ascii_] = [any(map(str.isalpha, t)) for t in tokens.filter(pa.array(~ascii_))
                      .to_pylist()]
    return symbol, alpha


# ---------------------------------------------------------------------------------------
# Sentences (spaCy's sentencizer)
# ---------------------------------------------------------------------------------------


def _is_punct(token: str) -> bool:
    """spaCy's ``Token.is_punct``: every character is in a Unicode ``P*`` category."""
    return all(unicodedata.category(c).startswith("P") for c in token)


def _role(token: str) -> int:
    """2: a sentence-final token, 1: other punctuation, 0: anything else."""
    return 2 if token in SENTENCE_FINAL else int(not token.isalnum() and _is_punct(token))


_ROLES = _Memo(_role)
_sentence_role = _ROLES.__getitem__


_FINAL_CHAR = re.compile("[{}]".format("".join(map(re.escape, sorted(SENTENCE_FINAL))))).search
_FINAL_CHAR_RE2 = re2_class(SENTENCE_FINAL)
_ALNUM_CHAR = re.compile(r"[^\W_]").search  # a character for which str.isalnum is true
# The steps of a one-token chunk, by the token's role.
_ONE_TOKEN_STEPS = (((0, False), (1, False)), ((0, False), (0, True)), ((0, True), (0, True)))


def _sentence_steps(chunk: str) -> tuple[tuple[int, bool], tuple[int, bool]]:
    """((new_starts, seen_period) when entering ``chunk`` without, (...) when entering it
    after a sentence-final token): the sentencizer's state machine run over its tokens."""
    if _FINAL_CHAR(chunk) is None and _ALNUM_CHAR(chunk):
        # no token is sentence-final, and the one holding a letter or digit starts a
        # sentence after a period: no need to tokenize
        return _ONE_TOKEN_STEPS[0]
    tokens = chunk_tokens(chunk)
    if len(tokens) == 1:
        return _ONE_TOKEN_STEPS[_sentence_role(tokens[0])]
    roles = list(map(_sentence_role, tokens))
    steps = []
    for seen in (False, True):
        starts = 0
        for role in roles:
            if role == 2:
                seen = True
            elif seen and not role:
                starts += 1
                seen = False
        steps.append((starts, seen))
    return tuple(steps)


_STEPS = _Memo(_sentence_steps)


def _arrow_sentence_steps(chunks: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(mask, steps): which ``chunks`` are tokenized in Arrow (:func:`_arrow_tokens`) and,
    for those, the four numbers of :func:`_sentence_steps` (entering unseen, then seen:
    new starts and whether a final token was seen last), the state machine run on all of
    them at once, one token slot at a time (a chunk has at most four tokens there)."""
    mask, tokens, sizes = _arrow_tokens(chunks)
    # a core starts with a letter or digit, so it is neither final nor punctuation; the
    # marks are few, their roles looked up
    marks = pc.invert(pc.match_substring_regex(tokens, "^[A-Za-z0-9]"))
    encoded = pc.dictionary_encode(tokens.filter(marks))
    roles = np.zeros(len(tokens), np.int64)
    roles[marks.to_numpy(zero_copy_only=False)] = np.array(
        [_sentence_role(m) for m in encoded.dictionary.to_pylist()], np.int64)[
        encoded.indices.to_numpy(zero_copy_only=False)]
    slot = np.arange(len(tokens)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    by_slot = np.full((len(sizes), 4), -1, np.int64)  # -1: no such token
    by_slot[np.repeat(np.arange(len(sizes)), sizes), slot] = roles
    steps = []
    for entering_seen in (False, True):
        seen = np.full(len(sizes), entering_seen)
        starts = np.zeros(len(sizes), np.int64)
        for role in by_slot.T:
            starts += seen & (role == 0)
            seen = np.where(role == 2, True, np.where(role == 0, False, seen))
        steps += [starts, seen]
    return mask, np.stack(steps, axis=1).astype(np.int64)


# A whitespace run other than one plain space is a token of its own in spaCy.
_SPACE_TOKEN_RE = re.compile(r"\s{2,}|[^\S ]")
_WS_SPLIT_RE = re.compile(r"(\s+)")


def count_sentences(text: str) -> int:
    """Number of sentences spaCy's sentencizer finds in ``text``, counted like DataTrove's
    ``len(split_into_sentences(text))`` (a text without tokens counts as one)."""
    steps = _STEPS
    starts, seen, any_token = 0, False, False
    if _SPACE_TOKEN_RE.search(text) is None and not text[:1].isspace():
        pieces = text.split()
    else:
        pieces = _WS_SPLIT_RE.split(text)
    for i, piece in enumerate(pieces):
        if not piece:
            continue
        if piece[0].isspace():
            if piece == " " and i > 0:  # one space after a word is that word's trailing space
                continue
            # a whitespace token is not punctuation: it starts a sentence after a period
            any_token = True
            if seen:
                starts += 1
                seen = False
            continue
        any_token = True
        n, seen = steps[piece][seen]
        starts += n
    return starts + 1 if any_token else 1


# The whitespace runs count_sentences reads as tokens: one at the start of a line, and any
# other than a single " " (RE2 syntax).
_SPACE_TOKEN_RUN_RE2 = "^{0}+|{0}{0}+|{1}{0}*".format(
    SPACE, re2_class(c for c in map(chr, range(0x3001)) if c.isspace() and c != " "))


def count_sentences_batch(lines: pa.Array) -> np.ndarray:
    """``[count_sentences(line) for line in lines]``, with numpy.

    Each chunk moves the sentencizer from "after a sentence-final token" or not to a new
    state, adding sentence starts; a chunk with a word or a final token ends in a state that
    does not depend on where it started, the others (punctuation only) keep it. So the
    state before a chunk is the one left by the last such chunk before it on its line. A
    whitespace token moves it as a word does (it is not punctuation), so each is replaced
    by the word " a " first.
    """
    lines = pc.replace_substring_regex(lines, _SPACE_TOKEN_RUN_RE2, " a ")
    chunks = split_whitespace(lines)
    encoded = pc.dictionary_encode(pc.list_flatten(chunks))
    distinct = encoded.dictionary
    # chunks with an ASCII letter or digit and no sentence-final character take the steps
    # of a plain word (see _sentence_steps); the others run the state machine over their
    # tokens, in Arrow where the chunk is tokenized there, else in Python
    steps = np.tile(np.ravel(_ONE_TOKEN_STEPS[0]).astype(np.int64), (len(distinct), 1))
    looked_up = np.flatnonzero(pc.or_kleene(
        pc.match_substring_regex(distinct, _FINAL_CHAR_RE2),
        pc.invert(pc.match_substring_regex(distinct, "[A-Za-z0-9]"))).to_numpy(
            zero_copy_only=False))
    chunks_looked_up = distinct.take(pa.array(looked_up))
    in_arrow, arrow_steps = _arrow_sentence_steps(chunks_looked_up)
    steps[looked_up[in_arrow]] = arrow_steps
    steps[looked_up[~in_arrow]] = np.array(
        [_STEPS[c] for c in chunks_looked_up.filter(pa.array(~in_arrow)).to_pylist()],
        np.int64).reshape(-1, 4)
    steps = steps[encoded.indices.to_numpy(zero_copy_only=False)]
    starts_from, seen_from = steps[:, 0::2], steps[:, 1::2]  # columns: entering unseen, seen
    settled = seen_from[:, 0] == seen_from[:, 1]
    last = np.maximum.accumulate(np.where(settled, np.arange(len(steps)), -1))
    before = np.concatenate([[-1], last])[:-1]
    sizes = pc.list_value_length(chunks).to_numpy(zero_copy_only=False)
    line_start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    seen = (before >= line_start) & (seen_from[before, 0] == 1)
    added = np.where(seen, starts_from[:, 1], starts_from[:, 0])
    totals = np.concatenate([[0], np.cumsum(added)])
    ends = np.cumsum(sizes)
    return totals[ends] - totals[ends - sizes] + 1


_PIECES_RE = re.compile(r"\S+|\s+")


def _offset_tokens(text: str):
    """(token, start, end) for spaCy's tokens of ``text``, whitespace tokens included."""
    for m in _PIECES_RE.finditer(text):
        piece, start = m.group(), m.start()
        if piece[0].isspace():
            if piece[0] == " " and start > 0:  # one space is the previous token's trailing space
                piece, start = piece[1:], start + 1
            if piece:
                yield piece, start, m.end()
            continue
        for tok in chunk_tokens(piece):
            yield tok, start, start + len(tok)
            start += len(tok)


def sentence_parts(text: str) -> list[str]:
    """DataTrove's ``split_into_sentences(text)``: ``text`` cut after each sentence's last
    token, so whitespace between sentences starts the next part."""
    ends: list[int] = []
    seen, prev_end = False, None
    for tok, _, end in _offset_tokens(text):
        final = tok in SENTENCE_FINAL
        if seen and not final and not _is_punct(tok):
            ends.append(prev_end)
            seen = False
        elif final:
            seen = True
        prev_end = end
    if prev_end is not None:
        ends.append(prev_end)
    starts = [0] + ends[:-1]
    return [text[a:b] for a, b in zip(starts, ends[:-1] + [len(text)])]


def clear_caches() -> None:
    """Forget every cached tokenization (chunks, the last batch, sentence roles and steps)."""
    for memo in (_CHUNKS, _STEPS, _ROLES, batch_tokens):
        memo.clear()
