"""A self-contained HTML report of a fit, to read in a browser or send by e-mail.

:func:`write_report` writes one HTML file with everything inline: the CSS, the figures (as
base64 PNG or inline SVG) and the tables. It needs no JavaScript and makes no network request
of any kind (no remote fonts, scripts, style sheets or images), so it reads the same offline
and years later. All text that comes from the data or the model specification is escaped.

The report shows, in order: the main results (crude next to posterior), the forest plots, the
comparisons of modalities and their ranks with the comparison heat map and the rank plot, the
checks (R-hat, ESS, divergences, the posterior predictive check and, with a bias covariate, the
bias effects' prior and posterior), the sensitivity analyses with their figure (when given),
the model and its priors in plain words, the data with its reconciliation against the
published summary, and the settings and package versions needed to reproduce the fit. Tables
and figures name modalities by their display labels (:meth:`bayesreview.Fit.label`).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesreview._io import atomic_path
from bayesreview.backend import compiled_for
from bayesreview.data import CATEGORIES, dataset_info, list_datasets, load_dataset
from bayesreview.display import pooled_totals_note
from bayesreview.formatting import outcome_words, percent
from bayesreview.robustness import SELECTION_ANALYSIS

if TYPE_CHECKING:  # pragma: no cover
    from bayesreview.fitting import Fit
    from bayesreview.network import InconsistencyCheck, NetworkFit

__all__ = [
    "bundled_dataset",
    "network_figures",
    "package_versions",
    "render_network_report",
    "write_report",
    "write_text_atomic",
]

#: Packages whose versions the report records (those that change the numbers).
REPORTED_PACKAGES: tuple[str, ...] = ("bayesreview", "pymc", "arviz", "numpy", "nutpie")


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 70em; padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.08em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .86em; }
th, td { border: 1px solid #ccc; padding: .22em .5em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.wide { overflow-x: auto; }
.note { color: #555; font-size: .9em; }
.warn { background: #fff4e5; border-left: 4px solid #e08a00; padding: .5em 1em; }
.ok { background: #eef7ee; border-left: 4px solid #3a8a3a; padding: .5em 1em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9em; }
"""


# --------------------------------------------------------------------------------------------
# Facts the report needs
# --------------------------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that determine the numbers (``"not installed"`` else)."""
    from bayesreview import __version__

    versions = {"bayesreview": __version__}
    for name in REPORTED_PACKAGES[1:]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


_IDENTITY_COLUMNS = ("study", "modality", "n", *CATEGORIES)


def bundled_dataset(studies: pd.DataFrame) -> str | None:
    """Name of the bundled data set ``studies`` is, or None.

    Decided by content, not by ``attrs["source"]``: a table restored by
    :func:`~bayesreview.load_fit` has lost its attributes, and an edited copy of a bundled table
    keeps them. The table is the bundled one when it has the same rows with the same study,
    modality, n and outcome counts.
    """
    for name in list_datasets():
        if dataset_info(name).get("kind", "responses") != "responses":
            continue  # e.g. adverse events: not a table of studies' responses
        bundled = load_dataset(name)
        columns = [c for c in _IDENTITY_COLUMNS if c in bundled]
        if len(studies) != len(bundled) or not all(c in studies for c in columns):
            continue
        ours = studies[columns].reset_index(drop=True).astype(str)
        theirs = bundled[columns].reset_index(drop=True).astype(str)
        if ours.equals(theirs):
            return name
    return None


# --------------------------------------------------------------------------------------------
# HTML helpers
# --------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escaped text of a cell (missing values as an empty cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        return html.escape(f"{float(value):.3g}")
    return html.escape(str(value))


def _pct(rate: float, digits: int = 1) -> str:
    return percent(float(rate), digits)


def _interval(lower: float, upper: float, digits: int = 1) -> str:
    """``"60.1–85.2"``, or ``"-7.5 to 47.0"`` when the interval holds negative numbers."""
    separator = " to " if lower < 0 else "–"
    return f"{_pct(lower, digits)}{separator}{_pct(upper, digits)}"


