"""Per-document string statistics of a batch, computed with pyarrow.compute and numpy.

The rule sets split a batch's texts into lines or paragraphs as Arrow list arrays (one
list per document) and reduce per-element values to one number per document here, so
no Python code runs per line. Splits reproduce Python's exactly: Arrow's whitespace is
``str.isspace``'s, and :func:`splitlines` cuts where ``str.splitlines`` does.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def system_allocator(score_batch):
    """``score_batch`` with Arrow allocating from the C library's ``malloc`` while it runs
    (the default pool, process-wide, is set back after).

    pyarrow's default pool (mimalloc in its wheels) gives freed memory back to the
    operating system soon after, so a batch's many short-lived arrays fault their pages
    in again and again; ``malloc`` keeps freed memory for the next ones. On the
    benchmarks' 2-core virtual machine this takes about 6% off the CPU time of the four
    rule sets. A pool chosen with ``ARROW_DEFAULT_MEMORY_POOL`` is left alone.
    """
    @functools.wraps(score_batch)
    def scoring(self, batch):
        if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
            return score_batch(self, batch)
        previous = pa.default_memory_pool()
        pa.set_memory_pool(pa.system_memory_pool())
        try:
            return score_batch(self, batch)
        finally:
            pa.set_memory_pool(previous)
    return scoring


def re2_class(chars) -> str:
    """An RE2 character class of ``chars`` (every character written as ``\\x{...}``)."""
    return "[{}]".format("".join(f"\\x{{{ord(c):x}}}" for c in sorted(chars)))


#: ``str.isspace`` characters, as an RE2 class.
SPACE = re2_class(c for c in map(chr, range(0x3001)) if c.isspace())

# str.splitlines' line boundaries (RE2 syntax); "\r\n" is one boundary.
_LINE_BOUNDARY = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\x{2028}\x{2029}]"
_RARE_BOUNDARIES = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class LastResult:
    """``compute(array)`` for the most recent Arrow array, remembered by its buffers.

    Scorers run one after another on the same batch, so each keeps the result of its
    shared work (the text column, its tokens) for the last array it saw. The key is the
    array's type, offset, length and buffer addresses; the array is kept alive with the
    result, so its buffers cannot be reused by other data while they are the key.
    """

    def __init__(self, compute):
        self.compute = compute
        self.last: tuple | None = None

    def __call__(self, array: pa.Array | pa.ChunkedArray):
        key = _buffers(array)
        if self.last is None or self.last[0] != key:
            self.last = (key, array, self.compute(array))
        return self.last[2]

    def peek(self, array: pa.Array | pa.ChunkedArray):
        """The remembered result for ``array`` if it is the most recent one, else None."""
        if self.last is not None and self.last[0] == _buffers(array):
            return self.last[2]
        return None

    def clear(self) -> None:
        self.last = None


def _buffers(array: pa.Array | pa.ChunkedArray) -> tuple:
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    return tuple((c.type, c.offset, len(c), tuple(None if b is None else (b.address, b.size)
                                                    for b in c.buffers())) for c in chunks)


def _one_string_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.chunk(0) if texts.num_chunks == 1 else texts.combine_chunks()
    if texts.type != pa.string():  # large strings, dictionary-encoded strings, nulls only
        texts = texts.cast(pa.string())
    return pc.fill_null(texts, "") if texts.null_count else texts


_TEXTS = LastResult(_one_string_array)


def text_array(batch: pa.Table, column: str) -> pa.Array:
    """The batch's text column as one string array, nulls replaced by "" (the same array
    object for the same column, so what is remembered for it is shared)."""
    return _TEXTS(batch.column(column))


def count(texts: pa.Array, pattern: str) -> np.ndarray:
    """Non-overlapping occurrences of ``pattern`` in each text (``str.count``), found in the
    texts' bytes with numpy when the pattern is one byte repeated (a run of k copies of the
    byte holds k // len(pattern) of it) or cannot overlap itself."""
    code = pattern.encode()
    repeated = len(set(code)) == 1
    if not code or not (repeated or all(code[:k] != code[-k:] for k in range(1, len(code)))):
        return pc.count_substring(texts, pattern).to_numpy(zero_copy_only=False).astype(
            np.int64)
    data, offsets = _bytes(texts)
    at = np.flatnonzero(data == code[0])
    if not repeated:  # where the whole pattern starts, inside one text
        at = at[_starts_with(data, at, code)]
        holder = _holders(offsets, at)
        return np.bincount(holder[holder == _holders(offsets, at + len(code) - 1)],
                           minlength=len(texts))
    if not len(at):
        return np.zeros(len(texts), np.int64)
    # every copy of the byte, in runs cut where a text ends
    holder = _holders(offsets, at)
    starts = np.flatnonzero(np.concatenate([[True], (np.diff(at) != 1) | (np.diff(holder) != 0)]))
    runs = np.diff(np.append(starts, len(at))) // len(code)
    return np.bincount(holder[starts], runs, len(texts)).astype(np.int64)


