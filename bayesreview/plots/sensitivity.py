"""The sensitivity figure: the pooled rate of each modality under every alternative analysis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesreview.errors import BayesReviewError
from bayesreview.formatting import outcome_words
from bayesreview.plots.common import GRID_COLOR, modality_label, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The one row that shows every leave-one-study-out refit of a modality.
LEAVE_ONE_OUT_ROW = "leave one study out"


def _scenario_rows(table: pd.DataFrame) -> list[str]:
    """Row labels within a modality's block: main, the leave-one-out strip, then the others."""
    kinds = table.drop_duplicates("scenario").set_index("scenario")["kind"]
    rows = ["main"]
    if (kinds == "leave_one_out").any():
        rows.append(LEAVE_ONE_OUT_ROW)
    rows += [s for s in kinds.index if s != "main" and kinds[s] != "leave_one_out"]
    return rows


def _draw_leave_one_out(ax: Axes, rows: pd.DataFrame, y: float) -> None:
    """A strip of the refits' medians and a thin line over all their intervals."""
    loo = rows[rows["kind"] == "leave_one_out"]
    if loo.empty:
        return
    ax.hlines(y, loo.mean_rate_lower.min(), loo.mean_rate_upper.max(), color="C0", lw=0.8)
    ax.plot(loo.mean_rate, np.full(len(loo), y), "|", color="C0", ms=8)


def _draw_scenario(ax: Axes, row: pd.Series, y: float, main: bool) -> None:
    colour, width, size = ("black", 2.0, 5) if main else ("C1", 1.0, 4)
    ax.hlines(y, row.mean_rate_lower, row.mean_rate_upper, color=colour, lw=width)
    ax.plot(row.mean_rate, y, "o", color=colour, ms=size)


def _draw_modality(ax: Axes, rows: pd.DataFrame, name: str, order: list[str], top: float) -> None:
    """One modality's block: its name, the main interval shaded, one row per scenario."""
    by_scenario = rows.set_index("scenario")
    if "main" in by_scenario.index:
        main = by_scenario.loc["main"]
        ax.fill_betweenx(
            [top - len(order) + 0.5, top + 0.5],
            main.mean_rate_lower,
            main.mean_rate_upper,
            color="0.9",
            zorder=0,
        )
    ax.text(0.0, top + 0.9, name, fontsize=9, fontweight="bold", va="bottom")
    for r, label in enumerate(order):
        if label == LEAVE_ONE_OUT_ROW:
            _draw_leave_one_out(ax, rows, top - r)
        elif label in by_scenario.index:
            _draw_scenario(ax, by_scenario.loc[label], top - r, main=label == "main")


def sensitivity_plot(
    table: pd.DataFrame,
    ax: Axes | None = None,
    outcome: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Per modality, the posterior median and interval of the pooled rate under each scenario.

    The main analysis is drawn in black with its interval shaded across the modality's rows;
    leave-one-out refits share one row (a strip of medians, and a thin line from the lowest
    lower to the highest upper interval limit); every other scenario has its own row.

    Parameters
    ----------
    table
        The result of :func:`bayesreview.sensitivity`.
    ax
        Matplotlib axes to draw into; default a new figure sized to the rows.
    outcome
        Which outcome to draw; default the table's ``"any"`` if present, else its first.
    labels
        Display names of modalities; default the labels the table carries
        (``table.attrs["labels"]``: the data set's codebook), which these update.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if table.empty:
        raise BayesReviewError("sensitivity_plot: the table is empty")
    outcomes = list(pd.unique(table["outcome"]))
    outcome = outcome or ("any" if "any" in outcomes else outcomes[0])
    if outcome not in outcomes:
        raise BayesReviewError(f"outcome={outcome!r}: the table has {', '.join(outcomes)}")
    labels = {**table.attrs.get("labels", {}), **(labels or {})}
    table = table[table["outcome"] == outcome]
    modalities = list(pd.unique(table["modality"]))
    order = _scenario_rows(table)
    block = len(order) + 1
    fig, ax = new_figure(ax, (7.5, 0.8 + 0.22 * block * len(modalities)))
    for m, modality in enumerate(modalities):
        rows = table[table["modality"] == modality]
        _draw_modality(ax, rows, modality_label(labels, modality), order, -m * block)
    ticks = [-m * block - r for m in range(len(modalities)) for r in range(len(order))]
    ax.set_yticks(ticks, order * len(modalities), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(-len(modalities) * block + 1, 1.6)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    words = outcome_words(outcome)
    ax.set_xlabel(f"Pooled mean rate, {words} (posterior median and 95% interval)")
    ax.grid(axis="x", color=GRID_COLOR, lw=0.5)
    return fig  # a new figure has the constrained layout (new_figure)
