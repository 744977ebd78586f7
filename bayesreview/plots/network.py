"""Figures of a network: the graph of treatments and comparisons, and the forest plot of
relative effects against the reference.

:func:`network_graph`: treatments as nodes sized by their patients, comparisons as edges whose
width is the number of comparative studies (:class:`bayesreview.network.NetworkStructure`).
:func:`relative_effects_plot`: each treatment's effect against the reference with its
credible interval (:meth:`bayesreview.network.NetworkFit.relative_effects`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bayesreview.plots.common import POSTERIOR_COLOR, PREDICTION_COLOR, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.network import NetworkFit, NetworkStructure

__all__ = ["league_heatmap", "network_graph", "relative_effects_plot"]

#: Words of each measure on the plot's axis, and the value of no difference.
_MEASURE_AXES = {
    "log_or": ("log odds ratio", 0.0),
    "or": ("odds ratio", 1.0),
    "rr": ("risk ratio", 1.0),
    "rd": ("risk difference", 0.0),
}

#: Marker area (points^2) of the treatment with the most patients.
LARGEST_NODE = 1600.0
#: Line width (points) per comparative study of a pair.
WIDTH_PER_STUDY = 1.5


def _positions(n: int) -> np.ndarray:
    """Treatments on a circle, the reference at the top, clockwise."""
    angles = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
    return np.column_stack([np.cos(angles), np.sin(angles)])


def _draw_edges(ax: Axes, structure: NetworkStructure, where: dict[str, np.ndarray]) -> None:
    for row in structure.comparisons.itertuples():
        (x0, y0), (x1, y1) = where[row.treatment_a], where[row.treatment_b]
        ax.plot(
            [x0, x1], [y0, y1], color=PREDICTION_COLOR, lw=WIDTH_PER_STUDY * row.studies,
            solid_capstyle="round", zorder=1, gid=f"edge:{row.treatment_a}:{row.treatment_b}",
        )  # fmt: skip
        # a third of the way along: crossing diagonals would put both counts at the centre
        ax.text(
            x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3, str(row.studies), fontsize=8, ha="center",
            va="center", bbox={"boxstyle": "round", "fc": "white", "ec": "none", "pad": 0.15},
            zorder=3, gid=f"text:edge:{row.treatment_a}:{row.treatment_b}",
        )  # fmt: skip


def _draw_nodes(
    ax: Axes, structure: NetworkStructure, where: dict[str, np.ndarray], labels: Mapping[str, str]
) -> None:
    largest = max(structure.patients) or 1
    for treatment, patients, single in zip(
        structure.treatments, structure.patients, structure.single_arm_counts, strict=True
    ):
        x, y = where[treatment]
        ax.scatter(
            [x], [y], s=LARGEST_NODE * patients / largest, color=POSTERIOR_COLOR, zorder=2,
            edgecolors="white", gid=f"node:{treatment}",
        )  # fmt: skip
        text = f"{labels.get(treatment, treatment)}\n{patients:,} patients"
        if single:
            text += f", {single} single-arm"
        # outward from the centre of the circle, clear of the edges
        ha = "center" if abs(x) < 0.3 else ("left" if x > 0 else "right")
        va = "center" if abs(y) < 0.3 else ("bottom" if y > 0 else "top")
        ax.annotate(
            text, (x, y), xytext=(30 * x, 30 * y), textcoords="offset points", ha=ha, va=va,
            fontsize=8, gid=f"text:node:{treatment}",
        )  # fmt: skip


def network_graph(
    structure: NetworkStructure,
    ax: Axes | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The network of treatments and the comparisons between them.

    Parameters
    ----------
    structure
        :func:`bayesreview.network_structure` of the study table.
    ax
        Axes to draw on; default a new 6 x 6 inch figure.
    labels
        Display names of treatments; default the codes.

    Returns
    -------
    matplotlib.figure.Figure
        Nodes ``"node:<treatment>"`` (area proportional to the treatment's patients, the
        largest :data:`LARGEST_NODE`), edges ``"edge:<a>:<b>"`` (width
        :data:`WIDTH_PER_STUDY` per comparative study) with their study counts
        ``"text:edge:<a>:<b>"``, and labels ``"text:node:<treatment>"``.
    """
    fig, ax = new_figure(ax, (7.0, 6.0))
    where = dict(zip(structure.treatments, _positions(len(structure.treatments)), strict=True))
    _draw_edges(ax, structure, where)
    _draw_nodes(ax, structure, where, labels or {})
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    reference = (labels or {}).get(structure.reference, structure.reference)
    ax.set_title(
        f"{len(structure.treatments)} treatments, {len(structure.comparisons)} compared pairs "
        f"(reference: {reference})",
        fontsize=10,
    )
    return fig