def contains(strings: pa.Array, pattern: str) -> np.ndarray:
    """Whether ``pattern`` occurs in each string."""
    return count(strings, pattern) > 0


def last_chars(strings: pa.Array) -> np.ndarray:
    """The code point of each string's last character, decoded from its UTF-8 bytes; -1 for
    an empty string."""
    data, offsets = _bytes(strings)
    ends = (offsets[1:] - offsets[0]).astype(np.int64)
    nonempty = offsets[1:] > offsets[:-1]
    at = ends[nonempty]
    size = char_bytes_before(data, at)
    lead = data[at - size].astype(np.int64)
    code = lead & np.array([0, 0x7F, 0x1F, 0x0F, 0x07])[size]
    for k in range(1, 4):
        more = size > k
        code[more] = (code[more] << 6) | (data[at[more] - size[more] + k] & 0x3F)
    chars = np.full(len(strings), -1, np.int64)
    chars[nonempty] = code
    return chars


def char_bytes_before(data: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Bytes of the UTF-8 character that ends just before each of ``ends`` in ``data`` (a
    uint8 array): one, plus the continuation bytes 0b10xxxxxx before the end."""
    size = np.ones(len(ends), np.int64)
    for _ in range(3):
        size += (data[ends - size] & 0xC0) == 0x80
    return size


def _bytes(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets): the bytes of ``strings`` (a string array), one after the other, and
    where each string starts in the data buffer (plus where the last one ends); string i
    is ``data[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]``."""
    if not len(strings):
        return np.zeros(0, np.uint8), np.zeros(1, np.int32)
    offsets = np.frombuffer(strings.buffers()[1], np.int32)[
        strings.offset:strings.offset + len(strings) + 1]
    buffer = strings.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data[offsets[0]:offsets[-1]], offsets


def split_whitespace(strings: pa.Array) -> pa.ListArray:
    """``pc.utf8_split_whitespace(strings)``, guarded against a pyarrow defect.

    pyarrow (seen in 26.0.1) reads one byte past a string that ends in whitespace and,
    when that byte is not valid UTF-8, keeps the whitespace in the last piece (``"end\\n"``)
    or returns it as a piece. Only the last string of a buffer can meet such a byte (any
    other is followed by the next string), so the split runs on a copy with one more string
    after the last: its result no longer depends on the memory after the buffer.
    """
    guarded = pa.concat_arrays([strings, pa.array(["x"], strings.type)])
    return pc.utf8_split_whitespace(guarded).slice(0, len(strings))


def elements(lists: pa.ListArray) -> pa.Array:
    """All elements of ``lists``, in order."""
    return pc.list_flatten(lists)


def sizes(lists: pa.ListArray) -> np.ndarray:
    """Number of elements of each list."""
    return pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)


