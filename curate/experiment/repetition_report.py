"""The tables, plots and report of a ``repetition`` experiment, from its result rows.

:func:`analyse` fills a :class:`curate.experiment.repetition.RepetitionResult`'s
``summary``, ``fits``, ``effective`` and ``comparisons`` from its ``results`` (one row per
run and held-out slice). Every interval is over seeds: Student-t for means and for
differences paired by seed, percentile bootstrap (seeds resampled, the same resamples for
every curve) for R* and the epochs within tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from curate.experiment.repetition_fit import (
    R_MAX,
    R_STAR_PUBLISHED,
    bootstrap_indices,
    fit_curve,
    percentile_interval,
    value_ratio,
)
from curate.reporting import band, interval_text, markdown_table


def analyse(result) -> None:
    """Fill ``summary``, ``fits``, ``effective`` and ``comparisons`` of ``result``."""
    s = result.settings
    metric, seeds = s["metric"], s["seeds"]
    rows = result.results.to_pylist()
    values = {(r["pool"], r["slice"], r["run"], r["unique"], r["seed"]): r[metric]
              for r in rows}
    points = list(dict.fromkeys((r["pool"], r["slice"], r["run"], r["epochs"], r["unique"])
                                for r in rows))
    indices = bootstrap_indices(len(seeds), s["bootstrap"])
    summary, curves = [], {}
    for pool, slice_ in dict.fromkeys((p[0], p[1]) for p in points):
        mine = [p for p in points if p[:2] == (pool, slice_)]
        repeated = sorted((p for p in mine if p[2] == "repeated"), key=lambda p: p[3])
        cal = [p for p in mine if p[2] == "calibration"]
        full = repeated[0][4]   # the 1-epoch run: the unique-data baseline

        rep, calib = (np.array([[values[(pool, slice_, run, p[4], seed)] for seed in seeds]
                                for p in chosen])
                      for run, chosen in (("repeated", repeated), ("calibration", cal)))
        base = rep[0]
        for p, vals in zip(repeated, rep):
            summary.append({**_labels(p), **_stats(vals), **_rise(vals / base - 1)})
        for p, vals in zip(cal, calib):
            summary.append({**_labels(p), **_stats(vals), **_rise(None)})
        curves[(pool, slice_)] = (
            fit_curve([p[3] for p in repeated], [p[4] for p in repeated], rep,
                      [p[4] for p in cal], calib.reshape(len(cal), len(seeds)),
                      s["tolerance"], indices),
            {p[3]: vals / base - 1 for p, vals in zip(repeated, rep)}, full)
    result.summary = pa.Table.from_pylist(summary)
    result.fits = pa.Table.from_pylist([_fit_row(k, c[0], s) for k, c in curves.items()])
    result.effective = pa.Table.from_pylist(
        [row for k, c in curves.items() for row in _effective_rows(k, c[0])])
    result.comparisons = pa.Table.from_pylist(
        [row for pair in s["compare"] for row in _compare(pair, curves, s)])


def _labels(point) -> dict:
    pool, slice_, run, epochs, unique = point
    return {"pool": pool, "slice": slice_, "run": run, "epochs": epochs, "unique": unique}


def _stats(values) -> dict:
    from curate.train import summarize

    stats = summarize(list(map(float, values)))
    low, high = stats["ci95"] or (None, None)
    return {"n": stats["n"], "mean": stats["mean"], "std": stats["std"], "ci95_lo": low,
            "ci95_hi": high}


def _rise(values) -> dict:
    """The relative change against the one-epoch run, paired by seed (None: not a
    repeated run)."""
    if values is None:
        return {"rise": None, "rise_lo": None, "rise_hi": None}
    stats = _stats(values)
    return {"rise": stats["mean"], "rise_lo": stats["ci95_lo"], "rise_hi": stats["ci95_hi"]}


def _fit_row(key, curve, settings) -> dict:
    pool, slice_ = key
    r_lo, r_hi = percentile_interval(curve.boot_r_star)
    w_lo, w_hi = percentile_interval(curve.boot_within)
    fit = curve.fit
    return {"pool": pool, "slice": slice_, "headline": settings["headline"][pool] == slice_,
            "r_star": fit.r_star if fit else None, "r_star_lo": r_lo, "r_star_hi": r_hi,
            "at_bound": fit.at_bound if fit else None, "rmse": fit.rmse if fit else None,
            "fitted_through": fit.through if fit else None,
            "within": curve.within, "within_lo": w_lo, "within_hi": w_hi,
            "tolerance": settings["tolerance"], "seeds": len(settings["seeds"])}


def _effective_rows(key, curve) -> list[dict]:
    pool, slice_ = key
    return [{"pool": pool, "slice": slice_, "epochs": int(e), "unique": int(u),
             "effective": float(d), "effective_ratio": float(d / u),
             "fitted_ratio": float(f / u), "value_per_token": float(d / (u * e))}
            for e, u, d, f in zip(curve.epochs, curve.unique, curve.effective, curve.fitted)]


def _target(item: str, settings) -> tuple[str, str]:
    pool, _, slice_ = str(item).partition("@")
    return pool, slice_ or settings["headline"][pool]


def _compare(pair, curves, settings) -> list[dict]:
    """Pool ``a`` minus pool ``b``: R* and the epochs within tolerance (bootstrap, the same
    seed resamples), the loss rise at every shared epoch count (paired t)."""
    a, b = (_target(item, settings) for item in pair)
    (fa, rise_a, _), (fb, rise_b, _) = curves[a], curves[b]
    label = {"a": f"{a[0]}@{a[1]}", "b": f"{b[0]}@{b[1]}"}
    out = []
    if fa.fit and fb.fit:
        lo, hi = percentile_interval(fa.boot_r_star - fb.boot_r_star)
        out.append({**label, "measure": "r_star", "value_a": fa.fit.r_star,
                    "value_b": fb.fit.r_star, "difference": fa.fit.r_star - fb.fit.r_star,
                    "ci95_lo": lo, "ci95_hi": hi, "interval": "bootstrap"})
    lo, hi = percentile_interval(fa.boot_within - fb.boot_within)
    out.append({**label, "measure": "within", "value_a": float(fa.within),
                "value_b": float(fb.within), "difference": float(fa.within - fb.within),
                "ci95_lo": lo, "ci95_hi": hi, "interval": "bootstrap"})
    for e in sorted(set(rise_a) & set(rise_b)):
        if e == 1:
            continue
        stats = _stats(rise_a[e] - rise_b[e])
        out.append({**label, "measure": f"rise@{e}", "value_a": float(np.mean(rise_a[e])),
                    "value_b": float(np.mean(rise_b[e])), "difference": stats["mean"],
                    "ci95_lo": stats["ci95_lo"], "ci95_hi": stats["ci95_hi"],
                    "interval": "paired t"})
    return out


# -- figures ----------------------------------------------------------------------------
def _axes(n: int, width: float = 4.5, height: float = 3.5):
    from matplotlib.figure import Figure

    cols = min(3, n)
    fig = Figure(figsize=(width * cols, height * math.ceil(n / cols)), dpi=100,
                 layout="constrained")
    axes = fig.subplots(math.ceil(n / cols), cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def rise_figure(result):
    """The headline answer: each pool's loss rise against its one-epoch run (paired by
    seed, 95% band) against epochs, one panel per headline slice, with the tolerance."""
    s = result.settings
    rows = [r for r in result.summary.to_pylist() if r["run"] == "repeated"
            and s["headline"][r["pool"]] == r["slice"]]
    slices = list(dict.fromkeys(r["slice"] for r in rows))
    fig, axes = _axes(len(slices))
    for ax, name in zip(axes, slices):
        for pool in dict.fromkeys(r["pool"] for r in rows if r["slice"] == name):
            mine = [{"mean": r["rise"], "ci95_lo": r["rise_lo"], "ci95_hi": r["rise_hi"],
                     "epochs": r["epochs"]} for r in rows if (r["pool"], r["slice"]) ==
                    (pool, name)]
            band(ax, [r["epochs"] for r in mine], mine, pool, scale=100, marker="o", ms=3)
        ax.axhline(100 * s["tolerance"], color="0.4", ls=":", lw=1, label="tolerance")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"held-out {name}")
        ax.set_xlabel(f"epochs over the unique pool (same {s['unit']} seen)")
        ax.set_ylabel("change against one epoch (%)")
        ax.legend(fontsize=7)
    return fig


def slices_figure(result):
    """The held-out metric against epochs on every slice, a band per pool (seeds)."""
    s = result.settings
    rows = [r for r in result.summary.to_pylist() if r["run"] == "repeated"]
    slices = list(dict.fromkeys(r["slice"] for r in rows))
    fig, axes = _axes(len(slices))
    for ax, name in zip(axes, slices):
        for pool in dict.fromkeys(r["pool"] for r in rows):
            mine = [r for r in rows if (r["pool"], r["slice"]) == (pool, name)]
            band(ax, [r["epochs"] for r in mine], mine, pool, marker="o", ms=3)
        ax.set_xscale("log", base=2)
        ax.set_title(f"held-out {name}")
        ax.set_xlabel(f"epochs over the unique pool (same {s['unit']} seen)")
        ax.set_ylabel(_metric_name(s))
        ax.legend(fontsize=7)
    return fig


def effective_figure(result):
    """What a repeated token was worth against a fresh one, ``D' / (epochs x U)``, against
    epochs: measured points and the fitted law per pool on its headline slice, with the
    published R* for reference (1 = as good as unique data)."""
    fig, (ax,) = _axes(1, 6.0, 4.5)
    rows = result.effective.to_pylist()
    heads = result.settings["headline"]
    grid = np.geomspace(1, max([r["epochs"] for r in rows] + [2]), 100)
    ax.axhline(1.0, color="0.6", lw=1, label="as good as unique data")
    ax.plot(grid, value_ratio(grid, R_STAR_PUBLISHED) / grid, color="0.2", ls=":", lw=1,
            label=f"R* = {R_STAR_PUBLISHED:.1f} (Muennighoff et al.)")
    fits = {(r["pool"], r["slice"]): r for r in result.fits.to_pylist()}
    for pool, slice_ in heads.items():
        mine = [r for r in rows if (r["pool"], r["slice"]) == (pool, slice_)]
        r_star = fits[(pool, slice_)]["r_star"]
        if not mine or r_star is None:
            continue
        (points,) = ax.plot([r["epochs"] for r in mine], [r["value_per_token"] for r in mine],
                            "o", ms=4, label=f"{pool} ({slice_}): R* = {_r_text(r_star)}")
        ax.plot(grid, value_ratio(grid, r_star) / grid, lw=1, color=points.get_color())
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("epochs over the unique pool")
    ax.set_ylabel(f"D' / {result.settings['unit']} seen (1: as good as fresh)")
    ax.legend(fontsize=7)
    return fig


# -- report -----------------------------------------------------------------------------
def _metric_name(settings) -> str:
    return ("held-out bits per byte" if settings["metric"] == "bpb"
            else "held-out cross-entropy (nats)")


def _r_text(value) -> str:
    if value is None:
        return "n/a"
    return f">= {R_MAX:g}" if value >= R_MAX * 0.999 else f"{value:.2f}"


def _r_interval(row) -> str:
    if row["r_star_lo"] is None:
        return "n/a"
    return f"[{_r_text(row['r_star_lo'])}, {_r_text(row['r_star_hi'])}]"


def _pct(mean, low, high) -> str:
    if mean is None:
        return "—"
    if low is None:
        return f"{100 * mean:+.1f}%"
    return f"{100 * mean:+.1f}% [{100 * low:+.1f}, {100 * high:+.1f}]"


def pool_text(spec: dict) -> str:
    """How the report names what a pool holds."""
    if "mix" in spec:
        return ", ".join(f"{100 * share:g}% {name}" for name, share in spec["mix"].items())
    parts = []
    if spec.get("selection") is not None:
        parts.append(f"selection `{spec['selection']}`")
    if spec.get("where"):
        parts.append(f"`{spec['where']}`")
    return " and ".join(parts) or "every document"


def report_markdown(result) -> str:
    """The compute rule, the pools, R* and epochs within tolerance per pool, the rise
    against unique data, the comparisons, what the repeated data was worth, the plots."""
    from curate.experiment.cells import runs_footer

    s = result.settings
    c = s["config"]
    unit = s["unit"]
    model = (f"{c['model']} {c['model_params'] or ''}".strip()
             + f", {s['parameters']:,} parameters")
    draws = ("drawn anew for each seed" if s["pool_seed"] is None
             else f"drawn once (pool seed {s['pool_seed']})")
    lines = ["# Repetition", "",
             f"Training data: `{s['data']}`; held-out data: `{s['test_data']}`; model: "
             f"{model}; seeds: {s['seeds']}.", "",
             f"Compute rule: every run sees exactly {s['budget'] - (1 if s['text'] else 0):,} "
             f"training {unit}. The unique pool shrinks to 1/epochs of that, so a run "
             "repeats it `epochs` times. The pools of one curve are nested: prefixes of one "
             f"shuffled order of the pool's {'documents' if s['text'] else 'examples'}, "
             f"{draws}. "
             + ("Single-epoch runs at every smaller unique size calibrate what fresh data "
                "is worth." if s["calibrate"] else "There are no single-epoch calibration "
                                                   "runs, so R* is not fitted."), ""]
    lines += markdown_table(["pool", "documents from", "epochs", "headline slice"],
                            [[p["name"], pool_text(p), ", ".join(map(str, p["epochs"])),
                              s["headline"][p["name"]]] for p in s["pools"]])
    lines += ["", f"## R* and the epochs within {100 * s['tolerance']:g}% of unique data", "",
              "R* is Muennighoff et al.'s decay constant (the law D'/U = 1 + R*(1 - "
              "exp(-(epochs-1)/R*)); they fitted 15.4). 'Within' is the largest number of "
              f"epochs up to which the mean {_metric_name(s)} stays within "
              f"{100 * s['tolerance']:g}% of the one-epoch run. The law has repeated data "
              "worth more the more it is seen (D'/U grows with epochs); the fit stops "
              "before the first point where D'/U fell instead (more passes made the model "
              "worse: 'fitted up to' says where). Intervals: bootstrap over "
              f"seeds ({s['bootstrap']} resamples of {len(s['seeds'])} seeds; with few "
              "seeds they are coarse).", ""]
    fits = result.fits.to_pylist()
    lines += markdown_table(
        ["pool", "slice", "R*", "95% CI", "fitted up to (epochs)", "fit RMSE",
         "within (epochs)", "95% CI"],
        [[r["pool"], r["slice"] + (" (headline)" if r["headline"] else ""),
          _r_text(r["r_star"]), _r_interval(r),
          "n/a" if r["fitted_through"] is None else r["fitted_through"],
          "n/a" if r["rmse"] is None else f"{r['rmse']:.4f}", r["within"],
          "n/a" if r["within_lo"] is None else f"[{r['within_lo']:g}, {r['within_hi']:g}]"]
         for r in fits])
    summary = result.summary.to_pylist()
    grid = sorted({r["epochs"] for r in summary if r["run"] == "repeated"})
    lines += ["", f"## {_metric_name(s).capitalize()} against epochs", "",
              "Mean over seeds with its 95% interval at one epoch, then the change against "
              "the one-epoch run of the same seed (paired), on each pool's headline slice:",
              ""]
    table = []
    for pool, slice_ in s["headline"].items():
        mine = {r["epochs"]: r for r in summary if (r["pool"], r["slice"], r["run"]) ==
                (pool, slice_, "repeated")}
        one = mine[1]
        table.append([pool, slice_, f"{one['mean']:.4f} {interval_text(one)}"]
                     + [_pct(mine[e]["rise"], mine[e]["rise_lo"], mine[e]["rise_hi"])
                        if e in mine else "—" for e in grid if e > 1])
    lines += markdown_table(["pool", "slice", "1 epoch"] + [f"{e} epochs" for e in grid
                                                            if e > 1], table)
    if result.comparisons.num_rows:
        lines += ["", "## Comparisons", "",
                  "A minus B: R* and the epochs within tolerance (bootstrap, the same seed "
                  "resamples for both), and the relative rise in loss against one epoch "
                  "(paired by seed). An interval containing 0 is no evidence either way.", ""]
        lines += markdown_table(
            ["A", "B", "measure", "A", "B", "A - B", "95% CI"],
            [[r["a"], r["b"], r["measure"], _value(r, "value_a"), _value(r, "value_b"),
              _value(r, "difference"), _interval(r)] for r in result.comparisons.to_pylist()])
    effective = [r for r in result.effective.to_pylist()
                 if s["headline"][r["pool"]] == r["slice"] and r["epochs"] > 1
                 and not math.isnan(r["effective"])]
    if effective:
        lines += ["", "## What the repeated data was worth", "",
                  "D': the unique " + unit + " whose single epoch reaches the same loss "
                  "(read off the calibration runs); value per " + unit[:-1] + ": D' over the "
                  + unit + " seen (1 = as good as fresh data).", ""]
        lines += markdown_table(
            ["pool", "epochs", f"unique {unit}", "D'/U measured", "D'/U fitted",
             f"value per {unit[:-1]}"],
            [[r["pool"], r["epochs"], f"{r['unique']:,}", f"{r['effective_ratio']:.2f}",
              f"{r['fitted_ratio']:.2f}", f"{r['value_per_token']:.2f}"] for r in effective])
    lines += ["", "![loss rise against epochs](rise.png)", "",
              "![what a repeated token was worth](effective.png)", "",
              "![held-out loss on every slice](slices.png)", "",
              runs_footer(result, scores=False), ""]
    return "\n".join(lines)


def _value(row, key) -> str:
    value = row[key]
    if row["measure"] == "r_star":
        return _r_text(value) if key != "difference" else f"{value:+.2f}"
    if row["measure"] == "within":
        return f"{value:+g}" if key == "difference" else f"{value:g}"
    return f"{100 * value:+.1f}%"


def _interval(row) -> str:
    if row["ci95_lo"] is None:
        return "n/a"
    if row["measure"].startswith("rise"):
        return f"[{100 * row['ci95_lo']:+.1f}, {100 * row['ci95_hi']:+.1f}] pts"
    return f"[{row['ci95_lo']:+.2f}, {row['ci95_hi']:+.2f}]"
