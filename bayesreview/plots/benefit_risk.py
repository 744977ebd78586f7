"""The benefit-risk figure: joint posterior draws of (response rate, harm rate) per modality."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bayesreview.formatting import outcome_words
from bayesreview.plots.common import (
    GRID_COLOR,
    figure_labels,
    level_words,
    modality_label,
    new_figure,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.fitting import Fit

#: Draws shown per modality (thinned evenly); the probabilities use all of them.
SCATTER_DRAWS = 800


def _draw_thresholds(ax: Axes, response_threshold: float, harm_threshold: float) -> None:
    """The two bars, and the region where both are met shaded."""
    ax.axvline(response_threshold, color="0.35", lw=0.8, ls="--", gid="threshold:response")
    ax.axhline(harm_threshold, color="0.35", lw=0.8, ls="--", gid="threshold:harm")
    ax.fill_between(
        [response_threshold, 1.0], 0.0, harm_threshold, color="#d9efd9", zorder=0, gid="desirable"
    )


def _draw_modality(
    ax: Axes, group: str, draws: tuple[np.ndarray, np.ndarray], row: pd.Series, colour: str
) -> None:
    """A modality's thinned draws, its credible rectangle and its medians."""
    from matplotlib.patches import Rectangle

    response, harm = draws
    keep = np.linspace(0, len(response) - 1, min(SCATTER_DRAWS, len(response))).astype(int)
    ax.scatter(
        response[keep], harm[keep], s=3, alpha=0.25, color=colour, lw=0, gid=f"draws:{group}"
    )
    ax.add_patch(
        Rectangle(
            (row.response_region_lower, row.harm_region_lower),
            row.response_region_upper - row.response_region_lower,
            row.harm_region_upper - row.harm_region_lower,
            fill=False,
            edgecolor=colour,
            lw=1.2,
            gid=f"region:{group}",
        )
    )
    ax.plot(row.response, row.harm, "o", color=colour, mec="white", ms=6, gid=f"median:{group}")


def benefit_risk_plot(
    response_fit: Fit,
    harm_fit: Fit,
    response_threshold: float,
    harm_threshold: float,
    outcome: str | None = None,
    level: float = 0.95,
    ax: Axes | None = None,
    labels: Mapping[str, str] | None = None,
    harm_name: str | None = None,
) -> Figure:
    """Posterior draws of each modality's response rate against its harm rate.

    Each modality both fits have gets a cloud of joint posterior draws
    (:func:`bayesreview.harms.benefit_risk_draws`), its posterior medians (a dot) and its
    ``level`` joint credible region: the rectangle of the two rates' intervals of mass
    sqrt(level) (exact, as the two posteriors are independent). Dashed lines mark the two
    thresholds; the shaded corner is where response > a and harm < b, and the legend gives
    each modality's P(both) (:func:`bayesreview.harms.benefit_risk`).

    Parameters
    ----------
    response_fit, harm_fit
        A fit of a benefit (``better="higher"``) and one of a harm (``better="lower"``).
    response_threshold, harm_threshold
        The bars a and b, rates on the 0-1 scale.
    outcome
        The response outcome; default ``"any"`` where fitted.
    level
        Mass of the credible regions; default 0.95.
    ax
        Axes to draw in; default a new figure.
    labels
        Display names of modalities; default the response fit's labels.
    harm_name
        Words for the harm on the axis, e.g. ``"Infection"``; default the harm fit's label
        of its event, else "Harm".

    Returns
    -------
    matplotlib.figure.Figure
        Gids: ``"draws:<modality>"``, ``"region:<modality>"``, ``"median:<modality>"``,
        ``"threshold:response"``, ``"threshold:harm"``, ``"desirable"``.
    """
    from bayesreview.harms import benefit_risk, benefit_risk_draws

    table = benefit_risk(response_fit, harm_fit, response_threshold, harm_threshold, outcome, level)
    pairs = benefit_risk_draws(response_fit, harm_fit, outcome)
    labels = figure_labels(response_fit, labels)
    fig, ax = new_figure(ax, (6.4, 4.4))
    _draw_thresholds(ax, response_threshold, harm_threshold)
    for i, row in enumerate(table.itertuples(index=False)):
        colour = f"C{i % 10}"
        _draw_modality(ax, row.modality, pairs[row.modality], row, colour)
        ax.plot(
            [],
            [],
            "o",
            color=colour,
            label=f"{modality_label(labels, row.modality)} (P(both) {row.p_both:.2f})",
        )
    harm = harm_name or _harm_words(harm_fit)
    response = outcome_words(table.attrs["outcome"], capital=True)
    ax.set_xlabel(f"{response} rate (mean, higher is better)", fontsize=8)
    ax.set_ylabel(f"{harm} rate (mean, lower is better)", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(0.05, float(table["harm_region_upper"].max()) * 1.15))
    ax.tick_params(labelsize=8)
    ax.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.set_title(
        f"Benefit and risk: posterior draws, {level_words(level)} credible regions", fontsize=9
    )
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    return fig


def _harm_words(harm_fit: Fit) -> str:
    """The label of the harm fit's event, e.g. "Infection" (the study table's ``event``)."""
    if "event" not in harm_fit.studies:
        return "Harm"
    events = harm_fit.studies["event"].dropna().unique()
    return harm_fit.label(str(events[0])) if len(events) == 1 else "Harm"
