"""Gopher, C4 and FineWeb rule-set scorers: DataTrove 0.10.1's rules without spaCy.

Documents are written here to trigger each rejection reason (re-expressing DataTrove's own
test vectors), sit exactly on thresholds, or exercise the tokenizer; when datatrove and
spaCy are importable, decisions and tokens are also compared with theirs directly.
"""

from __future__ import annotations

import pickle
import random
import re
import sys

import pyarrow as pa
import pytest

from scorers.text import columns, tokenize
from scorers.text.c4 import C4Quality
from scorers.text.fineweb import FineWebQuality
from scorers.text.gopher import GopherQuality, GopherRepetition, NGrams

SENTENCE = "The cat sat on the mat and looked at the birds with great interest."
PROSE = (
    "I wish it need not have happened in my time, said Frodo. So do I, said Gandalf, and so "
    "do all who live to see such times. But that is not for them to decide. All we have to "
    "decide is what to do with the time that is given us."
)


def score(scorer, *texts: str) -> list[dict]:
    return scorer.score_batch(pa.table({"text": list(texts)})).to_pylist()


def reason(scorer, text: str) -> str | None:
    return score(scorer, text)[0][f"{scorer.name}_reason"]


def batch_words(*texts: str) -> list[list[str]]:
    """Each text's tokens, read back from its batch's BatchTokens."""
    tokens = tokenize.BatchTokens(pa.array(texts, pa.string()))
    vocab = tokens.vocab.to_pylist()
    return [[vocab[i] for i in tokens.ids[a:b]] for a, b in zip(tokens.offsets, tokens.offsets[1:])]


ngrams = NGrams.of_words


# --------------------------------------------------------------------------- tokenizer

@pytest.mark.parametrize("text, expected", [
    ("I don't think we're ready, are you?",
     ["I", "do", "n't", "think", "we", "'re", "ready", ",", "are", "you", "?"]),
    ("It’s Bob’s, isn’t it", ["It", "’s", "Bob", "’s", ",", "is", "n’t", "it"]),
    ("cannot gonna Let's", ["can", "not", "gon", "na", "Let", "'s"]),
    ("Visit https://example.com/a?b=1 or www.test.org now.",
     ["Visit", "https://example.com/a?b=1", "or", "www.test.org", "now", "."]),
    ("A well-known state-of-the-art model.",
     ["A", "well", "-", "known", "state", "-", "of", "-", "the", "-", "art", "model", "."]),
    ("It costs $5.99 or 3,000 yen (about 5km away) at 10am.",
     ["It", "costs", "$", "5.99", "or", "3,000", "yen", "(", "about", "5", "km", "away", ")",
      "at", "10", "am", "."]),
    ("Great job 😀👍!", ["Great", "job", "😀", "👍", "!"]),
    ("日本語のテキストです。次の文。", ["日本語のテキストです。次の文", "。"]),
    ("Mr. Smith went to the U.S. on Jan. 5th...",
     ["Mr.", "Smith", "went", "to", "the", "U.S.", "on", "Jan.", "5th", "..."]),
    ('He said "hello" -- then left.', ["He", "said", '"', "hello", '"', "--", "then", "left",
                                       "."]),
    ("C++ and C# rock :)", ["C++", "and", "C", "#", "rock", ":)"]),
    ("#hashtag @user a-b 1-2 1/2 x/y",
     ["#", "hashtag", "@user", "a", "-", "b", "1", "-", "2", "1/2", "x", "/", "y"]),
    ("  tabs\tand\n\nnewlines  ", ["tabs", "and", "newlines"]),
    ("I. AB. McD. word.", ["I.", "AB", ".", "McD.", "word", "."]),
    ("id. im. hed.", ["i", "d.", "i", "m.", "he", "d."]),  # special cases re-merged
    ("(well-known), a.b() brother's; \"Mr. x_y|z\"",
     ["(", "well", "-", "known", ")", ",", "a.b", "(", ")", "brother", "'s", ";", '"', "Mr.",
      "x_y|z", '"']),
])
def test_words_follow_spacy_english_rules(text, expected):
    assert tokenize.words(text) == expected
    assert batch_words(text, "", text) == [expected, [], expected]


def test_affix_shortcut_agrees_with_the_affix_loop():
    rng = random.Random(3)
    alphabet = list("aAbsStT05.,;:!?()[]\"'’“”-–—_#*&%=+/@|~…°²😀é") + ["'s", "km", "US$", "Mr."]
    for _ in range(20000):
        chunk = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        shortcut = tokenize._affixed(chunk)
        if shortcut is not None:
            assert shortcut == tokenize._tokenize_chunk(chunk, tokenize.SPECIAL_CASES), chunk


