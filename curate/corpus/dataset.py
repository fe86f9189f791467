"""The package corpus as a built-in dataset: ``builtin:packages:max_mb=4,split=heldout``.

The corpus is built on first use into ``$CURATE_CACHE/corpus/<fingerprint>/`` and reused:
the fingerprint covers the arguments, curate's and Python's versions and the state of
the installed packages (dpkg's status file), so installing or upgrading a package
builds it anew. Recipes, experiments and the CLI name it like any other dataset.
"""

from __future__ import annotations

from pathlib import Path

from curate.core.cache import default_folder
from curate.core.errors import CurateError
from curate.core.hashing import file_hash, fingerprint
from curate.core.validate import string_list

DPKG_STATUS = Path("/var/lib/dpkg/status")
SPLITS = ("train", "heldout")


def packages_corpus(split: str = "train", slices: str = "prose;man;changelog;copyright;code",
                    max_mb: float | str | None = None, heldout: float = 0.1, seed: int = 0,
                    min_chars: int = 200) -> Path:
    """The ``split`` file (``train`` or ``heldout``) of the corpus that
    :func:`curate.corpus.build_corpus` builds with these arguments (``slices`` as
    ``a;b;c``, ``max_mb`` the cap per slice in MB); every slice's packages must be
    installed (``benchmarks/install_corpora.sh``). ``max_mb`` may give slices their own
    caps, ``prose=4;multilingual=0.6`` (a slice left out is not capped)."""
    import platform

    import curate
    from curate.corpus.build import build_corpus

    if split not in SPLITS:
        raise CurateError(f"built-in dataset 'packages' has no split {split!r} (splits: "
                          f"{', '.join(SPLITS)})")
    names = string_list("packages", "slices", slices)
    max_bytes = _caps(max_mb)
    key = fingerprint({"slices": names, "max_bytes": max_bytes, "heldout": float(heldout),
                       "seed": int(seed), "min_chars": int(min_chars),
                       "curate": curate.__version__, "python": platform.python_version(),
                       "dpkg": file_hash(DPKG_STATUS) if DPKG_STATUS.is_file() else None})
    folder = default_folder() / "corpus" / key
    if not (folder / "manifest.json").is_file():
        build_corpus(folder, slices=names, max_bytes=max_bytes, heldout_fraction=float(heldout),
                     seed=int(seed), min_chars=int(min_chars), strict=True)
    return folder / f"{split}.parquet"


def _caps(max_mb) -> int | dict | None:
    """Bytes from ``max_mb``: None, one cap in MB, or ``slice=MB;slice=MB``."""
    if max_mb is None:
        return None
    if isinstance(max_mb, str) and "=" in max_mb:
        caps = {}
        for part in string_list("packages", "max_mb", max_mb):
            name, _, mb = part.partition("=")
            caps[name.strip()] = _mb(mb)
        return caps
    return _mb(max_mb)


def _mb(value) -> int:
    try:
        return int(float(value) * 1_000_000)
    except (TypeError, ValueError):
        raise CurateError(f"packages: max_mb must be a number of MB or slice=MB;..., got "
                          f"{value!r}") from None