def sum_between(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each range ``offsets[i]:offsets[i + 1]``."""
    totals = np.concatenate([[0], np.cumsum(values)])
    return totals[offsets[1:]] - totals[offsets[:-1]]


def sum_per_list(values: np.ndarray, lists: pa.ListArray) -> np.ndarray:
    """Sum of ``values`` (one per element of :func:`elements`) over each list."""
    return sum_between(values, np.concatenate([[0], np.cumsum(sizes(lists))]))


def owner(lists: pa.ListArray) -> np.ndarray:
    """Index of the list each element belongs to."""
    return np.repeat(np.arange(len(lists)), sizes(lists))


def lengths(strings: pa.Array) -> np.ndarray:
    """Characters (code points) of each string, as ``len`` counts them."""
    return pc.utf8_length(strings).to_numpy(zero_copy_only=False).astype(np.int64)


def regroup(lists: pa.ListArray, values: pa.Array) -> pa.ListArray:
    """``values`` (one per element of ``lists``) grouped into lists of the same sizes."""
    offsets = np.concatenate([[0], np.cumsum(sizes(lists))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def drop(lists: pa.ListArray, mask: np.ndarray) -> pa.ListArray:
    """``lists`` without the elements where ``mask`` (one flag per element) is true."""
    removed = np.concatenate([[0], np.cumsum(mask)])
    ends = np.cumsum(sizes(lists))
    offsets = np.concatenate([[0], ends - removed[ends]]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), elements(lists).filter(pa.array(~mask)))


def _holding_any(strings: pa.Array, chars: str) -> np.ndarray:
    """Whether each string holds one of ``chars``: the bytes that start one of their UTF-8
    encodings are found in one pass, then checked against each whole encoding (a character
    never spans two strings)."""
    data, offsets = _bytes(strings)
    codes = [c.encode() for c in chars]
    first = np.zeros(256, bool)
    first[[code[0] for code in codes]] = True
    at = np.flatnonzero(first[data])
    found = np.zeros(len(at), bool)
    for code in codes:
        found |= _starts_with(data, at, code)
    holding = np.zeros(len(strings), bool)
    holding[_holders(offsets, at[found])] = True
    return holding


def _starts_with(data: np.ndarray, at: np.ndarray, code: bytes) -> np.ndarray:
    """Whether ``code`` starts at each position ``at`` of ``data``."""
    match = at <= len(data) - len(code)
    for k, byte in enumerate(code):
        match[match] = data[at[match] + k] == byte
    return match


def _holders(offsets: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the string holding each byte position ``at`` of :func:`_bytes`' data."""
    return np.searchsorted(offsets, at + offsets[0], "right") - 1


def _splitlines(texts: pa.Array) -> pa.ListArray:
    """``[t.splitlines() for t in texts]``: a regex split at the same boundaries, without
    the empty piece it leaves after a final boundary (or for an empty text)."""
    rare = _holding_any(texts, _RARE_BOUNDARIES)
    if rare.any():  # split those with the regex, the others at "\n", and restore the order
        order = np.argsort(np.concatenate([np.flatnonzero(~rare), np.flatnonzero(rare)]))
        pieces = pa.concat_arrays([
            pc.split_pattern(texts.filter(pa.array(~rare)), "\n"),
            pc.split_pattern_regex(texts.filter(pa.array(rare)), pattern=_LINE_BOUNDARY),
        ]).take(pa.array(order))
    else:
        pieces = pc.split_pattern(texts, "\n")
    values = elements(pieces)
    last = np.cumsum(sizes(pieces)) - 1  # a split always gives at least one piece
    final_empty = np.zeros(len(values), bool)
    final_empty[last] = lengths(values.take(last)) == 0
    return drop(pieces, final_empty)


#: ``splitlines(texts)``: :func:`_splitlines`, remembered for the most recent array.
splitlines = LastResult(_splitlines)


def _newline_pieces(texts: pa.Array) -> tuple[pa.ListArray, np.ndarray]:
    pieces = pc.split_pattern(texts, "\n")
    ids = pc.dictionary_encode(elements(pieces)).indices.to_numpy(zero_copy_only=False)
    return pieces, ids.astype(np.int64)


#: ``newline_pieces(texts)``: (pieces, ids): each text split at every "\n", and an id per
#: piece, equal pieces sharing one (so the lists of lines made from the pieces find their
#: duplicates without hashing them again); remembered for the most recent array.
newline_pieces = LastResult(_newline_pieces)


def nonempty_lines(texts: pa.Array) -> tuple[pa.ListArray, np.ndarray]:
    """(``[re.split(r"\\n+", t) for t in texts]``, an id per line as in
    :data:`newline_pieces`): the non-empty pieces between newlines, plus an empty first or
    last piece when a text starts or ends with a newline."""
    pieces, ids = newline_pieces(texts)
    ends = np.cumsum(sizes(pieces))  # a split always gives at least one piece
    empty = pc.binary_length(elements(pieces)).to_numpy(zero_copy_only=False) == 0
    empty[ends - 1] = empty[ends - sizes(pieces)] = False
    return drop(pieces, empty), ids[~empty]


def paragraphs(texts: pa.Array) -> pa.ListArray:
    """``[re.split(r"\\n{2,}", t.strip()) for t in texts]``, from a plain split at every
    "\\n\\n": a run of three or more newlines leaves pieces that start with "\\n" or are
    empty, which are mended (a stripped text's pieces cannot be otherwise)."""
    trimmed = pc.utf8_trim_whitespace(texts)
    pieces = pc.split_pattern(trimmed, "\n\n")
    values = pc.utf8_ltrim(elements(pieces), characters="\n")
    empty = pc.binary_length(values).to_numpy(zero_copy_only=False) == 0
    empty &= np.repeat(pc.binary_length(trimmed).to_numpy(zero_copy_only=False) > 0,
                       sizes(pieces))  # an empty text keeps its one empty piece
    return drop(regroup(pieces, values), empty)


def duplicates(lists: pa.ListArray, ids: np.ndarray | None = None) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Per list: (elements equal to an earlier one of the same list, their characters).
    ``ids``: one per element, equal for equal elements (by default from hashing them)."""
    values = elements(lists)
    if ids is None:
        ids = pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False).astype(
            np.int64)
    codes = owner(lists) * max(len(values), 1) + ids
    later = np.ones(len(values), bool)
    later[np.unique(codes, return_index=True)[1]] = False
    chars = np.zeros(len(values), np.int64)
    chars[later] = lengths(values.filter(pa.array(later)))
    return sum_per_list(later, lists), sum_per_list(chars, lists)