def test_chunks_tokenized_in_arrow_agree_with_the_python_tokenizer():
    rng = random.Random(5)
    marks = list("!\"#&'()*,:;<>?[]_`{}.$%=“”‘’«»—…¿。") + ["’s", "'s"]
    words = ["word", "The", "the", "Mr", "em", "dont", "ab", "a", "I", "USA", "x", "Inc", "5",
             "10km", "1am", "x_1", "md5", "3a", "C4", "10", "a_b_c", "2nd", "cannot", "have",
             "gonna", "Let",
             # cores with inner marks, with and without an infix
             "f(x", "sys.argv", "x[0", "a.B", "a.'b", "a,b", "a-b", "a--b", "a----b", "a~b", "1+2",
             "1^x", "a:b", "x:`y", "a..b", "a=b", "a/b", "5m/s", "a\"b", "a`b", "_x(n", "1.3.57",
             "O(n", "a|b", "a@b", "x#y", "a%b", "US$5", "it's", "a!b", "x)y", "ab.CD", "2-3"]
    chunks = {"", *words}
    for _ in range(20000):
        chunks.add("".join(rng.choices(marks, k=rng.randint(0, 2))) + rng.choice(words)
                   + "".join(rng.choices(marks, k=rng.randint(0, 3))))
    chunks = sorted(chunks)
    in_arrow, tokens, sizes = tokenize._arrow_tokens(pa.array(chunks, pa.string()))
    assert 0 < in_arrow.sum() < len(chunks)
    tokens, start = tokens.to_pylist(), 0
    for chunk, size in zip([c for c, a in zip(chunks, in_arrow) if a], sizes.tolist()):
        assert tuple(tokens[start:start + size]) == tokenize.tokenize_chunk(chunk), chunk
        start += size
    assert start == len(tokens)


def test_whitespace_split_does_not_read_past_the_last_string():
    # pyarrow's own split keeps "end\n" whole when an invalid UTF-8 byte follows the buffer
    data = pa.py_buffer(b"word end\n\xff")
    texts = pa.StringArray.from_buffers(1, pa.py_buffer(bytes([0, 0, 0, 0, 9, 0, 0, 0])), data)
    assert [c for c in columns.split_whitespace(texts)[0].as_py() if c] == ["word", "end"]
    assert sorted(tokenize.BatchTokens(texts).vocab.to_pylist()) == ["end", "word"]


def test_fast_character_classes_match_the_plain_ones():
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for body in (tokenize._ICONS, tokenize._ALPHA, tokenize._ALPHA_LOWER + tokenize._CONCAT_QUOTES):
        assert re.findall(tokenize._one_of(body), every) == re.findall(f"[{body}]", every)


def test_batch_tokens_are_shared_by_the_scorers_of_a_batch():
    table = pa.table({"text": [PROSE, SENTENCE]})
    texts = columns.text_array(table, "text")
    assert columns.text_array(table.select(["text"]), "text") is texts
    assert tokenize.batch_tokens(texts) is tokenize.batch_tokens(texts)
    assert list(tokenize.batch_tokens(texts).counts) == [len(tokenize.words(PROSE)),
                                                         len(tokenize.words(SENTENCE))]


@pytest.mark.parametrize("text, expected", [
    ("Hello world. This is two. Three!", 3),
    ("Hello... world", 1),  # "..." is not a sentence-final token
    ("Dr. Who is here. Yes.", 2),  # "Dr." is one token
    ("One. (Two.) Three", 3),
    ("No end", 1),
    ("", 1),  # DataTrove counts an empty text as one part
    ("Hi.  (there) you", 2),  # a double space is a token of its own
])
def test_count_sentences(text, expected):
    assert tokenize.count_sentences(text) == expected
    assert list(tokenize.count_sentences_batch(pa.array([text, "x", text]))) == [expected, 1,
                                                                                  expected]


def test_sentence_counts_of_a_batch_follow_the_per_text_count():
    # whitespace runs of every kind, marks around words (tokenized in Arrow) and chunks that
    # only Python tokenizes
    rng = random.Random(2)
    pieces = ["a", "Hi.", "ok!", "(Yes.)", '"No?"', "?", ".", "...", "e.g.", "U.S.", "f(x).",
              "1.5.", "--", "x", " ", "  ", "\t", "\n", "\u3000", "\xa0", "\u2028", ""]
    texts = ["".join(rng.choices(pieces, k=rng.randint(0, 12))) for _ in range(5000)]
    assert list(tokenize.count_sentences_batch(pa.array(texts))) == [
        tokenize.count_sentences(t) for t in texts]


def test_sentence_parts_cut_after_each_sentence():
    assert tokenize.sentence_parts("One two. Three four!  Five") == [
        "One two.", " Three four!", "  Five"]


