"""What repeated data is worth: the effective-data law, its fit, and intervals over seeds.

Muennighoff et al. (NeurIPS 2023, "Scaling Data-Constrained Language Models") value ``U``
unique tokens (or examples) seen for ``R + 1`` epochs as ``D'`` fresh ones:

    D' / U = 1 + R* (1 - exp(-R / R*))        R = epochs - 1

so a repeated token is worth ``exp(-r / R*)`` of a fresh one on its r-th repetition and
repetition can never be worth more than ``1 + R*`` times the unique data. They fitted
``R* = 15.4`` at up to 9B parameters.

Fitting ``R*`` needs a yardstick: the loss of **single-epoch runs** at every unique size
(the *calibration*), which says how many fresh tokens buy a given loss. Here the
calibration is the decreasing (isotonic) fit of loss against ``log U`` over those runs,
interpolated linearly in ``log U``; the repeated runs' ``D'`` lies between their ``U``
and the full budget, so it never extrapolates. ``R*`` is the value whose predicted losses
``calibration(U * ratio(epochs, R*))`` are closest (least squares) to the observed ones,
searched on a log grid from :data:`R_MIN` to :data:`R_MAX` and refined there. An ``R*``
at ``R_MAX`` means repetition cost nothing measurable.

Intervals resample **seeds** with replacement (the same seeds for every point, since the
runs of one seed share their data draw) and refit: the 2.5 and 97.5 percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The search range of R* (epochs); a fit at R_MAX means "no measurable loss".
R_MIN, R_MAX = 0.01, 1000.0
#: Published value (Muennighoff et al. 2023), drawn for reference in the plots.
R_STAR_PUBLISHED = 15.3878
GRID = np.geomspace(R_MIN, R_MAX, 601)


def value_ratio(epochs, r_star: float) -> np.ndarray:
    """``D' / U`` of ``epochs`` passes over the same data under the law (1 at one epoch)."""
    repeats = np.asarray(epochs, dtype=np.float64) - 1.0
    return 1.0 + r_star * (1.0 - np.exp(-repeats / r_star))


class Calibration:
    """Loss of one epoch over ``U`` unique tokens, from single-epoch runs.

    ``unique``: ``[k]`` sizes; ``loss``: ``[k]`` mean losses (any order). The loss is made
    non-increasing in ``U`` (isotonic regression) and interpolated linearly in ``log U``,
    clamped at the ends.
    """

    def __init__(self, unique, loss):
        from sklearn.isotonic import isotonic_regression

        order = np.argsort(np.asarray(unique, dtype=np.float64))
        self.log_u = np.log(np.asarray(unique, dtype=np.float64)[order])
        loss = np.asarray(loss, dtype=np.float64)[order]
        self.loss = isotonic_regression(loss, increasing=False)

    def loss_at(self, unique) -> np.ndarray:
        return np.interp(np.log(unique), self.log_u, self.loss)

    def effective(self, loss) -> np.ndarray:
        """``D'``: the unique size whose single epoch reaches ``loss`` (clamped to the
        calibrated range; on a flat stretch, its smallest size)."""
        # np.interp needs increasing x: the loss falls as U grows, so read both reversed.
        x, y = self.loss[::-1], self.log_u[::-1]
        return np.exp(np.interp(loss, x, y))


@dataclass
class Fit:
    """``r_star`` (``R_MAX``: no measurable loss from repetition), the root mean squared
    error of the predicted losses, ``at_bound`` (the fit hit ``R_MIN`` or ``R_MAX``) and
    ``through``, the most epochs among the points fitted (see :func:`fit_curve`)."""

    r_star: float
    rmse: float
    at_bound: bool
    through: int = 0


def fit_r_star(calibration: Calibration, epochs, unique, loss) -> Fit:
    """Fit R* to repeated runs: ``epochs``, ``unique`` and mean ``loss``, ``[m]`` each (runs
    at one epoch carry no information and are ignored)."""
    from scipy.optimize import minimize_scalar

    epochs, unique, loss = (np.asarray(a, dtype=np.float64) for a in (epochs, unique, loss))
    keep = epochs > 1
    epochs, unique, loss = epochs[keep], unique[keep], loss[keep]
    if not len(epochs):
        raise ValueError("fitting R* needs runs of more than one epoch")

    def sse(log_r: float) -> float:
        predicted = calibration.loss_at(unique * value_ratio(epochs, float(np.exp(log_r))))
        return float(np.sum((predicted - loss) ** 2))

    # the whole grid at once ([grid, m] predictions), then a bounded refinement
    predicted = calibration.loss_at(unique[None, :] * value_ratio(epochs[None, :],
                                                                  GRID[:, None]))
    errors = np.sum((predicted - loss[None, :]) ** 2, axis=1)
    best = int(np.argmin(errors))
    low, high = np.log(GRID[max(best - 1, 0)]), np.log(GRID[min(best + 1, len(GRID) - 1)])
    refined = minimize_scalar(sse, bounds=(low, high), method="bounded",
                              options={"xatol": 1e-6})
    log_r = float(refined.x) if refined.fun <= errors[best] else float(np.log(GRID[best]))
    r_star = float(np.exp(log_r))
    return Fit(r_star=r_star, rmse=float(np.sqrt(sse(log_r) / len(epochs))),
               at_bound=best in (0, len(GRID) - 1), through=int(epochs.max()))


