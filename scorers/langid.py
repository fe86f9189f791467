"""Language identification with langid.py (Lui & Baldwin, 2012).

The model ships inside the ``langid`` package (97 languages, byte n-gram naive
Bayes), so nothing is downloaded. Decoding it takes ~2-3 s, so it is loaded once
per process, on the first batch, and never pickled with the scorer.

Features are extracted with langid's own ``instance2fv``; the naive-Bayes product
is then one sparse matrix product for the whole batch instead of one dense
7480x97 product per text (langid's ``classify`` spends ~4 ms per text there). The
confidence is the normalised posterior probability of the chosen language, as
``LanguageIdentifier(norm_probs=True).classify`` computes it.
"""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer
from curate.core.validate import positive_int, string, string_list

#: The 97 languages of the model that ships with langid.py (ISO 639-1 codes).
LANGUAGES = (
    "af", "am", "an", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da",
    "de", "dz", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fo", "fr", "ga", "gl", "gu",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn",
    "ko", "ku", "ky", "la", "lb", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "mt",
    "nb", "ne", "nl", "nn", "no", "oc", "or", "pa", "pl", "ps", "pt", "qu", "ro", "ru", "rw",
    "se", "si", "sk", "sl", "sq", "sr", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk",
    "ur", "vi", "vo", "wa", "xh", "zh", "zu",
)

_BASE_IDENTIFIER = None
_IDENTIFIERS: dict[tuple[str, ...] | None, object] = {}


def identifier(languages: tuple[str, ...] | None = None):
    """The process-wide langid identifier, restricted to ``languages`` when given."""
    global _BASE_IDENTIFIER
    if languages not in _IDENTIFIERS:
        if _BASE_IDENTIFIER is None:
            from langid.langid import LanguageIdentifier, model

            _BASE_IDENTIFIER = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        ident = _BASE_IDENTIFIER
        if languages is not None:
            # set_languages assigns new trimmed arrays, so the copy leaves the base intact.
            ident = copy.copy(_BASE_IDENTIFIER)
            unknown = sorted(set(languages) - set(_BASE_IDENTIFIER.nb_classes))
            if unknown:
                raise CurateError(f"langid does not know languages {unknown}; it knows: "
                                  f"{', '.join(sorted(_BASE_IDENTIFIER.nb_classes))}")
            ident.set_languages(list(languages))
        _IDENTIFIERS[languages] = ident
    return _IDENTIFIERS[languages]


@register_scorer
class LangID(Scorer):
    """Language (ISO 639-1 code) and its probability for each text.

    Parameters
    ----------
    languages:
        Restrict the answer to these codes (:data:`LANGUAGES`): a list (``["en", "de"]``)
        or, from the command line or YAML, one string ``"en;de"`` (``"en+de"`` also
        works); default: all 97. Unknown codes fail at construction.
    max_chars:
        Only the first ``max_chars`` characters are classified (default 5000), so
        multi-MB documents cost the same as a page of text.
    text_column:
        Column holding the text.

    Output: ``langid_language`` (string; null for empty or whitespace-only text) and
    ``langid_confidence`` (float32 in [0, 1]; 0 for empty text).
    """

    name = "langid"
    kind = "model"
    directions = {"langid_confidence": EASIER}
    primary = "langid_confidence"
    batch_size = 1000

    def __init__(self, languages: list[str] | str | None = None, max_chars: int = 5000,
                 text_column: str = "text"):
        owner = self.name
        given = languages.replace("+", ";") if isinstance(languages, str) else languages
        self.languages = string_list(owner, "languages", given, optional=True)
        if self.languages is not None:
            unknown = sorted(set(self.languages) - set(LANGUAGES))
            if unknown or not self.languages:
                raise CurateError(
                    f"{owner}: languages must be one or more codes langid knows, got "
                    f"{languages!r}" + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                    + f"; known: {', '.join(LANGUAGES)}")
        self.max_chars = positive_int(owner, "max_chars", max_chars)
        self.text_column = string(owner, "text_column", text_column)

    def score_batch(self, batch: pa.Table) -> pa.Table:
        ident = identifier(None if self.languages is None else tuple(self.languages))
        texts = [t[: self.max_chars] for t in self.texts(batch)]
        rows = [i for i, t in enumerate(texts) if t.strip()]
        language = [None] * len(texts)
        confidence = np.zeros(len(texts), dtype=np.float32)
        if rows:
            fv = _feature_matrix(ident, [texts[i] for i in rows])
            log_post = np.asarray(fv @ ident.nb_ptc) + ident.nb_pc
            best = log_post.argmax(axis=1)
            # P(best) = 1 / sum_j exp(logp_j - logp_best), langid's own normalisation.
            with np.errstate(over="ignore"):
                conf = 1.0 / np.exp(log_post - log_post[np.arange(len(rows)), best, None]).sum(1)
            confidence[rows] = conf
            for row, b in zip(rows, best, strict=True):
                language[row] = ident.nb_classes[b]
        return pa.table({"langid_language": pa.array(language, pa.string()),
                         "langid_confidence": pa.array(confidence)})


def _feature_matrix(ident, texts: list[str]):
    """langid byte n-gram counts of ``texts`` as a sparse (len(texts), n_features) matrix."""
    from scipy.sparse import csr_matrix

    indices, counts, indptr = [], [], [0]
    for text in texts:
        fv = ident.instance2fv(text)
        nonzero = np.flatnonzero(fv)
        indices.append(nonzero)
        counts.append(fv[nonzero])
        indptr.append(indptr[-1] + len(nonzero))
    return csr_matrix((np.concatenate(counts).astype(np.float64), np.concatenate(indices),
                       np.asarray(indptr)), shape=(len(texts), ident.nb_numfeats))
