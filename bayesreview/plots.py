"""Figures: the forest plot and friends (matplotlib; nothing here computes a posterior).

Every function takes an optional ``ax``, draws, and returns the matplotlib ``Figure``; none
calls ``plt.show()``. Parts of a figure carry gids so that tests and users can find them
(``artist.get_gid()``):

forest plot
    ``"study:<row>"`` crude proportion marker (one per study), ``"crude_ci:<row>"`` its exact
    interval, ``"shrunken:<row>"`` / ``"shrunken_ci:<row>"`` the shrunken study estimate and
    its credible interval, ``"diamond:<modality>"`` the pooled mean rate,
    ``"prediction:<modality>"`` the prediction interval, and text ``"text:<column>:<row>"``
    with column one of ``label``, ``events``, ``crude``, ``posterior``, ``prediction`` (the
    column headings use row ``column_header``, the footer is ``"text:footer"``). Rows are
    ``"<modality>/<study>"`` for studies, ``"<modality>"`` for a modality's heading and
    ``"pooled:<modality>"`` for its pooled row.
comparison heatmap
    ``"cell:<row modality>:<column modality>"`` for the numbers in the cells.
rankogram
    ``"rank:<modality>"`` for each modality's line.
bias prior/posterior
    ``"prior:<effect>"`` and ``"posterior:<effect>"``.
posterior predictive check
    ``"observed:<study>"`` and ``"replicated:<study>"`` (per-study view), ``"observed:zero"``,
    ``"observed:all"`` (extremes view).

Percentages are rounded half up as journals print them (:func:`bayesreview.formatting.percent`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesreview._io import atomic_path
from bayesreview.compare import _check_level, _outcomes, pairwise, ranks
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
#: White margin around saved figures, in inches.
PAD_INCHES = 0.1

_OUTCOME_WORDS = {
    "any": "Any response (complete or partial)",
    "complete": "Complete response",
    "partial": "Partial response",
}
_SORT_KEYS = ("year", "study", "n", "crude", None)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _plot_outcome(fit: Fit, outcome: str | None) -> str:
    """The outcome a figure shows: ``"any"`` (or the fit's first outcome) for ``None``."""
    if outcome is None:
        return "any" if "any" in fit.outcomes else fit.outcomes[0]
    (outcome,) = _outcomes(fit, outcome)
    return outcome


def _label(labels: Mapping[str, str] | None, modality: str) -> str:
    return str(labels.get(modality, modality)) if labels else modality


def _level_words(level: float) -> str:
    return f"{100 * level:g}%"


def interval_text(median: float, lower: float, upper: float) -> str:
    """``"74 (60–85)"``: a rate and its interval as rounded percentages (half up)."""
    return f"{percent(median)} ({percent(lower)}–{percent(upper)})"


def _new_figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _text_size(text: str, fontsize: float, weight: str = "normal") -> tuple[float, float]:
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


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """Wrap ``text`` into lines no wider than ``width_in`` inches (measured, not guessed)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}".strip()
            if current and _text_size(candidate, fontsize)[0] > width_in:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Forest plot
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    kind: str  # "header", "study", "pooled", "gap"
    key: str
    modality: str
    label: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)


def _sorted_studies(table: pd.DataFrame, sort_by: str | None) -> pd.DataFrame:
    if sort_by is None:
        return table
    if sort_by == "year":
        if "year" not in table:
            return table
        return table.sort_values(["year", "study"], kind="stable", na_position="last")
    if sort_by == "study":
        return table.sort_values("study", kind="stable")
    if sort_by == "n":
        return table.sort_values(["n", "study"], ascending=[False, True], kind="stable")
    return table.sort_values(["crude", "study"], ascending=[False, True], kind="stable")


def forest_rows(
    fit: Fit,
    outcome: str | None = None,
    level: float = 0.95,
    sort_by: str | None = "year",
    adjusted: bool = True,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The rows of the forest plot, top to bottom, with the text they print.

    Parameters are those of :func:`forest_plot`.

    Returns
    -------
    pandas.DataFrame
        ``kind`` (``header``, ``study``, ``pooled``, ``gap``), ``key`` (the row part of the
        figure's gids), ``modality``, ``label`` and the text columns ``events``, ``crude``,
        ``posterior``, ``prediction`` (empty where a row prints nothing), and the numbers drawn:
        ``crude``/``crude_lower``/``crude_upper`` and ``post_median``/``post_lower``/
        ``post_upper`` (study rows: the shrunken estimate; pooled rows: the mean rate), and
        ``pred_lower``/``pred_upper`` (pooled rows).
    """
    rows = _forest_rows(fit, _plot_outcome(fit, outcome), level, sort_by, adjusted, labels)
    records = []
    for row in rows:
        record = {"kind": row.kind, "key": row.key, "modality": row.modality, "label": row.label}
        for column in ("events", "crude", "posterior", "prediction"):
            record[f"text_{column}"] = row.texts.get(column, "")
        record.update(row.values)
        records.append(record)
    return pd.DataFrame(records)


def _forest_rows(
    fit: Fit,
    outcome: str,
    level: float,
    sort_by: str | None,
    adjusted: bool,
    labels: Mapping[str, str] | None,
) -> list[_Row]:
    _check_level(level)
    if sort_by not in _SORT_KEYS:
        choices = ", ".join(repr(k) for k in _SORT_KEYS)
        raise BayesReviewError(f"sort_by={sort_by!r}: must be one of {choices}")
    studies = fit.study_estimates(level)
    studies = studies[studies["outcome"] == outcome]
    summary = fit.summary(level, adjusted=adjusted)
    summary = summary[summary["outcome"] == outcome].set_index("modality")
    rows: list[_Row] = []
    for m, modality in enumerate(fit.groups):
        if m:
            rows.append(_Row("gap", f"gap:{modality}", modality))
        rows.append(_Row("header", modality, modality, _label(labels, modality)))
        members = _sorted_studies(studies[studies["modality"] == modality], sort_by)
        for s in members.itertuples():
            rows.append(
                _Row(
                    "study",
                    f"{modality}/{s.study}",
                    modality,
                    str(s.study),
                    {
                        "events": f"{s.events}/{s.n}",
                        "crude": percent(s.crude),
                        "posterior": interval_text(s.post_median, s.post_lower, s.post_upper),
                    },
                    {
                        "crude": s.crude,
                        "crude_lower": s.crude_lower,
                        "crude_upper": s.crude_upper,
                        "post_median": s.post_median,
                        "post_lower": s.post_lower,
                        "post_upper": s.post_upper,
                    },
                )
            )
        p = summary.loc[modality]
        k = int(p["studies"])
        rows.append(
            _Row(
                "pooled",
                f"pooled:{modality}",
                modality,
                f"Pooled mean ({k} {'study' if k == 1 else 'studies'})",
                {
                    "events": f"{int(p['events'])}/{int(p['n'])}",
                    "crude": percent(p["crude"]),
                    "posterior": interval_text(
                        p["mean_rate"], p["mean_rate_lower"], p["mean_rate_upper"]
                    ),
                    "prediction": f"{percent(p['pred_lower'])}–{percent(p['pred_upper'])}",
                },
                {
                    "crude": p["crude"],
                    "crude_lower": p["crude_lower"],
                    "crude_upper": p["crude_upper"],
                    "post_median": p["mean_rate"],
                    "post_lower": p["mean_rate_lower"],
                    "post_upper": p["mean_rate_upper"],
                    "pred_lower": p["pred_lower"],
                    "pred_upper": p["pred_upper"],
                },
            )
        )
    return rows


def _footer(fit: Fit, outcome: str, level: float, adjusted: bool) -> str:
    lw = _level_words(level)
    bias = fit.data.bias
    if bias is None:
        which = "the population mean response rate of the modality's studies (no bias covariate)"
    elif adjusted and bias.kind == "categorical":
        which = (
            f"the bias-adjusted population mean response rate (at the reference level "
            f"'{bias.levels[0]}' of {bias.column})"
        )
    elif adjusted:
        which = f"the bias-adjusted population mean response rate (at {fit.adjusted_to(adjusted)})"
    else:
        which = (
            f"the population mean response rate averaged over each modality's own studies at "
            f"their levels of {bias.column} (missing levels by their posterior probabilities)"
        )
    likelihood = {
        "beta_binomial": "beta-binomial",
        "logit_normal": "logit-normal (binomial-normal)",
    }.get(fit.spec.likelihood, fit.spec.likelihood)
    unknown = fit.settings.get("unknown", "failure")
    unknown_words = (
        "unknown responses counted as non-responders"
        if unknown == "failure"
        else "unknown responses excluded"
    )
    return (
        f"Diamond: posterior median and {lw} credible interval of {which}; grey bar: {lw} "
        f"prediction interval of a new study's rate. Squares: crude proportion with exact "
        f"(Clopper–Pearson) {lw} CI; circles: shrunken study estimate with {lw} credible "
        f"interval. Model '{fit.spec.name}': {likelihood} random effects by {fit.settings['by']}"
        f" ({fit.settings.get('heterogeneity', fit.spec.heterogeneity).replace('_', ' ')} "
        f"heterogeneity); outcome {outcome}, "
        f"{unknown_words}; {fit.idata.posterior.sizes['chain']} chains x "
        f"{fit.idata.posterior.sizes['draw']} draws, seed {fit.settings.get('seed')}."
    )


def forest_plot(
    fit: Fit,
    outcome: str | None = None,
    ax: Axes | None = None,
    level: float = 0.95,
    sort_by: str | None = "year",
    adjusted: bool = True,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    row_height: float = 0.22,
    plot_width: float = 3.2,
    fontsize: float = 8.0,
) -> Figure:
    """Forest plot: studies grouped by modality, crude and shrunken, with pooled diamonds.

    Each study is a row: its crude proportion (black square) with the exact Clopper-Pearson
    interval, and just below it the shrunken estimate (open blue circle) with its credible
    interval. Each modality has a heading row and a pooled row: a diamond spanning the
    credible interval of the pooled mean rate (its centre the posterior median, from
    ``fit.summary()``) over a thin grey bar, the prediction interval of a new study's rate.
    Text columns on the right: events/n, crude %, posterior % with its interval
    (``"74 (60–85)"``: study rows the shrunken estimate, pooled rows the mean rate) and the
    prediction interval (pooled rows). A footer says what the diamond shows and which model.

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        Outcome to show; default None: ``"any"`` when the fit has it, else its first outcome.
    ax
        Axes to draw the rates in. Default None: a new figure sized to its rows (``row_height``
        inches each) and to the measured width of its text. With an ``ax``, the figure is not
        resized: leave room on the left for the study labels and on the right for the text
        columns (about 1.8 and 3 inches at the default font size) and below for the footer.
    level
        Probability mass of every interval; default 0.95.
    sort_by
        Order of the studies within a modality: ``"year"`` (default; then name), ``"study"``
        (name), ``"n"`` (largest first), ``"crude"`` (highest first) or None (data order).
    adjusted
        With a bias covariate: ``True`` (default) pools the bias-adjusted rate, ``False`` the
        rate averaged over the observed mix. Study estimates are the same either way.
    labels
        Display names of modalities, e.g. ``{"topical_sts": "Topical STS"}``; default: the
        modality codes.
    title
        Figure title; default: the outcome in words (only when ``ax`` is None).
    row_height
        Inches per row; default 0.22 (legible at print size with ``fontsize`` 8).
    plot_width
        Width of the rate axis in inches; default 3.2.
    fontsize
        Font size in points of the text columns; default 8.

    Returns
    -------
    matplotlib.figure.Figure
        See the module docstring for the gids of its parts.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    outcome = _plot_outcome(fit, outcome)
    rows = _forest_rows(fit, outcome, level, sort_by, adjusted, labels)
    lw = _level_words(level)
    n_rows = len(rows)

    # ---- measure the text, then lay the figure out in inches ------------------------------
    columns = [
        ("events", "Events/n"),
        ("crude", "Crude\n%"),
        ("posterior", f"Posterior %\n({lw} CrI)"),
        ("prediction", f"Prediction %\n({lw} PrI)"),
    ]
    label_width = max(
        [_text_size("Study", fontsize, "bold")[0]]
        + [
            _text_size(
                ("   " if r.kind == "study" else "") + r.label,
                fontsize,
                "bold" if r.kind == "header" else "normal",
            )[0]
            for r in rows
        ]
    )
    widths = {}
    for key, heading in columns:
        texts = [r.texts.get(key, "") for r in rows]
        widths[key] = max(
            [_text_size(heading, fontsize, "bold")[0]]
            + [_text_size(t, fontsize)[0] for t in texts if t]
        )
    gap, pad = 0.18, 0.15
    heading_height = 2 * fontsize * 1.2 / 72 + 0.08
    title_height = 0.4
    axis_height = 0.55  # tick labels and the axis label below the rates
    legend_height = 0.3
    right_width = sum(widths[k] + gap for k, _ in columns)
    fig_width = pad + label_width + gap + plot_width + right_width + pad

    footer_size = fontsize - 0.5
    footer = _wrap(_footer(fit, outcome, level, adjusted), fig_width - 2 * pad, footer_size)
    footer_height = _text_size(footer, footer_size)[1] + 0.1

    if ax is None:
        plot_height = n_rows * row_height
        top = title_height + heading_height
        bottom = axis_height + legend_height + footer_height + 0.1
        fig_height = top + plot_height + bottom
        fig = plt.figure(figsize=(fig_width, fig_height))
        left = pad + label_width + gap
        ax = fig.add_axes(
            (
                left / fig_width,
                bottom / fig_height,
                plot_width / fig_width,
                plot_height / fig_height,
            )
        )
        fig.text(
            pad / fig_width,
            1 - 0.12 / fig_height,
            title if title is not None else f"{_OUTCOME_WORDS.get(outcome, outcome)}",
            ha="left",
            va="top",
            fontsize=fontsize + 3,
            weight="bold",
            gid="text:title",
        )
    else:
        fig = ax.figure

    # ---- the rates ------------------------------------------------------------------------
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_xticks(np.linspace(0, 1, 5))
    ax.set_xticklabels([f"{t:g}" for t in np.linspace(0, 100, 5)], fontsize=fontsize)
    ax.set_xlabel(f"{_OUTCOME_WORDS.get(outcome, outcome)} rate (%)", fontsize=fontsize)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.xaxis.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)

    offset = 0.16  # crude above, shrunken below the row's centre line
    for y, row in enumerate(rows):
        v = row.values
        if row.kind == "study":
            ax.plot(
                [v["crude_lower"], v["crude_upper"]],
                [y - offset] * 2,
                color="black",
                linewidth=0.9,
                solid_capstyle="butt",
                gid=f"crude_ci:{row.key}",
            )
            ax.plot(
                [v["crude"]],
                [y - offset],
                marker="s",
                markersize=3.6,
                color="black",
                linestyle="none",
                gid=f"study:{row.key}",
            )
            ax.plot(
                [v["post_lower"], v["post_upper"]],
                [y + offset] * 2,
                color=POSTERIOR_COLOR,
                linewidth=0.9,
                solid_capstyle="butt",
                gid=f"shrunken_ci:{row.key}",
            )
            ax.plot(
                [v["post_median"]],
                [y + offset],
                marker="o",
                markersize=3.6,
                markerfacecolor="white",
                markeredgecolor=POSTERIOR_COLOR,
                markeredgewidth=0.9,
                linestyle="none",
                gid=f"shrunken:{row.key}",
            )
        elif row.kind == "pooled":
            ax.plot(
                [v["pred_lower"], v["pred_upper"]],
                [y, y],
                color=PREDICTION_COLOR,
                linewidth=1.0,
                marker="|",
                markersize=5,
                zorder=2,
                gid=f"prediction:{row.modality}",
            )
            half = 0.38
            diamond = Polygon(
                [
                    (v["post_lower"], y),
                    (v["post_median"], y - half),
                    (v["post_upper"], y),
                    (v["post_median"], y + half),
                ],
                closed=True,
                facecolor=POSTERIOR_COLOR,
                edgecolor=POSTERIOR_COLOR,
                zorder=3,
                gid=f"diamond:{row.modality}",
            )
            ax.add_patch(diamond)
            first = next(i for i, r in enumerate(rows) if r.modality == row.modality)
            ax.plot(
                [v["post_median"]] * 2,
                [first + 0.5, y - 0.5],
                color=POSTERIOR_COLOR,
                linewidth=0.6,
                linestyle=(0, (2, 2)),
                alpha=0.6,
                zorder=1,
                gid=f"pooled_line:{row.modality}",
            )

    # ---- the text columns -----------------------------------------------------------------
    def row_transform(edge: float, dx: float):
        base = blended_transform_factory(ax.transAxes, ax.transData)
        return base + ScaledTranslation(dx, 0, fig.dpi_scale_trans)

    def head_transform(edge: float, dx: float, dy: float):
        return ax.transAxes + ScaledTranslation(dx, dy, fig.dpi_scale_trans)

    label_x = -(gap + label_width)
    ax.text(
        0,
        1,
        "Study",
        transform=head_transform(0, label_x, 0.06),
        ha="left",
        va="bottom",
        fontsize=fontsize,
        weight="bold",
        gid="text:label:column_header",
        clip_on=False,
    )
    right_edges = {}
    x = gap
    for key, heading in columns:
        x += widths[key]
        right_edges[key] = x
        ax.text(
            1,
            1,
            heading,
            transform=head_transform(1, x, 0.06),
            ha="right",
            va="bottom",
            fontsize=fontsize,
            weight="bold",
            gid=f"text:{key}:column_header",
            clip_on=False,
            linespacing=1.1,
        )
        x += gap
    for y, row in enumerate(rows):
        if row.kind == "gap":
            continue
        indent = "   " if row.kind == "study" else ""
        ax.text(
            0,
            y,
            indent + row.label,
            transform=row_transform(0, label_x),
            ha="left",
            va="center",
            fontsize=fontsize,
            clip_on=False,
            weight="bold" if row.kind == "header" else "normal",
            style="italic" if row.kind == "pooled" else "normal",
            gid=f"text:label:{row.key}",
        )
        for key, _ in columns:
            text = row.texts.get(key, "")
            if not text:
                continue
            ax.text(
                1,
                y,
                text,
                transform=row_transform(1, right_edges[key]),
                ha="right",
                va="center",
                fontsize=fontsize,
                clip_on=False,
                color=POSTERIOR_COLOR if key == "posterior" and row.kind == "pooled" else "black",
                weight="bold" if row.kind == "pooled" and key == "posterior" else "normal",
                gid=f"text:{key}:{row.key}",
            )

    # ---- legend and footer below the axis -------------------------------------------------
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            color="black",
            marker="s",
            markersize=3.6,
            linewidth=0.9,
            label=f"Crude (exact {lw} CI)",
        ),
        Line2D(
            [],
            [],
            color=POSTERIOR_COLOR,
            marker="o",
            markersize=3.6,
            linewidth=0.9,
            markerfacecolor="white",
            label=f"Shrunken ({lw} CrI)",
        ),
        Line2D(
            [],
            [],
            color=POSTERIOR_COLOR,
            marker="D",
            markersize=5,
            linestyle="none",
            label="Pooled mean",
        ),
        Line2D(
            [],
            [],
            color=PREDICTION_COLOR,
            marker="|",
            markersize=5,
            linewidth=1.0,
            label="Prediction",
        ),
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0, 0),
        bbox_transform=head_transform(0, label_x, -axis_height),
        ncol=4,
        fontsize=fontsize - 0.5,
        frameon=False,
        borderaxespad=0,
        borderpad=0,
        handlelength=2.0,
        columnspacing=1.2,
    )
    ax.text(
        0,
        0,
        footer,
        transform=head_transform(0, label_x, -(axis_height + legend_height)),
        ha="left",
        va="top",
        fontsize=footer_size,
        color="#333333",
        gid="text:footer",
        clip_on=False,
        linespacing=1.25,
    )
    return fig


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


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
    # The tight bounding box, found once (a layout pass) rather than once per format.
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


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------


def _outcome_name(outcome: str) -> str:
    """``"any response"`` for the response outcomes, else the outcome's own name."""
    return f"{outcome} response" if outcome in _OUTCOME_WORDS else outcome


def comparison_heatmap(
    fit: Fit,
    outcome: str | None = None,
    ax: Axes | None = None,
    threshold: float = 0.0,
    adjusted: bool = True,
    labels: Mapping[str, str] | None = None,
    better: str = "higher",
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
        Display names of modalities; default the codes.
    better
        ``"higher"`` (default: a higher rate is better) or ``"lower"`` (e.g. adverse events).

    Returns
    -------
    matplotlib.figure.Figure
        Cells carry their probability, two decimals, as text with gid ``"cell:<a>:<b>"``.
    """
    outcome = _plot_outcome(fit, outcome)
    table = pairwise(fit, outcome=outcome, threshold=threshold, adjusted=adjusted, better=better)
    groups = list(fit.groups)
    k = len(groups)
    matrix = np.full((k, k), np.nan)
    for row in table.itertuples():
        matrix[groups.index(row.modality_a), groups.index(row.modality_b)] = row.p_better
    names = [_label(labels, g) for g in groups]
    longest = max(_text_size(n, 8)[0] for n in names)
    fig, ax = _new_figure(ax, (longest + 0.75 * k + 1.6, longest + 0.55 * k + 1.0))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu", vmin=0, vmax=1)
    ax.set_facecolor("#eeeeee")
    ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("column modality b", fontsize=8)
    ax.set_ylabel("row modality a", fontsize=8)
    for i in range(k):
        for j in range(k):
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
    if better == "higher":
        what = "P(a > b)" if threshold == 0 else f"P(a − b > {percent(threshold, 1)} points)"
        sense = "higher is better"
    else:
        what = "P(a < b)" if threshold == 0 else f"P(b − a > {percent(threshold, 1)} points)"
        sense = "lower is better"
    ax.set_title(
        f"{what}, {_outcome_name(outcome)} ({sense})" + ("" if adjusted else ", observed mix"),
        fontsize=9,
    )
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.ax.tick_params(labelsize=7)
    return fig


def rankogram(
    fit: Fit,
    outcome: str | None = None,
    ax: Axes | None = None,
    adjusted: bool = True,
    labels: Mapping[str, str] | None = None,
    better: str = "higher",
) -> Figure:
    """Rank probabilities of each modality, one line per modality.

    Rank 1 is the best modality: the highest rate with ``better="higher"`` (default), the
    lowest with ``better="lower"`` (:func:`bayesreview.compare.ranks`); the axis label says
    which. The legend gives each modality's SUCRA. Parameters as :func:`comparison_heatmap`.

    Returns
    -------
    matplotlib.figure.Figure
        Lines carry gids ``"rank:<modality>"``.
    """
    outcome = _plot_outcome(fit, outcome)
    table = ranks(fit, outcome=outcome, adjusted=adjusted, better=better)
    k = len(fit.groups)
    legend_width = max(_text_size(f"{_label(labels, g)} (SUCRA 0.00)", 7)[0] for g in fit.groups)
    fig, ax = _new_figure(ax, (4.6 + legend_width + 0.5, 3.4))
    markers = "osD^vP*Xh<>"
    for i, row in enumerate(table.itertuples(index=False)):
        probs = [getattr(row, f"p_rank_{r}") for r in range(1, k + 1)]
        ax.plot(
            range(1, k + 1),
            probs,
            marker=markers[i % len(markers)],
            markersize=4,
            linewidth=1.2,
            label=f"{_label(labels, row.modality)} (SUCRA {row.sucra:.2f})",
            gid=f"rank:{row.modality}",
        )
    ax.set_xticks(range(1, k + 1))
    extreme = "highest" if better == "higher" else "lowest"
    ax.set_xlabel(f"Rank (1 = {extreme} rate: {better} is better)", fontsize=8)
    ax.set_ylabel("Posterior probability", fontsize=8)
    ax.set_ylim(0, 1)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_title(f"Rank probabilities, {_outcome_name(outcome)} ({better} is better)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


# --------------------------------------------------------------------------------------------
# Bias effects: prior against posterior
# --------------------------------------------------------------------------------------------


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
    import matplotlib.pyplot as plt

    effects = _bias_effects(fit)
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
    else:
        axes = [ax] if not isinstance(ax, Sequence) else list(ax)
        if len(axes) != n:
            raise BayesReviewError(
                f"bias_prior_posterior: the fit has {n} bias effect(s) "
                f"({', '.join(e[0] for e in effects)}) but {len(axes)} axes were given"
            )
        fig = axes[0].figure
    for axis, (name, title, draws, prior) in zip(axes, effects, strict=False):
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
        axis.legend(
            fontsize=6.5, frameon=False, title=f"prior sd {sd_prior:.3g}", title_fontsize=6.5
        )
    return fig


# --------------------------------------------------------------------------------------------
# Posterior predictive check
# --------------------------------------------------------------------------------------------


def _replicates(fit: Fit, variable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed events, denominators and replicated events (draws x studies) of ``variable``."""
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
    replicated = idata.posterior_predictive[variable].stack(sample=("chain", "draw"))
    replicated = np.asarray(replicated.transpose("sample", "study").values)
    observed = np.asarray(idata.observed_data[variable].values)
    if variable == "events":
        trials = np.asarray(idata.constant_data["trials"].values)
    else:  # complete among responders: the denominator is the observed number of responders
        trials = np.asarray(idata.observed_data["events"].values)
    return observed, trials, replicated


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
    _check_level(level)
    if kind not in ("studies", "extremes"):
        raise BayesReviewError(f"kind={kind!r}: must be 'studies' or 'extremes'")
    from bayesreview.checks import in_sample, ppc_p_value, ppc_stages

    observed, trials, replicated = _replicates(fit, variable)
    studies = [str(s) for s in fit.idata.observed_data["study"].values]
    keep = (trials > 0) & in_sample(fit)
    what = "events" if variable == "events" else "complete among responders"
    if kind == "studies":
        n = int(keep.sum())
        fig, ax = _new_figure(ax, (6.0, 0.9 + 0.2 * n))
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
                color="#c0392b" if outside else "black",
                linestyle="none",
                gid=f"observed:{name}",
            )
        ax.set_yticks(range(n), names, fontsize=7)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks(np.linspace(0, 1, 5), [f"{t:g}" for t in np.linspace(0, 100, 5)])
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(f"Proportion of {what} (%)", fontsize=8)
        ax.set_title(
            f"Replicated ({_level_words(level)} and 50% intervals) vs observed", fontsize=9
        )
        return fig
    fig, ax = _new_figure(ax, (6.0, 3.2))
    # the statistics of bayesreview.checks.ppc (for events_cond: over each replicate's own
    # replicated responders), so that the legend's p-values are the table's
    stage = next(st for st in ppc_stages(fit) if st[1] == variable)
    names = {"zero": "zero_event_studies", "all": "all_event_studies"}
    t_obs = {stat: float(stage[2][name]) for stat, name in names.items()}
    t_rep = {stat: stage[3][name][np.isfinite(stage[3][name])] for stat, name in names.items()}
    colors = {"zero": "#c0392b", "all": POSTERIOR_COLOR}
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