#: Ticks of a ratio axis (log scale), where they fall inside it.
_RATIO_TICKS = (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)


def _ratio_axis(ax: Axes) -> None:
    """A log-scaled x axis labelled at round ratios (0.5, 1, 2, 5, ...)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in _RATIO_TICKS if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def relative_effects_plot(
    fit: NetworkFit,
    measure: str = "or",
    reference: str | None = None,
    level: float = 0.95,
    ax: Axes | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Each treatment against ``reference``: posterior median and credible interval.

    Parameters
    ----------
    fit
        A :func:`bayesreview.fit_network` result.
    measure
        ``"or"`` (default; log axis), ``"log_or"``, ``"rr"`` (log axis) or ``"rd"``.
    reference
        Default: the fit's reference.
    level
        Mass of the intervals; default 0.95.
    ax, labels
        Axes to draw on (default a new figure) and display names of treatments.

    Returns
    -------
    matplotlib.figure.Figure
        Markers ``"effect:<treatment>"``, intervals ``"effect_ci:<treatment>"``, the line of
        no difference ``"null"``, and texts ``"text:effect:<treatment>"`` (median and
        interval, with P(better)).
    """
    table = fit.relative_effects(reference=reference, measure=measure, level=level)
    names = labels or {}
    fig, ax = new_figure(ax, (6.5, 0.5 * len(table) + 1.4))
    words, null = _MEASURE_AXES[measure]
    rows = np.arange(len(table))[::-1]
    for y, row in zip(rows, table.itertuples(), strict=True):
        ax.plot([row.lower, row.upper], [y, y], color=POSTERIOR_COLOR, lw=2,
                gid=f"effect_ci:{row.treatment}")  # fmt: skip
        ax.plot([row.median], [y], "s", color=POSTERIOR_COLOR, gid=f"effect:{row.treatment}")
        ax.annotate(
            f"{row.median:.2f} ({row.lower:.2f}–{row.upper:.2f}); P(better) {row.p_better:.2f}",
            (1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8,
            gid=f"text:effect:{row.treatment}",
        )  # fmt: skip
    ax.axvline(null, color=PREDICTION_COLOR, ls="--", lw=1, gid="null")
    if measure in ("or", "rr"):
        _ratio_axis(ax)
    ax.set_yticks(rows, [names.get(t, t) for t in table["treatment"]])
    base = table["reference"].iloc[0] if len(table) else fit.reference
    ax.set_xlabel(f"{words} against {names.get(base, base)} ({round(100 * level)}% CrI)")
    return fig


def league_heatmap(
    fit: NetworkFit,
    measure: str = "or",
    level: float = 0.95,
    ax: Axes | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The league table as a heat map: cell (row, column) is the row treatment against the
    column one (median and interval on ``measure``), coloured by P(row better than column).

    Returns
    -------
    matplotlib.figure.Figure
        Cells' texts ``"league:<row>:<column>"``; the colour scale is P(better), 0 to 1.
    """
    league = fit.league_table(measure=measure, level=level)
    probability = fit.better_probabilities()
    names = [(labels or {}).get(t, t) for t in league.index]
    size = 1.3 * len(names) + 1.5
    fig, ax = new_figure(ax, (size + 1.8, size))
    matrix = probability.to_numpy(float)
    image = ax.imshow(matrix, cmap="RdBu", vmin=0.0, vmax=1.0)
    for i, row in enumerate(league.index):
        for j, column in enumerate(league.columns):
            diagonal = i == j
            text = names[i].replace(" ", "\n") if diagonal else league.loc[row, column]
            dark = not diagonal and abs(matrix[i, j] - 0.5) > 0.3  # white on the deep colours
            ax.text(j, i, text.replace(" (", "\n(") if not diagonal else text, ha="center",
                    va="center", fontsize=7, fontweight="bold" if diagonal else "normal",
                    color="white" if dark else "black", gid=f"league:{row}:{column}")  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    words, _ = _MEASURE_AXES[measure]
    ax.set_title(f"Row against column: {words} ({round(100 * level)}% CrI)", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.7, label="P(row better than column)")
    return fig
