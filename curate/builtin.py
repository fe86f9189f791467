"""Built-in datasets, referred to as ``builtin:NAME`` or ``builtin:NAME:key=value,...``.

Two kinds, both registered in :data:`curate.core.registry.DATASETS`:

* text samples shipped inside the package (see ``curate/data/quickstart/PROVENANCE.md``
  and ``curate/data/text_corpus/manifest.json``), registered here and resolved to a file
  path; ``text_corpus`` has two splits, ``builtin:text_corpus:split=heldout``;
* ``packages``: the corpus :mod:`curate.corpus` builds from installed Debian packages,
  built on first use and cached (``builtin:packages:max_mb=4,split=heldout``);
* generated or package-provided tables (MNIST-1D, scikit-learn's digits, Fashion-MNIST
  from its IDX files), registered beside their functions in
  :mod:`curate.train.builtin_data`; each takes keyword parameters and returns a
  ``pyarrow.Table`` with ``id``, ``label`` and input columns.
"""

from __future__ import annotations

from pathlib import Path

from curate.core.errors import CurateError
from curate.core.registry import DATASETS, parse_spec, register_dataset

DATA_DIR = Path(__file__).parent / "data"


class TextSample:
    """A text sample shipped in the package: calling it gives its file path.

    A sample with ``splits`` has one file per split (``file`` holds ``{split}``); calling
    it with ``split=`` picks one, the first by default.
    """

    def __init__(self, name: str, file: str, splits: tuple[str, ...] = ()):
        self.name, self.file, self.splits = name, file, splits

    def __call__(self, split: str | None = None) -> Path:
        if split is not None and split not in self.splits:
            known = f"one of {', '.join(self.splits)}" if self.splits else "none"
            raise CurateError(f"built-in dataset {self.name!r} has no split {split!r} "
                              f"(splits: {known})")
        if not self.splits:
            return DATA_DIR / self.file
        return DATA_DIR / self.file.format(split=split or self.splits[0])


for _name, _file in (("quickstart", "quickstart/docs.jsonl.gz"),
                     ("quickstart-good", "quickstart/reference_good.jsonl.gz"),
                     ("quickstart-bad", "quickstart/reference_bad.jsonl.gz")):
    register_dataset(TextSample(_name, _file))
register_dataset(TextSample("text_corpus", "text_corpus/{split}.parquet", ("train", "heldout")))


@register_dataset(name="packages")
def packages(**params) -> Path:
    """The corpus built from installed packages (:mod:`curate.corpus.dataset`)."""
    from curate.corpus.dataset import packages_corpus

    return packages_corpus(**params)


def resolve(spec: str):
    """The file path (text samples) or Arrow table (generated datasets) for a spec such as
    ``"mnist1d:split=test,seed=1"``."""
    name, params = parse_spec(spec, "dataset")
    make = DATASETS.get(name)
    try:
        return make(**params)
    except TypeError as exc:
        raise CurateError(f"bad parameters for built-in dataset {name!r}: {exc}") from None