def _table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    numeric: tuple[str, ...] = (),
) -> str:
    """An HTML table of ``frame``; every cell escaped, ``formats`` applied per column."""
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            text = html.escape(formats[column](value)) if column in formats else _e(value)
            is_num = column in numeric or isinstance(value, int | float | np.number)
            cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _figure_html(content: bytes, caption: str) -> str:
    """A figure element holding a PNG (base64) or an SVG (inline) image."""
    head = content.lstrip()[:256]
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        text = content.decode("utf-8")
        start = text.find("<svg")
        image = text[start:]  # drops the XML declaration and the DOCTYPE (which names a URL)
    elif content.startswith(b"\x89PNG"):
        encoded = base64.b64encode(content).decode("ascii")
        image = f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
    else:
        raise ValueError("figures must be PNG or SVG bytes")
    return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def _render_forest_png(fit: Fit, outcome: str) -> bytes:
    """Draw the forest plot of one outcome and return it as PNG bytes."""
    return _png(fit.forest_plot(outcome=outcome))


def _labelled(frame: pd.DataFrame, fit: Fit, columns: tuple[str, ...]) -> pd.DataFrame:
    """A copy of ``frame`` whose code columns show display labels (:meth:`Fit.label`)."""
    frame = frame.copy()
    for column in columns:
        if column in frame:
            frame[column] = [fit.label(str(v)) if pd.notna(v) else v for v in frame[column]]
    return frame


#: Columns of the tables that hold codes with display labels.
_CODE_COLUMNS = ("modality", "group", "design", "modality_a", "modality_b")


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _summary_section(fit: Fit, summary: pd.DataFrame) -> str:
    adjusted = fit.settings.get("bias") is not None
    parts = [
        "<h2>Main results: crude and posterior</h2>",
        '<p class="note">Crude: events / patients with an exact (Clopper–Pearson) 95% '
        "confidence interval; every patient counts alike. Mean rate: posterior median and 95% "
        "credible interval of the modality's population mean rate (the mean over "
        "studies), from the random-effects model; median-study rate: the median of the true "
        "study rates (the pooled proportion metafor, meta and brms report); prediction: 95% "
        "interval for the rate of a new study; between-study SD: posterior median of the SD "
        "of the true rates, in percentage points."
        + (
            " With the bias covariate, the rates are adjusted to "
            f"{html.escape(str(fit.adjusted_to(fit.headline_adjusted())))}"
            + (
                "."
                if fit.headline_adjusted()
                else f", because {html.escape(str(fit.weak_identification()))}."
            )
            if adjusted
            else ""
        )
        + f" Here {fit.better} rates are better."
        + (f" {html.escape(note)}" if (note := pooled_totals_note(fit)) else "")
        + "</p>",
    ]
    for outcome in fit.outcomes:
        rows = summary[summary["outcome"] == outcome]
        table = pd.DataFrame(
            {
                "modality": [fit.label(m) for m in rows["modality"]],
                "studies": rows["studies"],
                "events / N": [f"{e}/{n}" for e, n in zip(rows["events"], rows["n"], strict=True)],
                "crude %": [_pct(v) for v in rows["crude"]],
                "crude 95% CI": [
                    _interval(lo, hi)
                    for lo, hi in zip(rows["crude_lower"], rows["crude_upper"], strict=True)
                ],
                "mean rate %": [_pct(v) for v in rows["mean_rate"]],
                "95% CrI": [
                    _interval(lo, hi)
                    for lo, hi in zip(rows["mean_rate_lower"], rows["mean_rate_upper"], strict=True)
                ],
                "median-study rate %": [_pct(v) for v in rows["median_rate"]],
                "95% prediction": [
                    _interval(lo, hi)
                    for lo, hi in zip(rows["pred_lower"], rows["pred_upper"], strict=True)
                ],
                "between-study SD (pp)": [_pct(v) for v in rows["rate_sd"]],
            }
        )
        parts.append(f"<h3>{html.escape(outcome_words(outcome, capital=True))}</h3>")
        parts.append(_table(table, numeric=tuple(table.columns[1:])))
    return "\n".join(parts)


def _estimates(table: pd.DataFrame, name: str) -> list[str]:
    """``"61.2 (40.1–80.3)"`` per row: column ``name`` with its ``_lower``/``_upper``, in %."""
    columns = (table[name], table[f"{name}_lower"], table[f"{name}_upper"])
    return [f"{_pct(m)} ({_interval(lo, hi)})" for m, lo, hi in zip(*columns, strict=True)]


def _changes_section(fit: Fit) -> str:
    """What an update (:func:`bayesreview.update`) changed: studies and pooled rates."""
    from bayesreview.living import changes

    record = fit.settings["update"]
    table = changes(fit)
    shown = pd.DataFrame(
        {
            "outcome": [outcome_words(o) for o in table["outcome"]],
            "modality": [fit.label(m) for m in table["modality"]],
            "added": table["added"],
            "replaced": table["replaced"],
            "before %": _estimates(table, "mean_rate_before"),
            "after %": _estimates(table, "mean_rate_after"),
            "change (pp)": [_pct(v) for v in table["change"]],
        }
    )
    return "\n".join(
        [
            "<h2>What changed</h2>",
            f"<p>This fit updates an earlier one: {len(record['added'])} studies added, "
            f"{len(record['replaced'])} replaced; same model, settings and seed. Mean rates: "
            "posterior median (95% credible interval) before and after.</p>",
            _table(shown, numeric=("before %", "after %", "change (pp)")),
        ]
    )