def test_punctuation_sets():
    assert {"#", "…", "。", "\x00"} <= tokenize.PUNCTUATION_SET
    assert "\t" not in tokenize.PUNCTUATION_SET and "\n" not in tokenize.PUNCTUATION_SET
    assert {".", "!", "?", "。", "؟"} <= tokenize.TERMINAL_PUNCTUATION
    assert '"' not in tokenize.TERMINAL_PUNCTUATION and "…" not in tokenize.TERMINAL_PUNCTUATION


def test_tokenizer_matches_spacy():
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    rules = {k: tuple(t[65] for t in v) for k, v in nlp.tokenizer.rules.items()  # 65 = ORTH
             if not k.isspace()}
    assert tokenize.SPECIAL_CASES == rules
    texts = [
        PROSE, "Ph.D. students (e.g. me) said: 'no'... ok?!", "x'S y’s 'em 'bout 9p.m. 5pm",
        "°C. 10+ 5%. 12US$ US$12 €5 -5 ~3 a~b", "[citation needed] {braces} <tags> a<b",
        "Don’t; won't; ain't; y'all; c'mon; how'd'y", "3.14.15 1,2,3 a,b,c word.Word word,word",
        "ÉCOLE. école. Ωmega. пример. word—word word–word word--word", ":-) :( <3 ¯\\(ツ)/¯",
        "email me@x.org, http://a.b/c?d=e#f (https://x.io).", "“Quoted,” she said. «Non», dit-il.",
        "wheres hows thats it's", "Hello.\tWorld.  Again.\u00a0More.", "1.\n2.\n\n3.",
        "Stop. (well-known) next. __init__ runs. -- ok. ½ done. x_y; _ (—) z.",
    ]
    for text in texts:
        doc = nlp(text)
        assert tokenize.words(text) == [t.text for t in doc if t.text.strip()], text
        for line in text.splitlines():
            assert tokenize.count_sentences(line.strip()) == len(list(nlp(line.strip()).sents)) \
                or not line.strip()


# --------------------------------------------------------------------------- Gopher quality

def test_gopher_quality_reasons():
    small = GopherQuality(min_doc_words=10, max_doc_words=1000)
    assert reason(small, "I am too small...") == "gopher_short_doc"
    assert reason(small, "I am " * 20) == "gopher_below_avg_threshold"
    assert reason(small, "interconnection " * 20) == "gopher_above_avg_threshold"
    assert reason(small, "# comment " * 20) == "gopher_too_many_hashes"
    assert reason(small, "... comment " * 20) == "gopher_too_many_ellipsis"
    assert reason(small, "the ./!*?<><> apple <?////> orange  ++ interconnection !<>??? have"
                  * 20) == "gopher_below_alpha_threshold"
    assert reason(small, "- a bullet point line here\n" * 20) == "gopher_too_many_bullets"
    assert reason(small, "\n".join(["this line trails off..."] * 4 + [SENTENCE] * 6)) \
        == "gopher_too_many_end_ellipsis"
    assert reason(small, "The Cats rested upon their mats beside some dogs " * 3) \
        == "gopher_enough_stop_words"
    assert reason(small, PROSE) is None
    assert reason(GopherQuality(max_doc_words=5), PROSE) == "gopher_long_doc"


def test_gopher_quality_boundaries_are_strict():
    fifty = " ".join(["the", "have"] * 25)  # 50 words, mean length 3.5
    assert score(GopherQuality(), fifty)[0]["gopher_quality_word_count"] == 50
    assert reason(GopherQuality(), fifty) is None
    assert reason(GopherQuality(), fifty + " and") is None
    assert reason(GopherQuality(), " ".join(["the", "have"] * 24) + " the") == "gopher_short_doc"
    assert reason(GopherQuality(max_doc_words=50), fifty) is None
    assert reason(GopherQuality(max_doc_words=49), fifty) == "gopher_long_doc"
    three = " ".join(["the", "and"] * 25)  # mean word length exactly 3
    assert reason(GopherQuality(), three) is None
    # 10 '#' over 100 tokens: ratio exactly 0.1 passes, one more fails
    words = " ".join(["the", "have", "with", "that"] * 20)
    hashes = words + " #" * 10 + " x" * 10
    row = score(GopherQuality(), hashes)[0]
    assert row["gopher_quality_token_count"] == 100 and row["gopher_quality_hash_ratio"] == 0.1
    assert row["gopher_quality_keep"]
    assert reason(GopherQuality(), words + " #" * 11 + " x" * 9) == "gopher_too_many_hashes"


