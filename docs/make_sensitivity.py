"""Generate docs/sensitivity.md and docs/figures/sensitivity_any.png from the calcinosis data.

Run from the repository root::

    python docs/make_sensitivity.py [--draws 500]

Every number in the page comes from this script, and every sentence that reads a number is
computed from it by the helpers of ``docs/_prose.py`` (thresholds stated on the page); rerun it
after changing the models or data.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # docs/_prose.py
sys.path.insert(1, str(DOCS.parent))  # run from a checkout without installing

import _prose  # noqa: E402
import pandas as pd  # noqa: E402

import bayesreview as br  # noqa: E402
from bayesreview.checks import ppc  # noqa: E402
from bayesreview.data import display_labels  # noqa: E402
from bayesreview.plots import sensitivity_plot  # noqa: E402
from bayesreview.report import write_text_atomic  # noqa: E402
from bayesreview.robustness import RHAT_REFIT_MAX, sensitivity  # noqa: E402

#: The codebook's display labels of the bundled data (what the page's tables show).
LABELS = display_labels(br.load_dataset("calcinosis_cutis"))


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def interval(row) -> str:
    return f"{pct(row.mean_rate)} ({pct(row.mean_rate_lower)} to {pct(row.mean_rate_upper)})"


def markdown(frame) -> str:
    """A DataFrame as a Markdown table (numbers to 3 significant digits)."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def summarise(table):
    """Per modality: main result, and the range of medians over each kind of scenario."""
    lines = [
        "| modality | studies | main: mean rate (95% CrI) | leave one out | design | "
        "unknown | other model | prior scales |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for modality in table.loc[table.kind == "main", "modality"]:
        sub = table[table.modality == modality]
        main = sub[sub.kind == "main"].iloc[0]
        cells = []
        for kind in ("leave_one_out", "design", "unknown", "model", "prior_scale"):
            values = sub.loc[sub.kind == kind, "mean_rate"]
            if values.empty:
                cells.append("-")
            elif len(values) == 1:
                cells.append(pct(values.iloc[0]))
            else:
                cells.append(f"{pct(values.min())} to {pct(values.max())}")
        name = LABELS.get(modality, modality)
        lines.append(f"| {name} | {main.studies} | {interval(main)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shifts(table, kind: str):
    """Rows of ``kind`` with ``shift``: their mean rate minus the main fit's (signed, 0-1)."""
    main = table[table.kind == "main"].set_index("modality")["mean_rate"]
    rows = table[table.kind == kind].copy()
    rows["shift"] = rows["mean_rate"] - rows["modality"].map(main)
    return rows


def largest_shifts(table, k: int = 5) -> str:
    loo = shifts(table, "leave_one_out")
    loo = loo.reindex(loo["shift"].abs().sort_values(ascending=False).index).head(k)
    lines = [
        "| left out | modality | mean rate without it (posterior median) | shift |",
        "|---|---|---|---|",
    ]
    for row in loo.itertuples():
        lines.append(
            f"| {row.scenario.removeprefix('leave out ')} | "
            f"{LABELS.get(row.modality, row.modality)} | "
            f"{pct(row.mean_rate)} | {_prose.points(row.shift, signed=True)} |"
        )
    return "\n".join(lines)


def _range(values) -> str:
    return f"{100 * min(values):.0f} to {100 * max(values):.0f} points"


def single_study_note(table) -> str | None:
    """The modalities that rest on one study, compared with the others (widths, prior shifts)."""
    main = table[table.kind == "main"].set_index("modality")
    one = main.index[main.studies == 1]
    many = main.index[main.studies > 1]
    if len(one) == 0:
        return None
    names = ", ".join(LABELS.get(m, m) for m in one)
    widths = main["mean_rate_upper"] - main["mean_rate_lower"]
    text = (
        f"- {len(one)} modalities rest on a single study ({names}): their 95% intervals are "
        f"{_range(widths[one])} wide"
    )
    if len(many):
        text += f", against {_range(widths[many])} for the {len(many)} modalities with more studies"
    prior = shifts(table, "prior_scale")
    if len(prior) and len(many):
        moved = prior.assign(size=prior["shift"].abs()).groupby("modality")["size"].max()
        a, b = moved.reindex(one).max(), moved.reindex(many).max()
        text += (
            f". Halving or doubling the prior scales moves their mean rates by up to "
            f"{_prose.points(a)}, {_prose.size_comparison(a, b)} the up to {_prose.points(b)} "
            "of the others"
        )
    return text + ". A modality has no row in the refit that leaves out its only study."


def reading(table, checks) -> str:
    """Plain-words notes, every number and every word about a number taken from the tables."""
    main = table[table.kind == "main"].set_index("modality")
    design = table[table.kind == "design"]
    lost = [LABELS.get(m, m) for m in main.index if m not in set(design.modality)]
    loo = shifts(table, "leave_one_out")
    labels = [
        f"{LABELS.get(m, m)} without {s.removeprefix('leave out ')}"
        for m, s in zip(loo.modality, loo.scenario, strict=True)
    ]
    notes = []
    single = single_study_note(table)
    if single:
        notes.append(single)
    notes.append(
        "- "
        + _prose.shift_sentence(
            loo["shift"], labels, what="leave-one-out rows (modality x study left out)"
        )
    )
    other = pd.concat([shifts(table, k) for k in ("design", "unknown", "model", "prior_scale")])
    if len(other):
        notes.append(
            "- "
            + _prose.shift_sentence(
                other["shift"],
                [
                    f"{LABELS.get(m, m)}, {s}"
                    for m, s in zip(other.modality, other.scenario, strict=True)
                ],
                what="rows of the other scenarios (design, unknown responses, model, priors)",
            )
        )
    if len(design):
        text = (
            f"- Excluding case reports and conference abstracts keeps "
            f"{int(design.studies.sum())} studies and loses {len(lost)} modalities"
        )
        notes.append(text + (f" ({', '.join(lost)})." if lost else "."))
    notes.append("- " + _prose.ppc_overall_sentence(checks.p_two_sided))
    for row in checks.itertuples():
        sentence = _prose.ppc_sentence(
            row.stage,
            row.statistic,
            row.observed,
            row.replicated_mean,
            row.p_value,
            row.p_two_sided,
        )
        notes.append(f"- Posterior predictive check, {sentence}")
    if "exclude high risk of bias" in table.attrs["skipped"]:
        notes.append(
            "- Per-study risk-of-bias ratings are not published for this review (only the "
            "totals), so the scenario excluding high risk of bias cannot be run on these data."
        )
    return "\n".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    total = time.perf_counter()
    studies = br.load_dataset("calcinosis_cutis")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = sensitivity(studies, draws=args.draws, tune=args.draws, seed=args.seed)
    seconds = time.perf_counter() - start
    (DOCS / "figures").mkdir(exist_ok=True)
    fig = sensitivity_plot(table)
    fig.savefig(DOCS / "figures" / "sensitivity_any.png", dpi=150)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = br.fit(
            studies, draws=args.draws, tune=args.draws, chains=2, seed=args.seed, progressbar=False
        )
    checks = ppc(fit)

    skipped = "\n".join(f"- *{k}*: {v}." for k, v in table.attrs["skipped"].items()) or "- none"
    problems = table.attrs["problems"]
    problem_text = (
        "\n".join(f"- {k}: {', '.join(v)}" for k, v in problems.items())
        if problems
        else f"- none (no divergences, R-hat <= {RHAT_REFIT_MAX} in every refit)"
    )
    del caught
    n_loo = table.loc[table.kind == "leave_one_out", "scenario"].nunique()
    others = list(dict.fromkeys(table.loc[table.kind == "model", "scenario"]))
    other_words = " and ".join(name.removeprefix("model ") for name in others) or "none"
    variants = 1 + len(others) + table.loc[table.kind == "prior_scale", "scenario"].nunique()
    page = f"""# Sensitivity analyses: calcinosis cutis, any response

*Generated by `docs/make_sensitivity.py` (draws = tune = {args.draws} per chain, 2 chains,
seed {args.seed}); do not edit by hand.*

`bayesreview.sensitivity(studies)` refits the default analysis (beta-binomial, any response,
unknown responses counted as failures) under {table.scenario.nunique()} scenarios and tabulates
the pooled mean response rate of each modality (posterior median and 95% credible interval),
with the probability that the modality is the best of those present. The whole table took
{seconds:.0f} s here, including compiling {variants} model variants (the default model, the
other models ({other_words}) and the prior grids); the {n_loo} leave-one-study-out refits reuse
one compiled model: a left-out study keeps its row with weight 0.

```python
import bayesreview as br
from bayesreview.robustness import sensitivity
from bayesreview.plots import sensitivity_plot

# tidy: one row per scenario x modality
table = sensitivity(br.load_dataset("calcinosis_cutis"))
sensitivity_plot(table)
```

## Summary per modality

Main result (posterior median and 95% credible interval of the mean rate), then the range of
posterior medians of the mean rate across each kind of scenario ("design": excluding case
reports and conference abstracts; "unknown": unknown responses excluded from the denominators;
"other model": {other_words}; "prior scales": every prior's scale halved and doubled). A dash:
the modality has no study left in that scenario.

{summarise(table)}

Scenarios not run:

{skipped}

Refits with sampling problems:

{problem_text}

## The studies that move a result most

Largest shifts of a modality's mean rate (posterior median) when one study is left out:

{largest_shifts(table)}

![Sensitivity of the pooled any-response rates](figures/sensitivity_any.png)

## Posterior predictive check of the main model

Posterior predictive p-values of the number of zero-event studies, of all-event studies and of
the SD of the study rates (`bayesreview.checks.ppc`). They are mid-p values, which split ties
evenly (these statistics are integers, or take few values, so a replicate often equals the
data): `p_value` = P(T(y_rep) > T(y)) + P(T(y_rep) = T(y)) / 2, and `p_two_sided` =
min(1, 2 min(p, 1 - p)). A `p_value` near 0 says the data have more of the statistic than the
model's replicates, near 1 less.

{markdown(checks)}

## Reading it

{reading(table, checks)}

{_prose.legend()}
"""
    write_text_atomic(DOCS / "sensitivity.md", page)
    print(
        f"wrote {DOCS / 'sensitivity.md'} (sensitivity table {seconds:.0f} s, "
        f"total {time.perf_counter() - total:.0f} s)"
    )


if __name__ == "__main__":
    main()