def within_tolerance(epochs, loss, tolerance: float) -> int:
    """The largest number of epochs up to which every point's loss stays within
    ``tolerance`` (relative) of the one-epoch loss; ``epochs`` must include 1."""
    epochs, loss = np.asarray(epochs), np.asarray(loss, dtype=np.float64)
    order = np.argsort(epochs)
    epochs, loss = epochs[order], loss[order]
    base = loss[epochs == 1][0]
    best = 1
    for e, value in zip(epochs, loss):
        if value > base * (1 + tolerance):
            break
        best = int(e)
    return best


def bootstrap_indices(n_seeds: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``[n_boot, n_seeds]`` seed positions drawn with replacement (fixed ``seed``), shared
    by every curve so that differences between curves are paired."""
    return np.random.default_rng(seed).integers(0, n_seeds, size=(n_boot, n_seeds))


@dataclass
class CurveFit:
    """The fit of one curve and its bootstrap: ``r_star``/``within`` on the seed means,
    ``boot_r_star``/``boot_within`` ``[n_boot]`` over resampled seeds, and per repeated
    point (sorted by epochs) ``effective`` (``D'``) and ``fitted`` (``D'`` under the fitted
    law)."""

    fit: Fit | None
    within: int
    boot_r_star: np.ndarray
    boot_within: np.ndarray
    epochs: np.ndarray
    unique: np.ndarray
    effective: np.ndarray
    fitted: np.ndarray


def lawful_points(ratio: np.ndarray) -> int:
    """How many leading points (sorted by epochs) the law can describe: it has ``D'/U``
    grow with epochs, so a point whose measured ``D'/U`` falls below the one before it
    (more passes over the data made the model worse, e.g. a classifier's cross-entropy
    exploding as it memorises) ends the fitted range."""
    for i in range(1, len(ratio)):
        if ratio[i] < ratio[i - 1]:
            return i
    return len(ratio)


def fit_curve(epochs, unique, repeated, cal_unique, calibration, tolerance: float,
              indices: np.ndarray) -> CurveFit:
    """Fit one curve over seeds (on the seed means, and on each bootstrap resample); only
    the :func:`lawful_points` enter the fit of R*.

    ``epochs``, ``unique``: ``[m]`` the repeated points (one at 1 epoch, the unique-data
    run); ``repeated``: ``[m, s]`` their losses per seed; ``cal_unique``: ``[k]`` sizes of
    the single-epoch runs and ``calibration``: ``[k, s]`` their losses (``k = 0``: no
    calibration, no R*). The 1-epoch repeated run calibrates the full size as well.
    ``indices``: :func:`bootstrap_indices`.
    """
    epochs = np.asarray(epochs)
    unique = np.asarray(unique, dtype=np.float64)
    repeated = np.asarray(repeated, dtype=np.float64)
    calibration = np.asarray(calibration, dtype=np.float64).reshape(len(cal_unique),
                                                                     repeated.shape[1])
    order = np.argsort(epochs)
    epochs, unique, repeated = epochs[order], unique[order], repeated[order]
    one = epochs == 1
    cal_u = np.concatenate([np.asarray(cal_unique, dtype=np.float64), unique[one]])
    can_fit = len(cal_unique) > 0 and bool(np.any(epochs > 1))

    def stats(cols):
        means = repeated[:, cols].mean(axis=1)
        within = within_tolerance(epochs, means, tolerance)
        if not can_fit:
            return None, within, None
        curve = Calibration(cal_u, np.concatenate([calibration[:, cols], repeated[one][:, cols]])
                            .mean(axis=1))
        keep = lawful_points(curve.effective(means) / unique)
        if keep < 2:
            return None, within, curve
        fit = fit_r_star(curve, epochs[:keep], unique[:keep], means[:keep])
        return fit, within, curve

    everything = np.arange(repeated.shape[1])
    fit, within, curve = stats(everything)
    boots = [stats(cols) for cols in indices]
    boot_r = np.array([b[0].r_star for b in boots if b[0] is not None])
    means = repeated.mean(axis=1)
    return CurveFit(
        fit=fit, within=within, boot_r_star=boot_r,
        boot_within=np.array([b[1] for b in boots]),
        epochs=epochs, unique=unique,
        effective=curve.effective(means) if curve is not None else np.full(len(epochs), np.nan),
        fitted=unique * value_ratio(epochs, fit.r_star) if fit else np.full(len(epochs), np.nan))


def percentile_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """The 2.5 and 97.5 percentiles (None for an empty array)."""
    if not len(values):
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
