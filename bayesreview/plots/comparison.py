"""Comparisons of modalities: the pairwise probability heat map and the rank probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bayesreview.compare import direction_of, pairwise, ranks
from bayesreview.formatting import percent
from bayesreview.plots.common import (
    GRID_COLOR,
    figure_labels,
    modality_label,
    new_figure,
    plot_outcome,
    text_size,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.fitting import Fit

#: Markers of the rank lines, one per modality in turn.
_RANK_MARKERS = "osD^vP*Xh<>"


def _outcome_name(outcome: str) -> str:
    """``"any response"`` for the response outcomes, else the outcome's own name."""
    return f"{outcome} response" if outcome in ("any", "complete", "partial") else outcome


def _heatmap_title(outcome: str, threshold: float, adjusted: bool, better: str) -> str:
    """What the cells are the probability of, for which outcome and direction."""
    if better == "higher":
        what = "P(a > b)" if threshold == 0 else f"P(a − b > {percent(threshold, 1)} points)"
        sense = "higher is better"
    else:
        what = "P(a < b)" if threshold == 0 else f"P(b − a > {percent(threshold, 1)} points)"
        sense = "lower is better"
    return f"{what}, {_outcome_name(outcome)} ({sense})" + ("" if adjusted else ", observed mix")


def _draw_cells(ax: Axes, matrix: np.ndarray, groups: list[str]) -> None:
    """Each off-diagonal cell's probability, two decimals, legible on its colour."""
    for i in range(len(groups)):
        for j in range(len(groups)):
            if i == j:
                continue
            value = matrix[i, j]
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(value - 0.5) > 0.3 else "black",
                gid=f"cell:{groups[i]}:{groups[j]}",
            )


def comparison_heatmap(
    fit: Fit,
    outcome: str | None = None,
    ax: Axes | None = None,
    threshold: float = 0.0,
    adjusted: bool = True,
    labels: Mapping[str, str] | None = None,
    better: str | None = None,
) -> Figure:
    """Matrix of P(row modality better than column modality by more than threshold).

    Each cell is :func:`bayesreview.compare.pairwise`'s ``p_better``: P(rate_a - rate_b > d)
    with ``better="higher"``, P(rate_b - rate_a > d) with ``better="lower"``; the title says
    which.

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        Default None: ``"any"`` when the fit has it, else its first outcome.
    ax
        Axes to draw in; default a new figure.
    threshold
        Minimal important difference on the 0-1 scale; default 0.
    adjusted
        Bias-adjusted rates (default) or rates averaged over the observed mix.
    labels
        Display names of modalities; default the fit's labels (:attr:`bayesreview.Fit.labels`),
        which these update.
    better
        ``"higher"`` (a higher rate is better) or ``"lower"`` (e.g. adverse events); default
        the fit's own direction (:attr:`bayesreview.Fit.better`).

    Returns
    -------
    matplotlib.figure.Figure
        Cells carry their probability, two decimals, as text with gid ``"cell:<a>:<b>"``.
    """
    outcome = plot_outcome(fit, outcome)
    labels = figure_labels(fit, labels)
    better = direction_of(fit, better)
    table = pairwise(fit, outcome=outcome, threshold=threshold, adjusted=adjusted, better=better)
    groups = list(fit.groups)
    k = len(groups)
    matrix = np.full((k, k), np.nan)
    for row in table.itertuples():
        matrix[groups.index(row.modality_a), groups.index(row.modality_b)] = row.p_better
    names = [modality_label(labels, g) for g in groups]
    longest = max(text_size(n, 8)[0] for n in names)
    fig, ax = new_figure(ax, (longest + 0.75 * k + 1.6, longest + 0.55 * k + 1.0))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu", vmin=0, vmax=1)
    ax.set_facecolor("#eeeeee")
    ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("column modality b", fontsize=8)
    ax.set_ylabel("row modality a", fontsize=8)
    _draw_cells(ax, matrix, groups)
    ax.set_title(_heatmap_title(outcome, threshold, adjusted, better), fontsize=9)
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.ax.tick_params(labelsize=7)
    return fig


def rankogram(
    fit: Fit,
    outcome: str | None = None,
    ax: Axes | None = None,
    adjusted: bool = True,
    labels: Mapping[str, str] | None = None,
    better: str | None = None,
) -> Figure:
    """Rank probabilities of each modality, one line per modality.

    Rank 1 is the best modality: the highest rate with ``better="higher"``, the lowest with
    ``better="lower"`` (default: the fit's own direction; :func:`bayesreview.compare.ranks`);
    the axis label says which. The legend gives each modality's SUCRA. Parameters as
    :func:`comparison_heatmap`.

    Returns
    -------
    matplotlib.figure.Figure
        Lines carry gids ``"rank:<modality>"``.
    """
    outcome = plot_outcome(fit, outcome)
    labels = figure_labels(fit, labels)
    better = direction_of(fit, better)
    table = ranks(fit, outcome=outcome, adjusted=adjusted, better=better)
    k = len(fit.groups)
    legend_width = max(
        text_size(f"{modality_label(labels, g)} (SUCRA 0.00)", 7)[0] for g in fit.groups
    )
    fig, ax = new_figure(ax, (4.6 + legend_width + 0.5, 3.4))
    for i, row in enumerate(table.itertuples(index=False)):
        probs = [getattr(row, f"p_rank_{r}") for r in range(1, k + 1)]
        ax.plot(
            range(1, k + 1),
            probs,
            marker=_RANK_MARKERS[i % len(_RANK_MARKERS)],
            markersize=4,
            linewidth=1.2,
            label=f"{modality_label(labels, row.modality)} (SUCRA {row.sucra:.2f})",
            gid=f"rank:{row.modality}",
        )
    ax.set_xticks(range(1, k + 1))
    extreme = "highest" if better == "higher" else "lowest"
    ax.set_xlabel(f"Rank (1 = {extreme} rate: {better} is better)", fontsize=8)
    ax.set_ylabel("Posterior probability", fontsize=8)
    ax.set_ylim(0, 1)
    ax.tick_params(labelsize=8)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.set_title(f"Rank probabilities, {_outcome_name(outcome)} ({better} is better)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig
