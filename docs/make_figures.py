"""Make the figures and tables of docs/comparisons.md from the bundled calcinosis cutis data.

Run from the repository root::

    python docs/make_figures.py            # 4 chains x 1000 draws (the published figures)
    python docs/make_figures.py --draws 300

It fits the joint response model (complete, partial and any response; ``outcome="response"``)
pooling by ``group`` (Table 2's rows: the four lasers together) with ``seed=2021``, and writes
into ``docs/figures/``: ``forest_any.png``/``.svg``, ``forest_complete.png``,
``comparison_heatmap_any.png``, ``rankogram_any.png``, ``comparison_any.csv``,
``ranks_any.csv`` and ``summary.csv``; then it regenerates ``docs/comparisons.md`` entirely.
Every file is written whole or not at all. Every sentence of the page that reads a number is
computed from it by the helpers of ``docs/_prose.py`` (thresholds stated on the page).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # docs/_prose.py
sys.path.insert(1, str(HERE.parent))  # run from a checkout without installing

import _prose  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import bayesreview as br  # noqa: E402
from bayesreview.compare import pairwise, ranks  # noqa: E402
from bayesreview.data import display_labels  # noqa: E402
from bayesreview.fitting import ESS_MIN, RHAT_MAX  # noqa: E402
from bayesreview.formatting import percent  # noqa: E402
from bayesreview.plots import (  # noqa: E402
    comparison_heatmap,
    forest_plot,
    interval_text,
    rankogram,
    save_figure,
)
from bayesreview.report import write_text_atomic  # noqa: E402

FIGURES = HERE / "figures"
MARKDOWN = HERE / "comparisons.md"
SEED = 2021
#: The codebook's display labels (data/datasets.toml).
LABELS = display_labels(br.load_dataset("calcinosis_cutis"))
SHORT = {
    "topical_sts": "Topical STS",
    "intralesional_sts": "IL STS",
    "laser": "Laser",
    "eswl": "ESWL",
    "eswl_intralesional_sts": "ESWL + IL STS",
    "picosecond_topical_sts": "Picosecond + top. STS",
}
MID = 0.10  # minimal important difference shown in the tables: 10 percentage points
BETTER = "higher"  # a higher response rate is the better one


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_text_atomic(path, frame.to_csv(index=False, float_format="%.6g"))


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table (strings as they are; no tabulate dependency)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(frame.shape[1])) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join([header, rule, *body])


def _summary_table(fit) -> str:
    table = fit.summary()
    table = table[table["outcome"] == "any"]
    rows = []
    for r in table.itertuples():
        rows.append(
            {
                "Modality": LABELS[r.modality],
                "Studies": r.studies,
                "Events/n": f"{r.events}/{r.n}",
                "Crude % (exact 95% CI)": interval_text(r.crude, r.crude_lower, r.crude_upper),
                "Mean rate % (95% CrI)": interval_text(
                    r.mean_rate, r.mean_rate_lower, r.mean_rate_upper
                ),
                "Prediction % (95% PrI)": f"{percent(r.pred_lower)}–{percent(r.pred_upper)}",
            }
        )
    return _markdown(pd.DataFrame(rows))


def _crude_note(fit, studies: pd.DataFrame) -> str:
    """Among groups of more than one study: where the posterior mean rate is farthest from the
    crude percentage, and how much of that group's patients its largest study holds (crude
    percentages weight patients)."""
    table = fit.summary()
    table = table[(table["outcome"] == "any") & (table["studies"] > 1)].reset_index(drop=True)
    if table.empty:
        return ""
    gap = table["mean_rate"] - table["crude"]
    where = gap.abs().idxmax()
    row = table.loc[where]
    members = studies[studies["group"] == row["modality"]]
    big = members.loc[members["n"].idxmax()]
    responders = int(big["complete"] + big["partial"])
    share = big["n"] / members["n"].sum()
    return (
        "Among the groups of more than one study, the posterior mean rate is farthest from "
        "the crude percentage for "
        f"{LABELS[row['modality']]}: crude {percent(row['crude'])}%, posterior "
        f"{percent(row['mean_rate'])}% ({_prose.points(gap[where], 0, True)}). The crude "
        f"figure counts every patient alike, so there the largest study, {big['study']} "
        f"({responders}/{int(big['n'])} responders, {percent(responders / big['n'])}%), carries "
        f"{percent(share)}% of its weight; "
        "the random-effects model treats each study as one draw from the modality's "
        "population of studies and pulls each study's estimate toward that population's mean "
        "(the open circles in the forest plot)."
    )


def _single_study_note(fit) -> str:
    """The groups that rest on one study, with their prediction intervals."""
    table = fit.summary()
    table = table[(table["outcome"] == "any") & (table["studies"] == 1)]
    if table.empty:
        return "Every group has more than one study."
    cells = [
        f"{LABELS[r.modality]}, {r.n} patient{'s' if r.n != 1 else ''}: prediction interval "
        f"{percent(r.pred_lower)}–{percent(r.pred_upper)}%"
        for r in table.itertuples()
    ]
    borrow = (
        " Their heterogeneity is borrowed from the other groups through the partial pooling."
        if fit.spec.pools_heterogeneity(len(fit.groups))
        else ""
    )
    return (
        f"{len(table)} of the {len(fit.groups)} groups rest on a single study ("
        + "; ".join(cells)
        + ")."
        + borrow
    )


def _heterogeneity_columns(fit) -> str:
    """The summary's heterogeneity columns for this model, as Markdown code."""
    scale = ("tau", "tau2") if fit.spec.likelihood == "logit_normal" else ("phi", "icc")
    return ", ".join(f"`{name}`" for name in ("rate_sd", *scale))