def _thresholds_section(fit: Fit, table: pd.DataFrame) -> str:
    """Per outcome and modality, the chance of clearing a clinical threshold."""
    shown = pd.DataFrame(
        {
            "outcome": [outcome_words(o) for o in table["outcome"]],
            "modality": [fit.label(m) for m in table["modality"]],
            "threshold %": [_pct(t) for t in table["threshold"]],
            "P(mean rate beyond)": [_probability(p) for p in table["p_pooled"]],
            "new studies beyond %": [_pct(s) for s in table["share_new"]],
        }
    )
    direction = table["direction"].iloc[0] if len(table) else "above"
    return "\n".join(
        [
            "<h2>Clinical thresholds</h2>",
            f'<p class="note">P(mean rate beyond): the posterior probability that the pooled '
            f"mean rate is {html.escape(direction)} the threshold; new studies beyond: the "
            "expected share of new studies whose true rate is "
            f"{html.escape(direction)} it (the posterior predictive probability).</p>",
            _table(shown, numeric=tuple(shown.columns[2:])),
        ]
    )


def _bias_section(fit: Fit, table: pd.DataFrame) -> str:
    """The rates without a covariate next to those with each bias covariate."""
    analyses = [a for a in dict.fromkeys(table["analysis"]) if a != "none"]
    if not analyses:
        return ""
    parts = [
        "<h2>Bias</h2>",
        '<p class="note">The same analysis refitted with each bias covariate (same model, '
        "settings and seed). For each: the mean rate at the covariate's reference level, and "
        "averaged over each modality's own studies (own mix). Posterior median and 95% "
        "credible interval, in %. Where the data barely inform a covariate's effects, the "
        "reference-level rates rest on the prior and the own-mix rates are the ones to read "
        "(the notes below say where). Publication selection: the same model with studies "
        "that report no responders published less readily than those that do (a relative "
        "publication probability per design, from the data and its prior), and the pooled "
        "rates of all studies, published or not (selection-adjusted).</p>",
    ]
    for outcome in dict.fromkeys(table["outcome"]):
        part = table[table["outcome"] == outcome]
        plain = part[part["analysis"] == "none"]
        shown = {"modality": [fit.label(m) for m in plain["modality"]]}
        shown["no covariate"] = _estimates(plain, "mean_rate")
        for name in analyses:
            rows = part[part["analysis"] == name].set_index("modality")
            if rows.empty:  # the selection analysis of the joint model: any response only
                continue
            rows = rows.loc[plain["modality"]]
            if name == SELECTION_ANALYSIS:
                shown[f"{name}: adjusted"] = _estimates(rows, "mean_rate")
                continue
            reference = str(rows["adjusted_to"].iloc[0])
            shown[f"{name}: at {reference}"] = _estimates(rows, "mean_rate")
            shown[f"{name}: own mix"] = _estimates(rows, "mix_rate")
        parts.append(f"<h3>{html.escape(outcome_words(outcome, capital=True))}</h3>")
        frame = pd.DataFrame(shown)
        parts.append(_table(frame, numeric=tuple(frame.columns[1:])))
    for name in analyses:
        rows = table[table["analysis"] == name]
        for text in (rows["note"].iloc[0], rows["sampling"].iloc[0]):
            if text:
                parts.append(
                    f'<p class="note"><strong>{html.escape(name)}</strong>: '
                    f"{html.escape(text[:1].upper() + text[1:])}.</p>"
                )
    return "\n".join(parts)


def _probability(value: Any) -> str:
    return "" if pd.isna(value) else f"{float(value):.2f}"


def _comparison_formats(frame: pd.DataFrame) -> dict[str, Callable[[Any], str]]:
    """Formats of the ranks columns: probabilities to 2 decimals, mean ranks to 2."""
    formats: dict[str, Callable[[Any], str]] = {}
    for column in frame.columns:
        if frame[column].dtype.kind != "f":
            continue
        if column.startswith("p_") or column == "sucra":
            formats[column] = _probability
        else:
            formats[column] = lambda v: "" if pd.isna(v) else f"{float(v):.2f}"
    return formats


def _comparison_section(fit: Fit, comparison: pd.DataFrame, ranks: pd.DataFrame) -> str:
    parts = [
        "<h2>Comparisons of modalities</h2>",
        '<p class="note">Each pair once (A before B in the order of the data): the posterior '
        f"probability that A has the {fit.better} (the better) mean rate, "
        "P(A better than B) (and P(B better than A) = 1 − P(A better than B)), and the "
        "difference A − B in percentage points: posterior median and 95% credible interval. "
        "A probability near 0.5 means the data cannot tell the two apart; it is not a test. "
        "comparison.csv lists both orders.</p>",
    ]
    order = {group: i for i, group in enumerate(fit.groups)}
    for outcome in fit.outcomes:
        part = comparison[comparison["outcome"] == outcome]
        pairs = zip(part["modality_a"], part["modality_b"], strict=True)
        part = part[[order.get(a, 0) < order.get(b, 0) for a, b in pairs]]
        if part.empty:
            continue
        table = pd.DataFrame(
            {
                "A": [fit.label(m) for m in part["modality_a"]],
                "B": [fit.label(m) for m in part["modality_b"]],
                "P(A better than B)": [_probability(v) for v in part["p_better"]],
                "A − B (pp)": [_pct(v) for v in part["diff_median"]],
                "95% CrI": [
                    _interval(lo, hi)
                    for lo, hi in zip(part["diff_lower"], part["diff_upper"], strict=True)
                ],
            }
        )
        parts.append(f"<h3>{html.escape(outcome_words(outcome, capital=True))}</h3>")
        parts.append(_table(table, numeric=("P(A better than B)", "A − B (pp)", "95% CrI")))
    parts += [
        "<h2>Ranks</h2>",
        '<p class="note">Probability that each modality has the '
        f"{'highest' if fit.better == 'higher' else 'lowest'} mean rate, the best (p_best; "
        f"{fit.better} is better), its mean rank (1 = best), SUCRA (1 = best in every draw, "
        "0 = worst) and the "
        "probability of each rank. With few small studies per modality these are uncertain; "
        "read them with the intervals.</p>",
    ]
    for outcome in fit.outcomes:
        part = ranks[ranks["outcome"] == outcome].drop(columns="outcome")
        if part.empty:
            continue
        part = _labelled(part, fit, _CODE_COLUMNS)
        parts.append(f"<h3>{html.escape(outcome_words(outcome, capital=True))}</h3>")
        parts.append(_table(part, _comparison_formats(part)))
        parts.append(_comparison_figures(fit, outcome))
    return "\n".join(parts)


def _comparison_figures(fit: Fit, outcome: str) -> str:
    """The comparison heat map and the rank plot of one outcome (none for one modality)."""
    from bayesreview.plots import comparison_heatmap, rankogram

    if len(fit.groups) < 2:
        return ""
    words = outcome_words(outcome)
    return _figure_html(
        _png(comparison_heatmap(fit, outcome=outcome)), f"Comparison heat map: {words}"
    ) + _figure_html(_png(rankogram(fit, outcome=outcome)), f"Rank probabilities: {words}")


def _figures_section(fit: Fit, figures: Mapping[str, bytes]) -> str:
    parts = [
        "<h2>Forest plots</h2>",
        '<p class="note">Per study: the crude proportion with its exact 95% interval and the '
        "model's shrunken estimate; per modality: the pooled posterior (diamond) and the 95% "
        "prediction interval for a new study.</p>",
    ]
    for outcome, content in figures.items():
        caption = f"Forest plot: {outcome_words(outcome)}"
        parts.append(_figure_html(content, caption))
    return "\n".join(parts)


def _diagnostics_section(fit: Fit) -> str:
    problems = fit.convergence_problems()
    table = fit.diagnostics()
    parts = ["<h2>Checks: did the sampler converge?</h2>"]
    if problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        parts.append(
            '<div class="warn"><strong>The sampler may not have converged.</strong>'
            f"<ul>{items}</ul>Do not rely on these numbers yet: refit with more tuning and "
            "draws (e.g. <code>--draws 2000</code>), and if divergences remain, look at the "
            "priors of the parameters named above.</div>"
        )
    else:
        parts.append(
            '<div class="ok">All parameters have R-hat ≤ 1.01 and effective sample sizes ≥ 400, '
            "and no transition diverged.</div>"
        )
    parts.append(
        f'<p class="note">Divergent transitions: {fit.divergences}. R-hat: rank-normalised '
        "split R-hat (1.00 is ideal); ESS: bulk and tail effective sample sizes.</p>"
    )
    table = table.sort_values("r_hat", ascending=False, na_position="first")
    formats = {
        "r_hat": lambda v: f"{float(v):.3f}",
        "ess_bulk": lambda v: f"{float(v):.0f}",
        "ess_tail": lambda v: f"{float(v):.0f}",
    }
    parts.append(
        "<details><summary>All parameters (worst R-hat first)</summary>"
        + _table(table.drop(columns="divergences"), formats)
        + "</details>"
    )
    parts.append(_check_figures(fit))
    return "\n".join(parts)


