"""The forest plot: studies grouped by modality, crude and shrunken, with pooled diamonds.

:func:`forest_plot` draws by parts: it measures the text and lays the figure out in inches
(:class:`_Layout`), then draws the rate axis, each study's markers and intervals, each
modality's pooled diamond and prediction interval, the text columns with their headings, the
legend and the footer. :func:`forest_rows` is the table of what each row prints and draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesreview.compare import check_level
from bayesreview.errors import BayesReviewError
from bayesreview.formatting import outcome_words, percent
from bayesreview.plots.common import (
    GRID_COLOR,
    POSTERIOR_COLOR,
    PREDICTION_COLOR,
    figure_labels,
    interval_text,
    level_words,
    modality_label,
    plot_outcome,
    text_size,
    wrap_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Transform

    from bayesreview.fitting import Fit

_SORT_KEYS = ("year", "study", "n", "crude", None)
#: Text columns right of the rates, in order (their headings: :func:`_columns`).
_TEXT_COLUMNS = ("events", "crude", "posterior", "prediction")
#: Indent of a study's name under its modality's heading.
_INDENT = "   "
#: Inches between the columns, and of white margin left and right of the figure.
_GAP, _PAD = 0.18, 0.15
#: Inches of the title, of the tick labels and axis label below the rates, and of the legend.
_TITLE_HEIGHT, _AXIS_HEIGHT, _LEGEND_HEIGHT = 0.4, 0.55, 0.3
#: Vertical offset (rows) of the crude (above) and shrunken (below) estimate of a study.
_OFFSET = 0.16
#: Half the height of a pooled diamond, in rows.
_DIAMOND_HALF = 0.38
_MARKER_SIZE, _LINE_WIDTH = 3.6, 0.9
#: Width (inches) and height (rows) of a study's cell in the bias column.
_BIAS_CELL_WIDTH, _BIAS_CELL_HEIGHT = 0.3, 0.62
#: Colours of the usual risk-of-bias levels (RevMan's traffic lights); other levels take the
#: matplotlib cycle.
BIAS_LEVEL_COLORS = {"low": "#2e9e44", "moderate": "#f2b705", "high": "#d7301f"}
#: The same colours in words, for the footer.
_BIAS_COLOR_WORDS = {"low": "green", "moderate": "amber", "high": "red"}


# --------------------------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    kind: str  # "header", "study", "pooled", "gap"
    key: str
    modality: str
    label: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)  # bias level -> probability
    rated: bool = False


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
    adjusted: bool | None = None,
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
    labels = figure_labels(fit, labels)
    adjusted = fit.headline_adjusted() if adjusted is None else adjusted
    rows = _forest_rows(fit, plot_outcome(fit, outcome), level, sort_by, adjusted, labels)
    records = []
    for row in rows:
        record = {"kind": row.kind, "key": row.key, "modality": row.modality, "label": row.label}
        for column in _TEXT_COLUMNS:
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
    check_level(level)
    if sort_by not in _SORT_KEYS:
        choices = ", ".join(repr(k) for k in _SORT_KEYS)
        raise BayesReviewError(f"sort_by={sort_by!r}: must be one of {choices}")
    studies = fit.study_estimates(level)
    studies = studies[studies["outcome"] == outcome]
    studies = studies.assign(row=np.arange(len(studies)))  # the fit's row of each study
    summary = fit.summary(level, adjusted=adjusted)
    summary = summary[summary["outcome"] == outcome].set_index("modality")
    levels = _study_levels(fit)
    rows: list[_Row] = []
    for m, modality in enumerate(fit.groups):
        if m:
            rows.append(_Row("gap", f"gap:{modality}", modality))
        rows.append(_Row("header", modality, modality, modality_label(labels, modality)))
        members = _sorted_studies(studies[studies["modality"] == modality], sort_by)
        for s in members.itertuples():
            row = _study_row(modality, s)
            if levels is not None:
                row.levels, row.rated = levels[s.row]
            rows.append(row)
        rows.append(_pooled_row(modality, summary.loc[modality]))
    return rows


def _study_levels(fit: Fit) -> list[tuple[dict[str, float], bool]] | None:
    """Per study (in the fit's row order): its bias level probabilities and whether it was
    rated (:meth:`Fit.bias_levels`); None without a categorical bias covariate."""
    bias = fit.data.bias
    if bias is None or bias.kind != "categorical":
        return None
    table = fit.bias_levels()
    n_levels = len(bias.levels)
    probabilities = table["probability"].to_numpy().reshape(-1, n_levels)
    return [
        (dict(zip(bias.levels, map(float, p), strict=True)), bool(r))
        for p, r in zip(probabilities, table["rated"].to_numpy()[::n_levels], strict=True)
    ]


def _study_row(modality: str, s) -> _Row:
    """The row of one study (a row of ``fit.study_estimates()``)."""
    return _Row(
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


def _pooled_row(modality: str, p: pd.Series) -> _Row:
    """The pooled row of a modality (its row of ``fit.summary()``)."""
    k = int(p["studies"])
    return _Row(
        "pooled",
        f"pooled:{modality}",
        modality,
        f"Pooled mean ({k} {'study' if k == 1 else 'studies'})",
        {
            "events": f"{int(p['events'])}/{int(p['n'])}",
            "crude": percent(p["crude"]),
            "posterior": interval_text(p["mean_rate"], p["mean_rate_lower"], p["mean_rate_upper"]),
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


# --------------------------------------------------------------------------------------------
# The footer
# --------------------------------------------------------------------------------------------


def _pooled_words(fit: Fit, adjusted: bool) -> str:
    """What the diamond is the posterior of, in words."""
    bias = fit.data.bias
    rate = "response rate" if fit.data.outcome != "events" else "rate"
    if fit.better == "lower":
        rate += " (lower is better)"
    if bias is None:
        return f"the population mean {rate} of the modality's studies (no bias covariate)"
    if adjusted and bias.kind == "categorical":
        return (
            f"the bias-adjusted population mean {rate} (at the reference level "
            f"'{bias.levels[0]}' of {bias.column})"
        )
    if adjusted:
        return f"the bias-adjusted population mean {rate} (at {fit.adjusted_to(adjusted)})"
    return (
        f"the population mean {rate} averaged over each modality's own studies at "
        f"their levels of {bias.column} (missing levels by their posterior probabilities)"
    )


def _footer(fit: Fit, outcome: str, level: float, adjusted: bool) -> str:
    lw = level_words(level)
    which = _pooled_words(fit, adjusted)
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
        + _bias_words(fit)
    )


# --------------------------------------------------------------------------------------------
# The layout, in inches
# --------------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Measured sizes of the parts of a forest plot, in inches, and the text they hold."""

    fontsize: float
    columns: list[tuple[str, str]]  # (key, heading) of the text columns right of the rates
    label_width: float  # the study labels left of the rates
    widths: dict[str, float]  # each text column
    fig_width: float
    heading_height: float  # the column headings above the rates
    footer: str  # wrapped to the figure's width
    footer_size: float
    footer_height: float
    bias_heading: str | None = None  # the bias column's heading; None: no bias column
    bias_width: float = 0.0

    @property
    def label_x(self) -> float:
        """Left edge of the study labels, in inches from the left of the rate axis."""
        return -(_GAP + self.label_width)

    def right_edges(self) -> dict[str, float]:
        """Right edge of each text column, in inches from the right of the rate axis."""
        edges, x = {}, _GAP
        for key, _ in self.columns:
            x += self.widths[key]
            edges[key] = x
            x += _GAP
        if self.bias_heading is not None:
            edges["bias"] = x + self.bias_width
        return edges


def _columns(level: float) -> list[tuple[str, str]]:
    lw = level_words(level)
    headings = ("Events/n", "Crude\n%", f"Posterior %\n({lw} CrI)", f"Prediction %\n({lw} PrI)")
    return list(zip(_TEXT_COLUMNS, headings, strict=True))


def _label_text(row: _Row) -> str:
    return (_INDENT if row.kind == "study" else "") + row.label


def _measure(
    rows: list[_Row],
    level: float,
    plot_width: float,
    fontsize: float,
    footer: str,
    bias_heading: str | None = None,
) -> _Layout:
    """Measure the text of ``rows`` and lay the figure out around a rate axis ``plot_width``;
    with ``bias_heading``, a bias column right of the text columns."""
    columns = _columns(level)
    label_width = max(
        [text_size("Study", fontsize, "bold")[0]]
        + [
            text_size(_label_text(r), fontsize, "bold" if r.kind == "header" else "normal")[0]
            for r in rows
        ]
    )
    widths = {}
    for key, heading in columns:
        texts = [r.texts.get(key, "") for r in rows]
        widths[key] = max(
            [text_size(heading, fontsize, "bold")[0]]
            + [text_size(t, fontsize)[0] for t in texts if t]
        )
    right_width = sum(widths[k] + _GAP for k, _ in columns)
    bias_width = 0.0
    if bias_heading is not None:
        bias_width = max(_BIAS_CELL_WIDTH, text_size(bias_heading, fontsize, "bold")[0])
        right_width += bias_width + _GAP
    fig_width = _PAD + label_width + _GAP + plot_width + right_width + _PAD
    footer_size = fontsize - 0.5
    wrapped = wrap_text(footer, fig_width - 2 * _PAD, footer_size)
    return _Layout(
        fontsize=fontsize,
        columns=columns,
        label_width=label_width,
        widths=widths,
        fig_width=fig_width,
        heading_height=2 * fontsize * 1.2 / 72 + 0.08,
        footer=wrapped,
        footer_size=footer_size,
        footer_height=text_size(wrapped, footer_size)[1] + 0.1,
        bias_heading=bias_heading,
        bias_width=bias_width,
    )


def _new_forest_figure(
    layout: _Layout, n_rows: int, row_height: float, plot_width: float, title: str
) -> tuple[Figure, Axes]:
    """A figure sized to its rows and text, its rate axes placed in inches, and its title."""
    import matplotlib.pyplot as plt

    fig_width = layout.fig_width
    plot_height = n_rows * row_height
    top = _TITLE_HEIGHT + layout.heading_height
    bottom = _AXIS_HEIGHT + _LEGEND_HEIGHT + layout.footer_height + 0.1
    fig_height = top + plot_height + bottom
    fig = plt.figure(figsize=(fig_width, fig_height))
    left = _PAD + layout.label_width + _GAP
    ax = fig.add_axes(
        (left / fig_width, bottom / fig_height, plot_width / fig_width, plot_height / fig_height)
    )
    fig.text(
        _PAD / fig_width,
        1 - 0.12 / fig_height,
        title,
        ha="left",
        va="top",
        fontsize=layout.fontsize + 3,
        weight="bold",
        gid="text:title",
    )
    return fig, ax


def _row_transform(ax: Axes, dx: float) -> Transform:
    """x in axes units shifted by ``dx`` inches, y in rows."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    base = blended_transform_factory(ax.transAxes, ax.transData)
    return base + ScaledTranslation(dx, 0, ax.figure.dpi_scale_trans)


def _head_transform(ax: Axes, dx: float, dy: float) -> Transform:
    """Axes units shifted by ``dx``, ``dy`` inches."""
    from matplotlib.transforms import ScaledTranslation

    return ax.transAxes + ScaledTranslation(dx, dy, ax.figure.dpi_scale_trans)


# --------------------------------------------------------------------------------------------
# The parts
# --------------------------------------------------------------------------------------------


def _draw_rate_axis(ax: Axes, n_rows: int, outcome: str, fontsize: float) -> None:
    """The 0-100% axis, one unit of y per row, top row first."""
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_xticks(np.linspace(0, 1, 5))
    ax.set_xticklabels([f"{t:g}" for t in np.linspace(0, 100, 5)], fontsize=fontsize)
    ax.set_xlabel(f"{outcome_words(outcome, capital=True)} rate (%)", fontsize=fontsize)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.xaxis.grid(True, color=GRID_COLOR, linewidth=0.6)
    ax.set_axisbelow(True)


def _draw_study(ax: Axes, y: int, row: _Row) -> None:
    """A study's crude proportion and exact interval above, shrunken estimate below."""
    v = row.values
    line = {"linewidth": _LINE_WIDTH, "solid_capstyle": "butt"}
    marker = {"markersize": _MARKER_SIZE, "linestyle": "none"}
    crude_y, shrunken_y = y - _OFFSET, y + _OFFSET
    ax.plot(
        [v["crude_lower"], v["crude_upper"]],
        [crude_y] * 2,
        color="black",
        **line,
        gid=f"crude_ci:{row.key}",
    )
    ax.plot([v["crude"]], [crude_y], marker="s", color="black", **marker, gid=f"study:{row.key}")
    ax.plot(
        [v["post_lower"], v["post_upper"]],
        [shrunken_y] * 2,
        color=POSTERIOR_COLOR,
        **line,
        gid=f"shrunken_ci:{row.key}",
    )
    ax.plot(
        [v["post_median"]],
        [shrunken_y],
        marker="o",
        markerfacecolor="white",
        markeredgecolor=POSTERIOR_COLOR,
        markeredgewidth=_LINE_WIDTH,
        **marker,
        gid=f"shrunken:{row.key}",
    )


def _draw_pooled(ax: Axes, y: int, row: _Row, first: int) -> None:
    """A modality's prediction interval, pooled diamond, and a dashed line up to ``first``."""
    from matplotlib.patches import Polygon

    v = row.values
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
    corners = [
        (v["post_lower"], y),
        (v["post_median"], y - _DIAMOND_HALF),
        (v["post_upper"], y),
        (v["post_median"], y + _DIAMOND_HALF),
    ]
    ax.add_patch(
        Polygon(
            corners,
            closed=True,
            facecolor=POSTERIOR_COLOR,
            edgecolor=POSTERIOR_COLOR,
            zorder=3,
            gid=f"diamond:{row.modality}",
        )
    )
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


def _draw_rates(ax: Axes, rows: list[_Row]) -> None:
    """The markers and intervals of every study row and pooled row."""
    for y, row in enumerate(rows):
        if row.kind == "study":
            _draw_study(ax, y, row)
        elif row.kind == "pooled":
            first = next(i for i, r in enumerate(rows) if r.modality == row.modality)
            _draw_pooled(ax, y, row, first)


def _draw_column_headers(ax: Axes, layout: _Layout, edges: dict[str, float]) -> None:
    """ "Study" above the labels and each text column's bold heading above it."""
    heading = {"fontsize": layout.fontsize, "weight": "bold", "clip_on": False}
    ax.text(
        0,
        1,
        "Study",
        transform=_head_transform(ax, layout.label_x, 0.06),
        ha="left",
        va="bottom",
        gid="text:label:column_header",
        **heading,
    )
    for key, words in layout.columns:
        ax.text(
            1,
            1,
            words,
            transform=_head_transform(ax, edges[key], 0.06),
            ha="right",
            va="bottom",
            gid=f"text:{key}:column_header",
            linespacing=1.1,
            **heading,
        )


def _draw_row_texts(ax: Axes, rows: list[_Row], layout: _Layout, edges: dict[str, float]) -> None:
    """Each row's label left of the rates and its text columns right of them."""
    fontsize = layout.fontsize
    for y, row in enumerate(rows):
        if row.kind == "gap":
            continue
        ax.text(
            0,
            y,
            _label_text(row),
            transform=_row_transform(ax, layout.label_x),
            ha="left",
            va="center",
            fontsize=fontsize,
            clip_on=False,
            weight="bold" if row.kind == "header" else "normal",
            style="italic" if row.kind == "pooled" else "normal",
            gid=f"text:label:{row.key}",
        )
        for key, _ in layout.columns:
            text = row.texts.get(key, "")
            if not text:
                continue
            pooled_posterior = key == "posterior" and row.kind == "pooled"
            ax.text(
                1,
                y,
                text,
                transform=_row_transform(ax, edges[key]),
                ha="right",
                va="center",
                fontsize=fontsize,
                clip_on=False,
                color=POSTERIOR_COLOR if pooled_posterior else "black",
                weight="bold" if pooled_posterior else "normal",
                gid=f"text:{key}:{row.key}",
            )


def _level_color(level: str, position: int) -> str:
    return BIAS_LEVEL_COLORS.get(level, f"C{position % 10}")


def _draw_bias_column(ax: Axes, rows: list[_Row], layout: _Layout, right: float) -> None:
    """Each study's bias level: a coloured cell where it was rated, else a bar split by its
    posterior level probabilities; the heading above. ``right`` is the column's right edge in
    inches from the rate axis."""
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import blended_transform_factory

    per_inch = 1.0 / (ax.get_position().width * ax.figure.get_figwidth())  # axes units
    centre = 1.0 + (right - layout.bias_width / 2) * per_inch
    width = _BIAS_CELL_WIDTH * per_inch
    transform = blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(
        1,
        1,
        layout.bias_heading,
        transform=_head_transform(ax, right, 0.06),
        ha="right",
        va="bottom",
        fontsize=layout.fontsize,
        weight="bold",
        clip_on=False,
        linespacing=1.1,
        gid="text:bias:column_header",
    )
    for y, row in enumerate(rows):
        if row.kind != "study" or not row.levels:
            continue
        x = centre - width / 2
        for position, (level, probability) in enumerate(row.levels.items()):
            if probability <= 0:
                continue
            ax.add_patch(
                Rectangle(
                    (x, y - _BIAS_CELL_HEIGHT / 2),
                    width * probability,
                    _BIAS_CELL_HEIGHT,
                    transform=transform,
                    facecolor=_level_color(level, position),
                    edgecolor="none",
                    clip_on=False,
                    gid=f"bias:{row.key}:{level}",
                )
            )
            x += width * probability
        if not row.rated:  # an outline marks a posterior, not a rating
            ax.add_patch(
                Rectangle(
                    (centre - width / 2, y - _BIAS_CELL_HEIGHT / 2),
                    width,
                    _BIAS_CELL_HEIGHT,
                    transform=transform,
                    fill=False,
                    edgecolor="#555555",
                    linewidth=0.5,
                    linestyle=(0, (1.5, 1.0)),
                    clip_on=False,
                    gid=f"bias_unrated:{row.key}",
                )
            )


def _bias_words(fit: Fit) -> str:
    """The footer's sentence on the bias column, or "" without a categorical covariate."""
    bias = fit.data.bias
    if bias is None or bias.kind != "categorical":
        return ""
    named = ", ".join(
        f"{fit.label(level)} {_BIAS_COLOR_WORDS.get(level, f'colour C{k % 10}')}"
        for k, level in enumerate(bias.levels)
    )
    return (
        f" Right column: each study's {bias.column} ({named}); where a study's level is not "
        "known, a dotted box split by its posterior probability of each level."
    )


def _draw_legend(ax: Axes, layout: _Layout, level: float) -> None:
    """The four kinds of mark, in one row below the axis label."""
    from matplotlib.lines import Line2D

    lw = level_words(level)
    study = {"markersize": _MARKER_SIZE, "linewidth": _LINE_WIDTH}
    handles = [
        Line2D([], [], color="black", marker="s", **study, label=f"Crude (exact {lw} CI)"),
        Line2D(
            [],
            [],
            color=POSTERIOR_COLOR,
            marker="o",
            **study,
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
        bbox_transform=_head_transform(ax, layout.label_x, -_AXIS_HEIGHT),
        ncol=4,
        fontsize=layout.fontsize - 0.5,
        frameon=False,
        borderaxespad=0,
        borderpad=0,
        handlelength=2.0,
        columnspacing=1.2,
    )


def _draw_footer(ax: Axes, layout: _Layout) -> None:
    """What the marks show and which model, below the legend."""
    ax.text(
        0,
        0,
        layout.footer,
        transform=_head_transform(ax, layout.label_x, -(_AXIS_HEIGHT + _LEGEND_HEIGHT)),
        ha="left",
        va="top",
        fontsize=layout.footer_size,
        color="#333333",
        gid="text:footer",
        clip_on=False,
        linespacing=1.25,
    )


def forest_plot(
    fit: Fit,
    outcome: str | None = None,
    ax: Axes | None = None,
    level: float = 0.95,
    sort_by: str | None = "year",
    adjusted: bool | None = None,
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
    prediction interval (pooled rows). With a categorical bias covariate, a last column shows
    each study's level as a coloured cell (green, amber, red for low, moderate and high risk of
    bias, as RevMan's traffic lights), or, where the level is not known, a dotted box split by
    the study's posterior probability of each level (:meth:`~bayesreview.Fit.bias_levels`). A
    footer says what the diamond shows and which model.

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
        With a bias covariate: ``True`` pools the bias-adjusted rate, ``False`` the rate
        averaged over the observed mix; default None: the fit's headline
        (:meth:`bayesreview.Fit.headline_adjusted`, the observed mix where the bias effects are
        weakly identified). Study estimates are the same either way.
    labels
        Display names of modalities, e.g. ``{"topical_sts": "Topical STS"}``; default: the
        fit's labels (:attr:`bayesreview.Fit.labels`), which these update.
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
        See :mod:`bayesreview.plots` for the gids of its parts.
    """
    outcome = plot_outcome(fit, outcome)
    adjusted = fit.headline_adjusted() if adjusted is None else adjusted
    rows = _forest_rows(fit, outcome, level, sort_by, adjusted, figure_labels(fit, labels))
    footer = _footer(fit, outcome, level, adjusted)
    bias = fit.data.bias
    heading = None
    if bias is not None and bias.kind == "categorical":
        heading = "Risk of\nbias" if bias.column == "risk_of_bias" else bias.column.capitalize()
    layout = _measure(rows, level, plot_width, fontsize, footer, heading)
    if ax is None:
        title = title if title is not None else outcome_words(outcome, capital=True)
        fig, ax = _new_forest_figure(layout, len(rows), row_height, plot_width, title)
    else:
        fig = ax.figure
    _draw_rate_axis(ax, len(rows), outcome, fontsize)
    _draw_rates(ax, rows)
    edges = layout.right_edges()
    _draw_column_headers(ax, layout, edges)
    _draw_row_texts(ax, rows, layout, edges)
    if heading is not None:
        _draw_bias_column(ax, rows, layout, edges["bias"])
    _draw_legend(ax, layout, level)
    _draw_footer(ax, layout)
    return fig
