"""Bias effects: the prior density against the posterior draws of every bias effect."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesreview.errors import BayesReviewError
from bayesreview.plots.common import POSTERIOR_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.fitting import Fit


def _bias_effects(fit: Fit) -> list[tuple[str, str, np.ndarray, Any]]:
    """(name, title, draws, prior) for every bias effect of the fit."""
    bias = fit.data.bias
    if bias is None:
        raise BayesReviewError(
            "bias_prior_posterior: this fit has no bias covariate; fit with bias='design', "
            "bias='risk_of_bias' or a numeric column"
        )
    posterior = fit.idata.posterior
    effects = []
    for var, stage in (("beta", "marginal"), ("beta_cond", "conditional")):
        if var not in posterior:
            continue
        prior = fit.spec.prior("bias", stage)
        stage_words = "" if stage == "marginal" else " (complete | any)"
        array = posterior[var]
        extra = [d for d in array.dims if d not in ("chain", "draw")]
        if not extra:
            effects.append(
                (var, f"{bias.column}, per unit{stage_words}", array.values.ravel(), prior)
            )
            continue
        dim = extra[0]
        for level in array[dim].values:
            draws = array.sel({dim: level}).values.ravel()
            title = f"{bias.column}: {level} vs {bias.levels[0]}{stage_words}"
            effects.append((f"{var}[{level}]", title, draws, prior))
    if not effects:
        raise BayesReviewError("bias_prior_posterior: the posterior has no bias effect 'beta'")
    return effects


def _effect_axes(
    ax: Axes | Sequence[Axes] | None, effects: list[tuple[str, str, np.ndarray, Any]]
) -> tuple[Figure, list[Axes]]:
    """The given axes, one per effect, or a new grid of up to three columns."""
    import matplotlib.pyplot as plt

    n = len(effects)
    if ax is None:
        ncols = min(n, 3)
        nrows = math.ceil(n / ncols)
        fig, grid = plt.subplots(
            nrows, ncols, figsize=(3.3 * ncols, 2.6 * nrows), layout="constrained", squeeze=False
        )
        axes = list(grid.ravel())
        for extra in axes[n:]:
            extra.set_visible(False)
        return fig, axes
    axes = [ax] if not isinstance(ax, Sequence) else list(ax)
    if len(axes) != n:
        raise BayesReviewError(
            f"bias_prior_posterior: the fit has {n} bias effect(s) "
            f"({', '.join(e[0] for e in effects)}) but {len(axes)} axes were given"
        )
    return axes[0].figure, axes


def _draw_effect(axis: Axes, name: str, title: str, draws: np.ndarray, prior: Any) -> None:
    """One effect: the histogram of its draws over the curve of its prior density."""
    low, high = prior.quantile([0.001, 0.999])
    low = min(low, np.quantile(draws, 0.001))
    high = max(high, np.quantile(draws, 0.999))
    grid_x = np.linspace(low, high, 400)
    axis.hist(
        draws,
        bins=40,
        density=True,
        color=POSTERIOR_COLOR,
        alpha=0.45,
        label=f"posterior (sd {np.std(draws):.3g})",
        gid=f"posterior:{name}",
    )
    sd_prior = float(np.diff(prior.quantile([0.158655, 0.841345]))[0]) / 2
    axis.plot(
        grid_x,
        np.exp(prior.logpdf(grid_x)),
        color="black",
        linewidth=1.2,
        label=f"prior {prior.describe()}",
        gid=f"prior:{name}",
    )
    axis.axvline(0, color="#999999", linewidth=0.6, linestyle=":")
    axis.set_title(title, fontsize=8)
    axis.set_xlabel("bias effect (log odds ratio)", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6.5, frameon=False, title=f"prior sd {sd_prior:.3g}", title_fontsize=6.5)


def bias_prior_posterior(fit: Fit, ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Prior density against the posterior of every bias effect (log odds ratio scale).

    Shows how far the data moved each effect away from its prior: a posterior histogram that
    looks like the prior curve means the data said little about it. The legend gives the
    prior and posterior SD.

    Parameters
    ----------
    fit
        A fit with a categorical or numeric bias covariate.
    ax
        One Axes (when the fit has one effect) or one per effect; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    BayesReviewError
        When the fit has no bias covariate, or ``ax`` does not match the number of effects.
    """
    effects = _bias_effects(fit)
    fig, axes = _effect_axes(ax, effects)
    for axis, effect in zip(axes, effects, strict=False):
        _draw_effect(axis, *effect)
    return fig