def _check_figures(fit: Fit) -> str:
    """The posterior predictive check and, with a bias covariate, its prior and posterior."""
    from bayesreview.plots import bias_prior_posterior, ppc_plot

    parts = [
        '<p class="note">Posterior predictive check: each study\'s observed events against the '
        "95% interval of its replicated events under the model (the study's own posterior "
        "predictive distribution).</p>",
        _figure_html(_png(ppc_plot(fit)), "Posterior predictive check, per study"),
    ]
    if fit.settings.get("bias"):
        parts.append(
            _figure_html(
                _png(bias_prior_posterior(fit)), "Bias effects: prior (curve) and posterior"
            )
        )
    return "\n".join(parts)


def _sensitivity_section(fit: Fit, table: pd.DataFrame) -> str:
    """The sensitivity analyses (a table of :func:`bayesreview.sensitivity`) and their figure."""
    from bayesreview.plots import sensitivity_plot

    parts = [
        "<h2>Sensitivity analyses</h2>",
        '<p class="note">The pooled mean rate per modality under each alternative analysis '
        "(posterior median and 95% credible interval); the main analysis in black, its interval "
        "shaded.</p>",
    ]
    for outcome in pd.unique(table["outcome"]):
        words = outcome_words(outcome)
        figure = sensitivity_plot(table, outcome=outcome, labels=fit.labels)
        parts.append(_figure_html(_png(figure), f"Sensitivity analyses: {words}"))
        rows = _labelled(table[table["outcome"] == outcome], fit, _CODE_COLUMNS)
        columns = ["scenario", "modality", "mean_rate", "mean_rate_lower", "mean_rate_upper"]
        shown = rows[columns].assign(
            **{
                "mean_rate": [_pct(v) for v in rows["mean_rate"]],
                "mean_rate_lower": [_pct(v) for v in rows["mean_rate_lower"]],
                "mean_rate_upper": [_pct(v) for v in rows["mean_rate_upper"]],
            }
        )
        parts.append(
            f"<details><summary>All scenarios: {html.escape(words)}</summary>"
            + _table(shown.rename(columns={"mean_rate": "mean rate %"}))
            + "</details>"
        )
    return "\n".join(parts)


def _model_section(fit: Fit) -> str:
    settings = fit.settings
    parts = ["<h2>The model and its priors</h2>", f"<pre>{html.escape(fit.spec.describe())}</pre>"]
    if settings.get("bias"):
        counts = settings.get("bias_prior_counts")
        text = (
            f"Bias covariate: column {settings['bias']!r}"
            + (f", reference level {settings['bias_reference']!r}" if counts else "")
            + (
                "; Dirichlet prior counts of the level probabilities for studies whose level "
                "is missing: " + ", ".join(f"{k} {v:g}" for k, v in counts.items())
                if counts
                else ""
            )
            + "."
        )
        parts.append(f"<p>{html.escape(text)}</p>")
    parts.append(
        "<details><summary>The model specification (TOML), to refit with "
        "<code>--model FILE</code></summary>"
        f"<pre>{html.escape(fit.spec.to_toml())}</pre></details>"
    )
    return "\n".join(parts)


