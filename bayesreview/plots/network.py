"""The network graph: treatments as nodes sized by their patients, comparisons as edges whose
width is the number of comparative studies (:class:`bayesreview.network.NetworkStructure`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bayesreview.plots.common import POSTERIOR_COLOR, PREDICTION_COLOR, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.network import NetworkStructure

__all__ = ["network_graph"]

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
        ax.text(
            (x0 + x1) / 2, (y0 + y1) / 2, str(row.studies), fontsize=8, ha="center",
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
        ax.annotate(
            text, (x, y), xytext=(0, -26), textcoords="offset points", ha="center", va="top",
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
    fig, ax = new_figure(ax, (6.0, 6.0))
    where = dict(zip(structure.treatments, _positions(len(structure.treatments)), strict=True))
    _draw_edges(ax, structure, where)
    _draw_nodes(ax, structure, where, labels or {})
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.55, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    reference = (labels or {}).get(structure.reference, structure.reference)
    ax.set_title(
        f"{len(structure.treatments)} treatments, {len(structure.comparisons)} compared pairs "
        f"(reference: {reference})",
        fontsize=10,
    )
    return fig