def test_gopher_quality_signals_and_disabled_checks():
    row = score(GopherQuality(), "Hello, world!\n- item one\n- item two...")[0]
    assert row["gopher_quality_word_count"] == 6  # symbols ",", "!", "-", "-", "..." excluded
    assert row["gopher_quality_token_count"] == 11
    assert row["gopher_quality_bullet_lines_ratio"] == pytest.approx(2 / 3)
    assert row["gopher_quality_end_ellipsis_ratio"] == pytest.approx(1 / 3)
    assert row["gopher_quality_ellipsis_ratio"] == pytest.approx(1 / 11)
    assert row["gopher_quality_stop_words"] == 0
    # every signal is computed even though the first check already rejects
    assert row["gopher_quality_reason"] == "gopher_short_doc"
    assert row["gopher_quality_mean_word_length"] == pytest.approx(24 / 6)
    off = dict(min_doc_words=None, max_doc_words=0, min_avg_word_length=None,
               max_avg_word_length=None, max_symbol_word_ratio=0, max_bullet_lines_ratio=None,
               max_ellipsis_lines_ratio=None, max_non_alpha_words_ratio=None)
    assert reason(GopherQuality(**off), "# # # the of") is None
    assert reason(GopherQuality(**off), "# # #") == "gopher_enough_stop_words"
    assert reason(GopherQuality(**off, min_stop_words=0), "") == "empty"
    assert reason(GopherQuality(), "") == "gopher_short_doc"
    # stop words are case-sensitive and counted once each
    assert reason(GopherQuality(**off), "The The the the") == "gopher_enough_stop_words"
    assert reason(GopherQuality(**off, stop_words=["cat", "dog"]), "cat dog") is None


# --------------------------------------------------------------------------- Gopher repetition

def test_gopher_repetition_reasons():
    rep = GopherRepetition()
    assert reason(rep, "I am your father.\n" * 4) == "dup_line_frac"
    assert reason(rep, "I am your father.\n\n" * 4) == "dup_para_frac"
    text = "I am groot.\n\nYou are a wizard.\n\nI am your father.\n\n" + f"{'x' * 30}.\n\n" * 2
    assert reason(rep, text) == "dup_para_char_frac"
    text = "I am groot.\nYou are a wizard.\nI am your father.\n" + f"{'x' * 40}.\n" * 2
    assert reason(rep, text) == "dup_line_char_frac"
    assert reason(rep, "I am Frank, I am Frank, I am Frank") == "top_2_gram"
    assert reason(rep, "I am Frank, you are Jhon. I am Frank. I am Frank you are Jhon") \
        == "top_3_gram"
    assert reason(rep, "I am a solo traveller " * 4 + PROSE) == "duplicated_5_n_grams"
    assert reason(rep, "") == "empty"
    assert reason(rep, PROSE) is None
    row = score(rep, "")[0]
    assert row["gopher_repetition_dup_para_frac"] is None


def test_gopher_repetition_boundaries_and_disabling():
    # 10 paragraphs, 3 duplicates: 0.3 is not > 0.3
    paras = [f"Paragraph number {i} is here." for i in range(7)] + ["Same words again."] * 3
    row = score(GopherRepetition(dup_para_char_frac=None, dup_line_char_frac=None,
                                 dup_line_frac=None), "\n\n".join(paras))[0]
    assert row["gopher_repetition_dup_para_frac"] == pytest.approx(0.2)
    paras[5] = "Same words again."
    text = "\n\n".join(paras)
    assert score(GopherRepetition(), text)[0]["gopher_repetition_dup_para_frac"] == 0.3
    assert reason(GopherRepetition(dup_para_char_frac=None, dup_line_char_frac=None,
                                   dup_line_frac=None, top_n_grams=(), dup_n_grams=()),
                  text) is None
    assert reason(GopherRepetition(dup_para_frac=0.29), text) == "dup_para_frac"
    assert reason(GopherRepetition(dup_para_frac=0, dup_para_char_frac=0, dup_line_frac=None,
                                   dup_line_char_frac=0, top_n_grams=(), dup_n_grams=()),
                  text) is None
    # a trailing newline makes an empty last line (re.split on \n+)
    row = score(GopherRepetition(), "a\nb\n")[0]
    assert row["gopher_repetition_dup_line_frac"] == 0


#: Gopher repetition's checks in DataTrove's order, as reasons
GOPHER_CHECKS = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
                 "top_2_gram", "top_3_gram", "top_4_gram",
                 *(f"duplicated_{n}_n_grams" for n in range(5, 11))]


def gopher_check_of(column: str) -> str:
    """The check whose decision a gopher_repetition signal column serves."""
    signal = column.removeprefix("gopher_repetition_")
    if signal.startswith("top_"):
        return f"top_{signal.split('_')[1]}_gram"
    if signal.startswith("dup_") and signal.endswith("_gram_frac"):
        return f"duplicated_{signal.split('_')[1]}_n_grams"
    return signal