def _data_section(fit: Fit) -> str:
    from bayesreview.data import load_published, reconcile

    studies = fit.studies
    parts = [
        "<h2>The data</h2>",
        f"<p>{len(studies)} studies, {int(studies['n'].sum())} patients. Unknown responses are "
        + (
            "counted as failures (in the denominator)."
            if fit.settings.get("unknown", "failure") == "failure"
            else "excluded from the denominators."
        )
        + "</p>",
    ]
    name = bundled_dataset(studies)
    if name is not None:
        published = load_published(name)
        differences = reconcile(studies, published)
        parts.append("<h3>Reconciliation with the published summary</h3>")
        if differences.empty:
            parts.append(
                f"<p>The study table reproduces every cell of the published summary of "
                f"{html.escape(name)}.</p>"
            )
        else:
            parts.append(
                "<p>The study-level data (the paper's study table) and its published summary "
                "table disagree in these cells; the study-level counts are analysed:</p>"
            )
            parts.append(_table(_labelled(differences, fit, ("level",))))
    else:
        parts.append(
            '<p class="note">No published summary is bundled for this table, so nothing was '
            "reconciled.</p>"
        )
    if "notes" in studies:
        noted = studies[studies["notes"].notna() & (studies["notes"].astype(str).str.strip() != "")]
        if len(noted):
            parts.append("<h3>Notes on the data (decisions taken per study)</h3><ul>")
            parts += [
                f"<li><strong>{_e(r.study)}</strong>: {_e(r.notes)}</li>"
                for r in noted.itertuples(index=False)
            ]
            parts.append("</ul>")
    parts.append("<h3>Study table</h3>")
    parts.append(
        _table(_labelled(studies.drop(columns="notes", errors="ignore"), fit, _CODE_COLUMNS))
    )
    return "\n".join(parts)


def _settings_section(fit: Fit | NetworkFit) -> str:
    settings = {k: v for k, v in fit.settings.items() if k not in ("free_vars", "studies")}
    rows = pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]})
    versions = package_versions()
    attrs = fit.idata.posterior.attrs
    fitted_with = attrs.get("bayesreview_version")
    version_rows = pd.DataFrame({"package": list(versions), "version": list(versions.values())})
    if "bayesreview_compiled_for" in attrs:
        compiled = f"the likelihood was compiled for {_e(attrs['bayesreview_compiled_for'])}"
    elif fitted_with:  # saved by a version that did not record it
        compiled = "the saved fit does not record which"
    else:
        compiled = f"the likelihood was compiled for {_e(compiled_for())}"
    parts = [
        "<h2>Settings and versions</h2>",
        "<p>The same data, model, settings, seed and package versions give the same numbers on "
        f"a processor of the same kind ({compiled}). Code "
        "compiled for another processor can round differently in the last digits, and the "
        "chains then part: other draws of the same posterior, equal up to Monte Carlo error "
        "(the environment variable NUMBA_CPU_NAME=generic, set on both machines, takes the "
        "compiler's part out of such differences).</p>",
        _table(rows),
        _table(version_rows),
    ]
    if fitted_with:
        parts.append(
            f'<p class="note">The fit was made with bayesreview {_e(fitted_with)}'
            + (f" ({_e(attrs['created_at'])})" if "created_at" in attrs else "")
            + "; this report was written from the saved fit.</p>"
        )
    return "\n".join(parts)


def _written_note() -> str:
    """When and by which bayesreview a report was written."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<p class="note">Written {html.escape(stamp)} by bayesreview '
        f"{html.escape(package_versions()['bayesreview'])}. Rates are shown as percentages.</p>"
    )


def _html_document(title: str, body: list[str]) -> str:
    """A whole HTML page: ``title``, the inline CSS and the ``body`` parts."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------
# The report of a network meta-analysis
# --------------------------------------------------------------------------------------------

#: The network report's figures: key, caption.
NETWORK_FIGURES = {
    "network": "The network: nodes sized by patients, edges by the number of trials.",
    "relative_effects": "Odds ratios against the reference: posterior median and 95% CrI.",
    "league": "League table: row against column, coloured by P(row better than column).",
}


def network_figures(fit: NetworkFit) -> dict[str, Any]:
    """The network graph, the relative-effects forest plot and the league heat map of
    ``fit`` as matplotlib figures, by the keys of :data:`NETWORK_FIGURES`."""
    from bayesreview.plots.network import league_heatmap, network_graph, relative_effects_plot

    labels = {t: fit.label(t) for t in fit.treatments}
    return {
        "network": network_graph(fit.structure, labels=labels),
        "relative_effects": relative_effects_plot(fit, labels=labels),
        "league": league_heatmap(fit, labels=labels),
    }


def _network_intro(fit: NetworkFit) -> str:
    settings, structure = fit.settings, fit.structure
    direction = "higher" if fit.better == "higher" else "lower"
    return (
        f"<p>{len(fit.treatments)} treatments ({_e(settings['by'])}), {len(fit.arms)} arms of "
        f"{fit.arms['study'].nunique()} studies ({len(structure.single_arm)} single-arm); "
        f"outcome {_e(settings['outcome'])}, {direction} is better; reference "
        f"{_e(fit.label(fit.reference))}; model {_e(fit.spec.name)}; {_e(settings['chains'])} "
        f"chains × {_e(settings['draws'])} draws, seed {_e(settings['seed'])}.</p>"
    )


