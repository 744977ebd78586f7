"""The posterior predictive check: observed events against replicated data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayesreview.compare import check_level
from bayesreview.errors import BayesReviewError
from bayesreview.plots.common import POSTERIOR_COLOR, level_words, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.fitting import Fit

#: Colour of what the replicated data do not reproduce (observed outside, studies with none).
_OUTSIDE_COLOR = "#c0392b"


def _check_variable(fit: Fit, variable: str) -> None:
    """Raise unless the fit has posterior predictive draws of ``variable``."""
    idata = fit.idata
    if "posterior_predictive" not in idata or variable not in idata.posterior_predictive:
        have = (
            ", ".join(idata.posterior_predictive.data_vars)
            if "posterior_predictive" in idata
            else "none"
        )
        raise BayesReviewError(
            f"variable={variable!r}: no posterior predictive draws of it (the fit has: {have})"
        )


def _replicates(fit: Fit, variable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed events, denominators and replicated events (draws x studies) of ``variable``."""
    idata = fit.idata
    replicated = idata.posterior_predictive[variable].stack(sample=("chain", "draw"))
    replicated = np.asarray(replicated.transpose("sample", "study").values)
    observed = np.asarray(idata.observed_data[variable].values)
    if variable == "events":
        trials = np.asarray(idata.constant_data["trials"].values)
    else:  # complete among responders: the denominator is the observed number of responders
        trials = np.asarray(idata.observed_data["events"].values)
    return observed, trials, replicated


def _studies_view(fit: Fit, ax: Axes | None, variable: str, level: float, what: str) -> Figure:
    """Per in-sample study: replicated ``level`` and 50% intervals and the observed proportion."""
    from bayesreview.checks import in_sample

    observed, trials, replicated = _replicates(fit, variable)
    studies = [str(s) for s in fit.idata.observed_data["study"].values]
    keep = (trials > 0) & in_sample(fit)
    n = int(keep.sum())
    fig, ax = new_figure(ax, (6.0, 0.9 + 0.2 * n))
    with np.errstate(invalid="ignore", divide="ignore"):
        proportions = replicated[:, keep] / trials[keep]
    tail = (1 - level) / 2
    outer = np.quantile(proportions, [tail, 1 - tail], axis=0)
    inner = np.quantile(proportions, [0.25, 0.75], axis=0)
    obs = observed[keep] / trials[keep]
    names = [s for s, k in zip(studies, keep, strict=True) if k]
    for y, name in enumerate(names):
        ax.plot(
            outer[:, y],
            [y, y],
            color=POSTERIOR_COLOR,
            linewidth=0.8,
            alpha=0.6,
            gid=f"replicated:{name}",
        )
        ax.plot(inner[:, y], [y, y], color=POSTERIOR_COLOR, linewidth=2.6)
        outside = not outer[0, y] <= obs[y] <= outer[1, y]
        ax.plot(
            [obs[y]],
            [y],
            marker="x" if outside else "o",
            markersize=4,
            color=_OUTSIDE_COLOR if outside else "black",
            linestyle="none",
            gid=f"observed:{name}",
        )
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xticks(np.linspace(0, 1, 5), [f"{t:g}" for t in np.linspace(0, 100, 5)])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(f"Proportion of {what} (%)", fontsize=8)
    ax.set_title(f"Replicated ({level_words(level)} and 50% intervals) vs observed", fontsize=9)
    return fig


def _extremes_view(fit: Fit, ax: Axes | None, variable: str, what: str) -> Figure:
    """Replicated numbers of studies with no and with all events, against the observed ones."""
    from bayesreview.checks import in_sample, ppc_p_value, ppc_stages

    fig, ax = new_figure(ax, (6.0, 3.2))
    # the statistics of bayesreview.checks.ppc (for events_cond: over each replicate's own
    # replicated responders), so that the legend's p-values are the table's
    stage = next(st for st in ppc_stages(fit) if st[1] == variable)
    names = {"zero": "zero_event_studies", "all": "all_event_studies"}
    t_obs = {stat: float(stage[2][name]) for stat, name in names.items()}
    t_rep = {stat: stage[3][name][np.isfinite(stage[3][name])] for stat, name in names.items()}
    colors = {"zero": _OUTSIDE_COLOR, "all": POSTERIOR_COLOR}
    words = {"zero": "no events", "all": "all events"}
    top = int(in_sample(fit).sum())
    bins = np.arange(-0.5, top + 1.5)
    for stat in ("zero", "all"):
        _, p_two_sided = ppc_p_value(t_rep[stat], t_obs[stat])
        ax.hist(
            t_rep[stat],
            bins=bins,
            density=True,
            color=colors[stat],
            alpha=0.4,
            label=f"{words[stat]}: replicated, two-sided p = {p_two_sided:.2f}",
        )
        ax.axvline(
            t_obs[stat],
            ymax=0.66,  # below the legend's headroom
            color=colors[stat],
            linewidth=1.6,
            label=f"{words[stat]}: observed {t_obs[stat]:g}",
            gid=f"observed:{stat}",
        )
    ax.set_xlabel(f"Number of studies with no / all {what}", fontsize=8)
    ax.set_ylabel("Posterior predictive probability", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.5)  # headroom for the legend
    ax.legend(fontsize=7, frameon=False, loc="upper center", ncol=2, columnspacing=1.0)
    ax.set_title("Posterior predictive check: extreme studies", fontsize=9)
    return fig


def ppc_plot(
    fit: Fit,
    ax: Axes | None = None,
    kind: str = "studies",
    variable: str = "events",
    level: float = 0.95,
) -> Figure:
    """Posterior predictive check of the observed events against replicated data.

    ``az.plot_ppc`` pools all counts into one density, which does not suit a handful of
    counts with different denominators, so this draws the check directly.

    Parameters
    ----------
    fit
        A fitted meta-analysis with posterior predictive draws.
    ax
        Axes to draw in; default a new figure.
    kind
        ``"studies"`` (default): per study, the central ``level`` and 50% intervals of the
        replicated proportion with the observed proportion (a red cross when outside the
        ``level`` interval). ``"extremes"``: the replicated distributions of the number of
        studies with no events and with all events, the observed numbers as vertical lines
        and the two-sided tie-aware posterior predictive p-values in the legend: the mid-p
        values of :func:`bayesreview.checks.ppc_p_value`, the ``p_two_sided`` of
        :func:`bayesreview.checks.ppc` (the same statistics, computed by the same code).
        Both views show the in-sample studies only (weight > 0,
        :func:`bayesreview.checks.in_sample`).
    variable
        ``"events"`` (default) or, for the joint response model, ``"events_cond"`` (complete
        responses among responders).
    level
        Probability mass of the outer interval; default 0.95.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    BayesReviewError
        For an unknown kind or variable, or a fit without posterior predictive draws.
    """
    check_level(level)
    if kind not in ("studies", "extremes"):
        raise BayesReviewError(f"kind={kind!r}: must be 'studies' or 'extremes'")
    _check_variable(fit, variable)
    what = "events" if variable == "events" else "complete among responders"
    if kind == "studies":
        return _studies_view(fit, ax, variable, level, what)
    return _extremes_view(fit, ax, variable, what)