def test_gopher_ngram_signals_only_where_they_decide():
    rng = random.Random(5)
    phrases = ["I am Frank", "you are a wizard", "buy now", "the end of the line is near",
               "a solo traveller walks", "la la", "Same words again."]
    texts = [PROSE, "I am your father.\n" * 4, "I am Frank, I am Frank, I am Frank",
             "I am Frank, you are Jhon. I am Frank. I am Frank you are Jhon",
             "I am a solo traveller " * 4 + PROSE, ""]
    texts += [rng.choice(["\n", "\n\n", " "]).join(rng.choices(phrases, k=rng.randint(1, 30)))
              + rng.choice(["", " " + PROSE]) for _ in range(300)]
    full = score(GopherRepetition(all_signals=True), *texts)
    lazy = score(GopherRepetition(), *texts)
    assert {r["gopher_repetition_reason"] for r in lazy} >= set(GOPHER_CHECKS[:6] + [None])
    for text, f, lz in zip(texts, full, lazy, strict=True):
        reason = f["gopher_repetition_reason"]
        assert lz["gopher_repetition_reason"] == reason
        last = GOPHER_CHECKS.index(reason) if reason in GOPHER_CHECKS else len(GOPHER_CHECKS)
        for column, value in f.items():
            if column.endswith(("_keep", "_reason")) or not text:
                assert lz[column] == value
                continue
            check = GOPHER_CHECKS.index(gopher_check_of(column))
            # paragraph and line signals always; an n-gram one up to the rejecting check
            needed = check < 4 or check <= last
            assert lz[column] == (value if needed else None), (text, column)
    # checks in an order other than by n: each signal is still computed where it decides
    scorer = GopherRepetition(top_n_grams="4:0.16;2:0.2", dup_n_grams="6:0.14;5:0.15")
    lazy = score(scorer, *texts)
    full = score(GopherRepetition(**{**scorer.params(), "all_signals": True}), *texts)
    for f, lz in zip(full, lazy):
        assert lz["gopher_repetition_reason"] == f["gopher_repetition_reason"]
        assert all(lz[c] in (None, v) for c, v in f.items())
    assert sum(lz[c] is None for lz in lazy for c in lz) > sum(f[c] is None
                                                               for f in full for c in f)


def test_line_and_paragraph_splits_equal_python_ones():
    rng = random.Random(1)
    texts = ["".join(rng.choice("ab \n\n\t\r\x0b\x1c\x85\u2028") for _ in range(rng.randint(0, 12)))
             for _ in range(5000)]
    array = pa.array(texts)
    assert columns.nonempty_lines(array)[0].to_pylist() == [re.split(r"\n+", t) for t in texts]
    assert columns.paragraphs(array).to_pylist() == [re.split(r"\n{2,}", t.strip())
                                                     for t in texts]
    assert columns.splitlines(array).to_pylist() == [t.splitlines() for t in texts]
    rows = [re.split(r"\n+", t) for t in texts]
    assert [tuple(x) for x in zip(*columns.duplicates(*columns.nonempty_lines(array)))] == [
        (len(r) - len(set(r)), sum(map(len, r)) - sum(map(len, set(r)))) for r in rows]
    lines = columns.splitlines(array)
    assert [tuple(x) for x in zip(*columns.duplicates(lines))] == [
        (len(t.splitlines()) - len(set(t.splitlines())),
         sum(map(len, t.splitlines())) - sum(map(len, set(t.splitlines())))) for t in texts]