def _two_decimals(value: Any) -> str:
    return f"{float(value):.2f}"


def _network_effects_table(fit: NetworkFit) -> pd.DataFrame:
    """Odds ratios against the reference, for people to read."""
    effects = fit.relative_effects(measure="or")
    return pd.DataFrame(
        {
            "treatment": [fit.label(t) for t in effects["treatment"]],
            "against": [fit.label(t) for t in effects["reference"]],
            "odds ratio (median)": effects["median"],
            "95% CrI": [
                f"{lower:.2f}–{upper:.2f}"
                for lower, upper in zip(effects["lower"], effects["upper"], strict=True)
            ],
            "P(better)": effects["p_better"],
        }
    )


def _network_results_section(fit: NetworkFit) -> str:
    ranks = fit.ranks()
    ranks = pd.DataFrame(
        {
            "treatment": [fit.label(t) for t in ranks["treatment"]],
            "mean rank": ranks["mean_rank"],
            "P(best)": ranks["p_best"],
            "SUCRA": ranks["sucra"],
        }
    )
    tau = fit.heterogeneity()
    statistics = fit.fit_statistics()
    return "\n".join(
        [
            "<h2>Results</h2>",
            "<p>Rates at the typical study's baseline; crude rates pool each treatment's arms "
            "as if from one study.</p>",
            _table(fit.summary()),
            "<h3>Odds ratios against the reference</h3>",
            _table(
                _network_effects_table(fit),
                formats={"odds ratio (median)": _two_decimals, "P(better)": _probability},
            ),
            "<h3>Ranks</h3>",
            _table(
                ranks,
                formats={
                    "mean rank": _two_decimals,
                    "P(best)": _probability,
                    "SUCRA": _probability,
                },
            ),
            f"<p>Between-study SD of the log odds ratios, tau: {tau['median']:.2f} (95% CrI "
            f"{tau['lower']:.2f}–{tau['upper']:.2f}). Residual deviance "
            f"{statistics['residual_deviance']:.1f} for {statistics['arms']:.0f} arms (about "
            f"the number of arms where the model fits), pD {statistics['p_d']:.1f}, DIC "
            f"{statistics['dic']:.1f}.</p>",
        ]
    )


def _inconsistency_section(fit: NetworkFit, check: InconsistencyCheck | None) -> str:
    if check is None:
        return (
            "<h2>Inconsistency</h2><p>Not checked: the comparative studies close no loop, so "
            "no comparison has both direct and indirect evidence.</p>"
            if not fit.structure.has_loop
            else ""
        )
    pairs = check.pairs

    def interval(kind: str) -> list[str]:
        columns = [f"{kind}_median", f"{kind}_lower", f"{kind}_upper"]
        return [f"{m:.2f} ({lo:.2f} to {hi:.2f})" for m, lo, hi in pairs[columns].to_numpy()]

    table = pd.DataFrame(
        {
            "comparison": [
                f"{fit.label(t)} vs {fit.label(b)}"
                for t, b in zip(pairs["treatment"], pairs["versus"], strict=True)
            ],
            "trials": pairs["studies"],
            "direct log OR (95% CrI)": interval("direct"),
            "network log OR (95% CrI)": interval("network"),
        }
    )
    return "\n".join(
        [
            "<h2>Inconsistency</h2>",
            "<p>The network model against the unrelated-mean-effects model, which gives each "
            "directly compared pair its own log odds ratio (Dias et al. 2013).</p>",
            f"<p>{_e(check.summary())}</p>",
            _table(table),
        ]
    )


def _network_checks_section(fit: NetworkFit) -> str:
    assumptions = "".join(f"<li>{_e(a)}</li>" for a in fit.assumptions())
    return "\n".join(
        [
            "<h2>Assumptions and checks</h2>",
            f"<ul>{assumptions}</ul>",
            _table(fit.diagnostics()),
            f"<p>Model: {_e(fit.spec.describe())}</p>",
        ]
    )


