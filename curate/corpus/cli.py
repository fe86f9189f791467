"""``curate corpus``: build the text corpus, list its slices.

A :class:`~curate.core.errors.CurateError` raised here reaches ``curate``'s entry point,
which prints it as one ``error: ...`` line and exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curate.corpus.slices import DEFAULT_SLICES, SLICES

MB = 1_000_000


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def corpus():
    """A text corpus from installed Debian packages and the Python standard library.

    \b
    curate corpus slices                     # the slices and the packages they read
    curate corpus build corpus/ --max-mb 50  # train.parquet, heldout.parquet, manifest.json
    """


@corpus.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--slices", "slice_names", default=",".join(DEFAULT_SLICES), show_default=True,
              metavar="NAME,...", help="Slices to build, comma-separated, from: "
              f"{', '.join(SLICES)}.")
@click.option("--max-mb", type=float, default=None,
              help="Cap per slice on the text written, in MB (10^6 bytes of UTF-8), filled "
              "from a seeded random order of its documents [default: no cap].")
@click.option("--heldout", type=float, default=0.1, show_default=True,
              help="Share of each slice's documents held out.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random order behind the cap and the split.")
@click.option("--min-chars", type=int, default=200, show_default=True,
              help="Shorter documents are left out.")
@click.option("--strict", is_flag=True,
              help="A package a slice needs but that is not installed is an error (default: "
              "that part is skipped, and the manifest says so).")
def build(out, slice_names, max_mb, heldout, seed, min_chars, strict):
    """Build the corpus into the folder OUT."""
    from curate.corpus.build import build_corpus

    manifest = build_corpus(out, slices=[s.strip() for s in slice_names.split(",") if s.strip()],
                            max_bytes=None if max_mb is None else int(max_mb * MB),
                            heldout_fraction=heldout, seed=seed, min_chars=min_chars,
                            strict=strict, progress=sys.stderr.isatty())
    for name, report in manifest.slices.items():
        missing = f"; not installed: {', '.join(report.missing)}" if report.missing else ""
        click.echo(f"{name}: train {report.train.documents} documents "
                   f"({report.train.bytes / MB:.1f} MB), held out {report.heldout.documents} "
                   f"({report.heldout.bytes / MB:.1f} MB){missing}")
    for name, reason in manifest.skipped.items():
        click.echo(f"{name}: skipped: {reason}")
    click.echo(f"wrote {out / 'train.parquet'}, {out / 'heldout.parquet'}, "
               f"{out / 'manifest.json'}")


@corpus.command("slices")
def list_slices():
    """Each slice, what it holds, and the packages it reads (installed or not)."""
    from curate.corpus.dpkg import Dpkg

    dpkg = Dpkg()
    for sl in SLICES.values():
        click.echo(f"{sl.name}: {sl.summary}")
        for reader in sl.readers:
            state = ("" if reader.package is None else
                     "  [installed]" if dpkg.installed(reader.package) else "  [not installed]")
            click.echo(f"  {reader.describe()}{state}")