def test_character_counts_equal_python_ones():
    rng = random.Random(4)
    texts = ["".join(rng.choice(["a", "#", "\n", "[", ".", "..", "…", "é", "ab", "b", "😀"])
                     for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    for array in (pa.array(texts), pa.array(["#x.."] + texts).slice(1), pa.array(["..", "."]),
                  pa.array([], pa.string())):
        strings = array.to_pylist()
        for pattern in ("#", "\n", "...", "..", "…", "ab", "aba"):
            assert list(columns.count(array, pattern)) == [t.count(pattern) for t in strings]
        assert list(columns.contains(array, "[")) == ["[" in t for t in strings]
        assert list(columns.last_chars(array)) == [ord(t[-1]) if t else -1 for t in strings]


def test_rule_sets_allocate_from_malloc_and_set_the_pool_back(monkeypatch):
    default = pa.default_memory_pool().backend_name
    seen = []

    @columns.system_allocator
    def probe(scorer, batch):
        seen.append(pa.default_memory_pool().backend_name)
        if batch is None:
            raise ValueError("bad batch")
        return batch

    assert probe(None, "batch") == "batch"
    with pytest.raises(ValueError):
        probe(None, None)
    assert seen == ["system", "system"] and pa.default_memory_pool().backend_name == default
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", default)  # a pool the user chose
    probe(None, "batch")
    assert seen[-1] == default
    table = pa.table({"text": [PROSE, SENTENCE]})
    for scorer in (GopherQuality(), GopherRepetition(), C4Quality(), FineWebQuality()):
        scored = scorer.score_batch(table)
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        module = sys.modules[type(scorer).__module__]  # the pool while the scorer reads text
        read = module.text_array
        monkeypatch.setattr(module, "text_array", lambda *args, read=read: seen.append(
            pa.default_memory_pool().backend_name) or read(*args))
        assert scorer.score_batch(table).equals(scored) and seen[-1] == "system"
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", default)
    assert pa.default_memory_pool().backend_name == default


def test_ngram_counts_follow_datatrove_scan():
    words = "a b c a b c a b c d".split()
    assert ngrams(words).top_chars(2)[0] == len("a b") * 3
    assert ngrams(words).top_chars(11)[0] == 0
    # scan: positions 0-2 new, 3 repeats "abc" -> +3 and jump to 6, which repeats -> +3
    assert ngrams(words).repeated_chars(3)[0] == 6
    assert ngrams("x y x y x".split()).repeated_chars(2)[0] == 2  # "xy" at 2, then too few
    assert ngrams([]).repeated_chars(5)[0] == 0
    # ties go to the n-gram seen first: "b c" (6 chars x 1) would beat "a b" only on length
    assert ngrams(["a", "bbbbb", "a", "c"]).top_chars(2)[0] == len("a bbbbb")
    # texts of a batch are independent: no n-gram spans two of them
    grams = ngrams("a b".split(), "a b".split(), [], "b a b".split())
    assert list(grams.repeated_chars(2)) == [0, 0, 0, 0]
    assert list(grams.top_chars(2)) == [3, 3, 0, 3]
    assert list(grams.top_coverage(2)) == [2, 2, 0, 2]


def test_ngram_scan_matches_datatrove_helpers():
    helpers = pytest.importorskip("datatrove.pipeline.filters.gopher_repetition_filter")
    rng = random.Random(0)
    texts = [[rng.choice(["a", "bb", "c", "dd", "e"][:rng.randint(1, 5)])
              for _ in range(rng.randint(0, 30))] for _ in range(2000)]
    for first in (1, 2):  # the first n asked for builds classes from tokens or from bigrams
        grams = ngrams(*texts)
        for n in range(first, 7):
            top = [helpers.find_top_duplicate(g) if (g := helpers.get_n_grams(w, n)) else 0
                   for w in texts]
            assert list(grams.top_chars(n)) == top
            assert list(grams.repeated_chars(n)) == [helpers.find_all_duplicate(w, n)
                                                     for w in texts]


# --------------------------------------------------------------------------- C4

GOOD_C4 = (
    "This is a well-written paragraph with several sentences.\n"
    "The content continues with more good information here.\n"
    "Another important point is being made in this line.\n"
    "We can see that this document has quality content.\n"
    "Finally, the conclusion wraps everything up nicely.\n"
    "An additional sentence to ensure we pass the threshold."
)


def test_c4_reasons():
    c4 = C4Quality()
    assert reason(c4, GOOD_C4) is None
    lorem = GOOD_C4.replace("several sentences", "lorem ipsum dolor sit amet")
    assert reason(c4, lorem) == "lorem_ipsum"
    assert reason(c4, GOOD_C4.replace("several", "a { bracket and")) == "curly_bracket"
    assert reason(c4, "Just one sentence.") == "too_few_sentences"
    # a "{" on a line dropped earlier (no terminal punctuation) does not reject the document
    assert reason(c4, "code { here\n" + GOOD_C4) is None
    assert reason(C4Quality(filter_curly_bracket=False), GOOD_C4.replace("several", "a {")) \
        is None


def test_c4_cleaning_and_signals():
    text = (
        "Menu\n"
        "Enable JavaScript to see this page properly.\n"
        "This site uses cookies for tracking and more.\n"
        "Too short.\n"
        "Trailing ellipsis is not an ending...\n"
        "The war ended in 1945.[12] Many people were happy.[citation needed]\n"
        + GOOD_C4
    )
    row = score(C4Quality(), text)[0]
    cleaned = C4Quality().transform([text])[0]
    assert cleaned.splitlines()[0] == "The war ended in 1945. Many people were happy."
    assert cleaned.splitlines()[1:] == GOOD_C4.splitlines()
    assert row["c4_quality_cleaned_length"] == len(cleaned)
    assert row["c4_quality_lines_kept"] == 7 and row["c4_quality_lines_removed"] == 5
    assert row["c4_quality_sentences"] == 8
    assert row["c4_quality_keep"] and row["c4_quality_reason"] is None
    # a word over max_word_length drops its line (counted before citations are removed)
    assert "x" * 10 not in C4Quality(max_word_length=9).transform(
        ["A " + "x" * 10 + " word line.\n" + GOOD_C4])[0]


def test_c4_sentence_threshold_and_options():
    five = "\n".join(["One short line here."] * 5)
    assert reason(C4Quality(), five) is None
    assert reason(C4Quality(), "\n".join(["One short line here."] * 4)) == "too_few_sentences"
    assert reason(C4Quality(min_num_sentences=-1), "Tiny line here.") is None
    assert reason(C4Quality(filter_no_terminal_punct=False, min_num_sentences=1),
                  "no punctuation at all here") is None
    split = C4Quality(split_paragraph=False)
    assert split.transform(["First one here. Second one here! Third."])[0] \
        == "First one here. Second one here!"


# --------------------------------------------------------------------------- FineWeb

GOOD_FW = (
    "This is a well-written paragraph that ends with proper punctuation.\n"
    "The content here is substantial and has meaningful information.\n"
    "Quality filtering ensures that only the best documents pass through.\n"
    "Each line here is long enough and ends with a terminal punctuation mark.\n"
    "This document should pass all the quality checks applied by the filter."
)


def test_fineweb_reasons():
    assert reason(FineWebQuality(), GOOD_FW) is None
    assert reason(FineWebQuality(), "") == "empty"
    assert reason(FineWebQuality(), "  \n\t\n") == "empty"
    assert reason(FineWebQuality(line_punct_thr=0.5),
                  "No punctuation here\nAnother line without any\nStill nothing") \
        == "line_punct_ratio"
    assert reason(FineWebQuality(short_line_thr=0.5, line_punct_thr=0.0),
                  "hi.\nbye.\nok.\nno.\nyes.") == "short_line_ratio"
    assert reason(FineWebQuality(), GOOD_FW + "\n" + GOOD_FW.splitlines()[0]) == "char_dup_ratio"
    assert reason(FineWebQuality(new_line_ratio=0.1, short_line_thr=1, line_punct_thr=0,
                                 char_duplicates_ratio=1), "\n".join(["a"] * 50)) == "list_ratio"


def test_fineweb_signals_and_boundaries():
    lines = ["A line that is clearly longer than thirty characters."] + [f"short {i}"
                                                                         for i in range(7)]
    row = score(FineWebQuality(), "\n".join(lines))[0]
    assert row["fineweb_quality_line_punct_ratio"] == 0.125  # 1/8 is not < 0.12
    assert row["fineweb_quality_short_line_ratio"] == 0.875
    assert row["fineweb_quality_reason"] == "short_line_ratio"
    no_punct = "\n".join(["a line long enough to not be short at all here"] * 2)
    assert reason(FineWebQuality(line_punct_exclude_zero=True, char_duplicates_ratio=1,
                                 new_line_ratio=1), no_punct) is None
    assert reason(FineWebQuality(), no_punct) == "line_punct_ratio"
    assert reason(FineWebQuality(stop_chars=("e",), char_duplicates_ratio=1), no_punct) is None
    row = score(FineWebQuality(all_signals=True), "Same line.\nSame line.\n\nOther one!")[0]
    assert row["fineweb_quality_char_dup_ratio"] == pytest.approx(10 / 30)
    assert row["fineweb_quality_list_ratio"] == pytest.approx(3 / 9)
    assert score(FineWebQuality(), "")[0]["fineweb_quality_list_ratio"] is None


def test_fineweb_list_ratio_only_where_it_decides():
    texts = [GOOD_FW, "Same line.\nSame line.\n\nOther one!", "", "\n".join(["a"] * 50)]
    full = score(FineWebQuality(all_signals=True), *texts)
    lazy = score(FineWebQuality(), *texts)
    assert [r["fineweb_quality_reason"] for r in lazy] == [r["fineweb_quality_reason"]
                                                            for r in full]
    assert [r["fineweb_quality_list_ratio"] for r in lazy] == [
        full[0]["fineweb_quality_list_ratio"], None, None, None]
    assert {k: v for k, v in lazy[1].items() if "list_ratio" not in k} == \
        {k: v for k, v in full[1].items() if "list_ratio" not in k}
    # the same columns when another rule set has already tokenized the whole batch
    table = pa.table({"text": texts})
    tokenize.clear_caches()
    alone = FineWebQuality().score_batch(table)
    GopherQuality().score_batch(table)
    assert FineWebQuality().score_batch(table).equals(alone)


# --------------------------------------------------------------------------- contract

@pytest.mark.parametrize("scorer", [GopherQuality(), GopherRepetition(), C4Quality(),
                                    FineWebQuality()])
def test_output_contract(scorer):
    texts = [PROSE, "", GOOD_C4, None, "short"]
    scorer = type(scorer)(text_column="body")
    table = scorer.score_batch(pa.table({"body": texts, "id": list(range(5))}))
    assert table.num_rows == 5 and "id" not in table.column_names
    assert table.column_names[:2] == [f"{scorer.name}_keep", f"{scorer.name}_reason"]
    assert all(c.startswith(scorer.name + "_") for c in table.column_names)
    rows = table.to_pylist()
    assert all((r[f"{scorer.name}_reason"] is None) == r[f"{scorer.name}_keep"] for r in rows)
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone.score_batch(pa.table({"body": texts})).equals(table)
    for kind in (pa.large_string(), pa.dictionary(pa.int32(), pa.string())):
        column = pa.array(texts, pa.string()).cast(kind)
        assert scorer.score_batch(pa.table({"body": column})).equals(table), kind
    split = pa.chunked_array([pa.array(texts[:2], pa.string()), pa.array(texts[2:], pa.string())])
    assert scorer.score_batch(pa.table({"body": split})).equals(table)
    assert clone.params()["text_column"] == "body"
    empty = scorer.score_batch(pa.table({"body": pa.array([], pa.string())}))
    assert empty.num_rows == 0 and empty.column_names == table.column_names
    assert empty.schema == table.schema


# --------------------------------------------------------------------------- DataTrove parity

PARITY_DOCS = [
    PROSE, GOOD_C4, GOOD_FW, "", "   ", "Just one sentence.", "I am your father.\n" * 4,
    "I am a solo traveller " * 4 + PROSE, "# comment " * 20, "... comment " * 20,
    "- bullet item number one\n" * 30, SENTENCE * 10, (SENTENCE + "\n") * 8,
    "\n".join(f"{i}. Item {i} of the list." for i in range(40)),
    "Menu\nHome\nAbout us\nContact\n" + PROSE + "\nPrivacy policy\nTerms of use.",
    "def f(x):\n    return {'a': x}\n\nprint(f(1))\n" * 5,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" + GOOD_C4,
    "Enable JavaScript to continue using this site.\n" + GOOD_C4,
    "The war ended in 1945.[12] Many people were happy.[citation needed]\n" + GOOD_C4,
    "Café déjà vu — naïve façade. Ünïcödé text… with “quotes” and ‘more’.\n" * 6,
    "日本語の文章です。これは二番目の文です。\n" * 10 + PROSE,
    "Прекрасная погода сегодня. Мы пошли гулять в парк.\n" * 8,
    "Emoji 😀 party 🎉 time! Don't you love it? Yes, we do.\n" * 12,
    "Visit https://example.com/page?x=1 and email info@example.org today. " * 15,
    "It's 5km away; costs $5.99 (or €5). Isn't that great? I'd say so!\n" * 9,
    "\n\n".join(["A paragraph that repeats itself many times over."] * 3 + [PROSE]),
    "word " * 60, "a " * 200, "supercalifragilistic " * 60,
    "The quick brown fox jumps over the lazy dog. " * 3 + "\n" + "x\n" * 20,
    ("Chapter 1\n\nIt was the best of times, it was the worst of times, it was the age of "
     "wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of "
     "incredulity.\n\n") * 2,
    "Q: What is it?\nA: It is a thing.\n" * 10,
    "•  point one here\n•  point two here\n" * 10 + PROSE,
    "He waited...\nAnd waited...\nThen left.\n" * 5 + PROSE,
    PROSE.replace(" ", "\t"), PROSE.replace(". ", ".  "), PROSE.upper(), PROSE + " {x}",
    "Mr. and Mrs. Smith met Dr. Jones at 10am on Jan. 5th in the U.S. with the kids.\n" * 7,
]


def test_decisions_match_datatrove():
    pytest.importorskip("spacy")
    filters = pytest.importorskip("datatrove.pipeline.filters")
    from datatrove.data import Document

    pairs = [(GopherQuality(), filters.GopherQualityFilter()),
             (GopherRepetition(), filters.GopherRepetitionFilter()),
             (C4Quality(), filters.C4QualityFilter()),
             (FineWebQuality(), filters.FineWebQualityFilter())]
    for scorer, flt in pairs:
        rows = score(scorer, *PARITY_DOCS)
        for text, row in zip(PARITY_DOCS, rows, strict=True):
            doc = Document(text=text, id="0")
            if isinstance(flt, filters.GopherQualityFilter) and not tokenize.words(text):
                expected = "gopher_short_doc"  # DataTrove rejects before dividing by zero
            else:
                result = flt.filter(doc)
                expected = None if result is True else result[1]
            assert row[f"{scorer.name}_reason"] == expected, (scorer.name, text[:60])
            if scorer.name == "c4_quality" and expected is None:
                assert scorer.transform([text])[0] == doc.text
