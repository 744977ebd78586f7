"""What every figure shares: colours, outcome words, text measurement, new figures, saving."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bayesreview._io import atomic_path
from bayesreview.compare import select_outcomes
from bayesreview.errors import BayesReviewError
from bayesreview.formatting import percent

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.fitting import Fit

#: Colour of posterior quantities (diamonds, shrunken estimates); crude ones are black.
POSTERIOR_COLOR = "#1f5fa8"
#: Colour of prediction intervals.
PREDICTION_COLOR = "#7a7a7a"
#: Colour of the light grid lines behind rates and probabilities.
GRID_COLOR = "#e5e5e5"
#: White margin around saved figures, in inches.
PAD_INCHES = 0.1


def plot_outcome(fit: Fit, outcome: str | None) -> str:
    """The outcome a figure shows: ``"any"`` (or the fit's first outcome) for ``None``.

    Raises
    ------
    BayesReviewError
        For an outcome the fit does not have.
    """
    if outcome is None:
        return "any" if "any" in fit.outcomes else fit.outcomes[0]
    (outcome,) = select_outcomes(fit, outcome)
    return outcome


def modality_label(labels: Mapping[str, str] | None, modality: str) -> str:
    """The display name of ``modality`` in ``labels``, else its code."""
    return str(labels.get(modality, modality)) if labels else modality


def figure_labels(fit: Fit, labels: Mapping[str, str] | None) -> dict[str, str]:
    """The display labels a figure of ``fit`` uses: the fit's own (:attr:`Fit.labels`),
    updated by the ``labels`` given to the figure."""
    return {**fit.labels, **(labels or {})}


def level_words(level: float) -> str:
    """``"95%"`` for ``level=0.95``."""
    return f"{100 * level:g}%"


def interval_text(median: float, lower: float, upper: float) -> str:
    """``"74 (60–85)"``: a rate and its interval as rounded percentages (half up)."""
    return f"{percent(median)} ({percent(lower)}–{percent(upper)})"


def new_figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The figure of ``ax`` and ``ax``, or a new figure of ``figsize`` inches and its axes."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def text_size(text: str, fontsize: float, weight: str = "normal") -> tuple[float, float]:
    """Width and height in inches of ``text`` (one or more lines) in the default font."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(10, 10, 72)  # 72 dpi: pixels are points
    prop = FontProperties(size=fontsize, weight=weight)
    widths = [
        renderer.get_text_width_height_descent(line or " ", prop, ismath=False)[0]
        for line in text.split("\n")
    ]
    return max(widths) / 72, len(widths) * fontsize * 1.2 / 72


def wrap_text(text: str, width_in: float, fontsize: float) -> str:
    """Wrap ``text`` into lines no wider than ``width_in`` inches (measured, not guessed)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}".strip()
            if current and text_size(candidate, fontsize)[0] > width_in:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return "\n".join(lines)


def save_figure(
    fig: Figure,
    path_stem: str | os.PathLike,
    formats: Iterable[str] = ("png", "svg", "pdf"),
    dpi: int = 200,
) -> list[Path]:
    """Write a figure in several formats, each file whole or not at all.

    Each file is first written to a temporary file in the same folder and then renamed over
    the target (``os.replace``), so a reader never sees a half-written figure. Dates are left
    out of the SVG and PDF metadata, so the same figure gives the same bytes.

    Parameters
    ----------
    fig
        The figure.
    path_stem
        Path without the extension, e.g. ``"docs/figures/forest_any"``; the folder is created
        if missing.
    formats
        File formats (extensions); default ``("png", "svg", "pdf")``.
    dpi
        Resolution of raster formats in dots per inch; default 200.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Raises
    ------
    BayesReviewError
        For a format matplotlib cannot write.
    """
    formats = [formats] if isinstance(formats, str) else list(formats)
    supported = fig.canvas.get_supported_filetypes()
    for fmt in formats:
        if fmt not in supported:
            raise BayesReviewError(
                f"format {fmt!r}: matplotlib cannot write it; choose from {', '.join(supported)}"
            )
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}
    # The tight bounding box, found once rather than once per format, after the layout engine
    # (constrained layout) has placed the axes: a draw without rendering runs it.
    fig.draw_without_rendering()
    bounds = fig.get_tightbbox(fig.canvas.get_renderer()).padded(PAD_INCHES)
    written = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(target) as temporary:
            fig.savefig(
                temporary, format=fmt, dpi=dpi, metadata=metadata.get(fmt), bbox_inches=bounds
            )
        written.append(target)
    return written