def _pooling(fit) -> str:
    """How the model treats the heterogeneity across groups, from its specification."""
    if fit.spec.pools_heterogeneity(len(fit.groups)):
        return "with heterogeneity partially pooled across groups"
    if fit.spec.heterogeneity == "per_modality":
        return "with a heterogeneity of its own per group"
    return "with one heterogeneity for all groups"


def _matrix_table(fit) -> str:
    table = pairwise(fit, outcome="any", better=BETTER).set_index(["modality_a", "modality_b"])
    table = table["p_better"]
    rows = []
    for a in fit.groups:
        row = {"P(row better)": SHORT[a]}
        for b in fit.groups:
            row[SHORT[b]] = "—" if a == b else f"{table[(a, b)]:.2f}"
        rows.append(row)
    return _markdown(pd.DataFrame(rows))


def _pairs_table(fit) -> str:
    """Each unordered pair once, the modality with the higher median difference first."""
    plain = pairwise(fit, outcome="any", better=BETTER)
    mid = pairwise(fit, outcome="any", threshold=MID, better=BETTER)
    mid = mid.set_index(["modality_a", "modality_b"])
    rows = []
    for r in plain[plain["diff_median"] >= 0].itertuples():
        rows.append(
            {
                "A": SHORT[r.modality_a],
                "B": SHORT[r.modality_b],
                "P(A better)": f"{r.p_better:.2f}",
                "reading": _prose.probability_word(r.p_better),
                f"P(A better by > {percent(MID)} points)": (
                    f"{mid.loc[(r.modality_a, r.modality_b), 'p_better']:.2f}"
                ),
                "A − B, points (95% CrI)": (
                    f"{100 * r.diff_median:.0f} ({100 * r.diff_lower:.0f} to "
                    f"{100 * r.diff_upper:.0f})"
                ),
            }
        )
    frame = pd.DataFrame(rows).sort_values("P(A better)", ascending=False, kind="stable")
    return _markdown(frame)


def _pairs_note(fit) -> str:
    """How decisive the pairwise probabilities are, and the clearest pair in words."""
    table = pairwise(fit, outcome="any", better=BETTER)
    table = table[table["diff_median"] >= 0]
    top = table.loc[table["p_better"].idxmax()]
    return (
        _prose.decisive_sentence(table["p_better"], f"the {len(table)} probabilities P(A better)")
        + " The clearest: "
        + _prose.better_sentence(SHORT[top.modality_a], SHORT[top.modality_b], top.p_better)
        + "."
    )


def _ranks_table(fit) -> str:
    table = ranks(fit, outcome="any", better=BETTER).sort_values("sucra", ascending=False)
    rows = [
        {
            "Modality": LABELS[r.modality],
            "P(best)": f"{r.p_best:.2f}",
            "Mean rank": f"{r.mean_rank:.1f}",
            "SUCRA": f"{r.sucra:.2f}",
        }
        for r in table.itertuples()
    ]
    return _markdown(pd.DataFrame(rows))


def _page(fit, draws: int, studies: pd.DataFrame) -> str:
    chains = fit.idata.posterior.sizes["chain"]
    problems = fit.convergence_problems()
    health = (
        f"The sampler's diagnostics raised no concern (R-hat ≤ {RHAT_MAX}, bulk and tail ESS "
        f"≥ {ESS_MIN}, no divergent transitions)."
        if not problems
        else "Diagnostics: " + "; ".join(problems) + "."
    )
    return f"""# Comparing the calcinosis cutis therapies

<!-- Generated by `python docs/make_figures.py --draws {draws}`; do not edit by hand. -->

The bundled data (`br.load_dataset("calcinosis_cutis")`: Table 1 of Nowaczyk et al. 2021,
{len(studies)} studies, {int(studies["n"].sum())} patients) fitted with the joint response
model, pooled by `group` (Table 2's rows; the four lasers together), unknown responses counted
as non-responders as the review does:

```python
import bayesreview as br
studies = br.load_dataset("calcinosis_cutis")
fit = br.fit(studies, outcome="response", by="group", seed={SEED}, draws={draws})
fit.summary(); fit.compare(outcome="any", better="{BETTER}"); fit.ranks(outcome="any")
```

Model `{fit.spec.name}`: {fit.spec.likelihood.replace("_", "-")} random effects per group
{_pooling(fit)}; any response, then complete response among responders (so complete ≤
any in every draw). {chains} chains × {draws} draws, seed {SEED}, bayesreview
{br.__version__}.
{health}

All rates below are the **population mean response rate** of a modality's studies (no bias
covariate is used: the per-study risk-of-bias ratings are not published);
[summary.csv](figures/summary.csv) has the median-study rate (`median_rate`) and the
heterogeneity ({_heterogeneity_columns(fit)}) too. Crude percentages count every patient
alike, as the review's Table 2 does.

## Any response (complete or partial)

{_summary_table(fit)}

{_crude_note(fit, studies)}

{_single_study_note(fit)}

## Forest plot

![Forest plot of any response](figures/forest_any.png)

Squares: each study's crude proportion with its exact (Clopper–Pearson) 95% interval; open
circles: the shrunken study estimate (its posterior given the modality's mean and
heterogeneity); diamonds: posterior median and 95% credible interval of the modality's mean
rate; grey bars: 95% prediction interval of a new study's rate. Vector version:
[forest_any.svg](figures/forest_any.svg); complete response:
[forest_complete.png](figures/forest_complete.png).

## Pairwise comparisons

Posterior probability that the row modality is better than the column's, i.e. that its
mean rate of any response is higher (`p_better` with `better="{BETTER}"`;
[comparison_any.csv](figures/comparison_any.csv) has every ordered pair with the
difference's median and 95% interval):

{_matrix_table(fit)}

![P(row better)](figures/comparison_heatmap_any.png)

Each pair once, the one ahead first, with the probability that it is ahead by more than a
minimal important difference of {percent(MID)} percentage points
(`fit.compare(outcome="any", threshold={MID})`):

{_pairs_table(fit)}

{_pairs_note(fit)}

These are posterior probabilities of statements about the modalities' mean rates, not
p-values; they inherit every weakness of the evidence (single-arm case reports and series,
different patients and lesions per modality), so they rank the published experience, not the
treatments' efficacy in a trial.

{_prose.legend()}

## Ranks

Rank 1 is the highest mean rate; SUCRA is the surface under the cumulative ranking curve
(1: surely best, 0: surely worst). [ranks_any.csv](figures/ranks_any.csv) has the full rank
probabilities; [summary.csv](figures/summary.csv) the summary of all three outcomes.

{_ranks_table(fit)}

![Rank probabilities](figures/rankogram_any.png)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain (1000)")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (1000)")
    parser.add_argument("--chains", type=int, default=4, help="chains (4)")
    args = parser.parse_args(argv)

    studies = br.load_dataset("calcinosis_cutis")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", br.ConvergenceWarning)
        fit = br.fit(
            studies,
            outcome="response",
            by="group",
            seed=SEED,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            progressbar=False,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    FIGURES.mkdir(parents=True, exist_ok=True)

    written = []
    figure = forest_plot(fit, outcome="any", labels=LABELS)
    written += save_figure(figure, FIGURES / "forest_any", formats=("png", "svg"))
    figure = forest_plot(fit, outcome="complete", labels=LABELS)
    written += save_figure(figure, FIGURES / "forest_complete", formats=("png",))
    figure = comparison_heatmap(fit, outcome="any", labels=SHORT)
    written += save_figure(figure, FIGURES / "comparison_heatmap_any", formats=("png",))
    figure = rankogram(fit, outcome="any", labels=LABELS)
    written += save_figure(figure, FIGURES / "rankogram_any", formats=("png",))
    plt.close("all")

    comparison = pairwise(fit, outcome="any", better=BETTER)
    mid = pairwise(fit, outcome="any", threshold=MID, better=BETTER)
    comparison.insert(5, f"p_better_{MID:g}", mid["p_better"].to_numpy())
    for frame, name in (
        (comparison, "comparison_any.csv"),
        (ranks(fit, outcome="any", better=BETTER), "ranks_any.csv"),
        (fit.summary(), "summary.csv"),
    ):
        _write_csv(frame, FIGURES / name)
        written.append(FIGURES / name)
    write_text_atomic(MARKDOWN, _page(fit, args.draws, studies))
    written.append(MARKDOWN)
    for path in written:
        print(path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