def render_network_report(
    fit: NetworkFit,
    figures: Mapping[str, bytes] | None = None,
    title: str | None = None,
    inconsistency: InconsistencyCheck | None = None,
) -> str:
    """The report of a network meta-analysis as an HTML string; see :func:`write_report`."""
    if figures is None:
        figures = {key: _png(figure) for key, figure in network_figures(fit).items()}
    title = title or "Bayesian network meta-analysis"
    drawn = [
        _figure_html(figures[key], caption) for key, caption in NETWORK_FIGURES.items()
        if key in figures
    ]  # fmt: skip
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _network_intro(fit),
        _written_note(),
        _network_results_section(fit),
        "<h2>Figures</h2>",
        *drawn,
        _inconsistency_section(fit, inconsistency),
        _network_checks_section(fit),
        _settings_section(fit),
    ]
    return _html_document(title, body)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def render_report(
    fit: Fit,
    figures: Mapping[str, bytes] | None = None,
    title: str | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    sensitivity: pd.DataFrame | None = None,
) -> str:
    """The report of ``fit`` as an HTML string; see :func:`write_report`."""
    tables = dict(tables or {})
    summary = tables["summary"] if "summary" in tables else fit.summary()
    comparison = tables["comparison"] if "comparison" in tables else fit.compare()
    ranks = tables["ranks"] if "ranks" in tables else fit.ranks()
    if figures is None:
        figures = {outcome: _render_forest_png(fit, outcome) for outcome in fit.outcomes}
    name = bundled_dataset(fit.studies)
    title = title or (
        f"Bayesian meta-analysis: {dataset_info(name)['title']}"
        if name
        else "Bayesian meta-analysis of response rates"
    )
    settings = fit.settings
    intro = (
        f"<p>{len(fit.studies)} studies pooled by {_e(settings.get('by'))} "
        f"({len(fit.groups)} levels); outcome: {_e(settings.get('outcome'))}; model "
        f"{_e(fit.spec.name)}; {_e(settings.get('chains'))} chains × {_e(settings.get('draws'))} "
        f"draws, seed {_e(settings.get('seed'))}.</p>" + _written_note()
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        intro,
        _summary_section(fit, summary),
        _changes_section(fit) if fit.settings.get("update") else "",
        _thresholds_section(fit, tables["exceedance"]) if "exceedance" in tables else "",
        _figures_section(fit, figures),
        _comparison_section(fit, comparison, ranks),
        _diagnostics_section(fit),
        _bias_section(fit, tables["bias"]) if "bias" in tables else "",
        "" if sensitivity is None else _sensitivity_section(fit, sensitivity),
        _model_section(fit),
        _data_section(fit),
        _settings_section(fit),
    ]
    return _html_document(title, body)


def write_report(
    fit: Fit | NetworkFit,
    path: str | os.PathLike,
    figures: Mapping[str, bytes] | None = None,
    title: str | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    sensitivity: pd.DataFrame | None = None,
    inconsistency: InconsistencyCheck | None = None,
) -> Path:
    """Write a self-contained HTML report of a fit, whole or not at all.

    Parameters
    ----------
    fit
        A :class:`~bayesreview.fitting.Fit`, fresh or from :func:`~bayesreview.load_fit`, or
        a :class:`~bayesreview.NetworkFit`: its report holds the results table, the odds
        ratios against the reference, the ranks, tau and the fit statistics, the network
        graph, the relative-effects forest plot and the league heat map
        (:func:`network_figures`), the inconsistency check when given, the assumptions, the
        diagnostics and the settings.
    path
        The HTML file to write; written to a temporary file in the same folder, then moved into
        place, so an error never leaves a half-written report.
    figures
        Forest plots by outcome, as PNG or SVG bytes (e.g. what the command line already saved).
        Default None: drawn here with :meth:`Fit.forest_plot`, one per outcome of the fit.
    title
        Heading of the report; default names the bundled data set, if it is one.
    tables
        Precomputed ``"summary"``, ``"comparison"`` and ``"ranks"`` tables (as from
        :meth:`Fit.summary`, :meth:`Fit.compare`, :meth:`Fit.ranks`), to avoid computing them
        twice; default None computes them. An ``"exceedance"`` table
        (:func:`bayesreview.exceedance`) adds a "Clinical thresholds" section, a ``"bias"``
        table (:func:`bayesreview.robustness.bias_analyses`) a "Bias" section.
    sensitivity
        A table of :func:`bayesreview.sensitivity` on the same data, shown with its figure in
        a "Sensitivity analyses" section; default None (no section).
    inconsistency
        A network fit's :func:`bayesreview.inconsistency` check, shown in an "Inconsistency"
        section; default None (the section then says whether the network has a loop).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from bayesreview.network import NetworkFit

    if isinstance(fit, NetworkFit):
        text = render_network_report(fit, figures, title, inconsistency)
    else:
        text = render_report(fit, figures, title, tables, sensitivity)
    return write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8), whole or not at all.

    The text goes to a hidden temporary file in the same folder (``.<name>.partial``), which
    then replaces ``path`` in one step (``os.replace``); on any error the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        The file to write; its folder must exist.
    text
        The whole content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path
