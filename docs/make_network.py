"""Generate docs/network.md and its figures: a network meta-analysis of smoking cessation trials.

Run from the repository root::

    python docs/make_network.py [--quick]

The data are metadat's ``dat.hasselblad1998`` (``tests/data/hasselblad1998.csv``: 24 trials, two
of them three-arm, a closed loop); the references are R's lme4 and metafor
(``tests/data/make_hasselblad_reference.R``) and multinma's published Bayesian fit
(``tests/data/hasselblad1998_multinma.csv``, with its sources). Every number in the page comes
from this script, and every sentence that reads one is computed from it (``docs/_prose.py``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # docs/_prose.py
sys.path.insert(1, str(DOCS.parent))  # run from a checkout without installing

import _prose  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _pages import capital, md_table, write_page  # noqa: E402

import bayesreview as br  # noqa: E402
from bayesreview.plots import (  # noqa: E402
    league_heatmap,
    network_graph,
    relative_effects_plot,
    save_figure,
)

DATA = DOCS.parent / "tests" / "data"
FIGURES = DOCS / "figures"
SEED = 1998
REFERENCE = "no_contact"
LABELS = {
    "no_contact": "No contact",
    "self_help": "Self-help",
    "ind_counseling": "Individual counselling",
    "grp_counseling": "Group counselling",
}


def _interval(median: float, lower: float, upper: float) -> str:
    return f"{median:.2f} ({lower:.2f} to {upper:.2f})"


def comparison_table(result: br.NetworkFit) -> tuple[pd.DataFrame, dict[str, float]]:
    """Our log odds ratios next to multinma's, lme4's and metafor's, and each one's tau."""
    ours = result.relative_effects(measure="log_or").set_index("treatment")
    glmer = pd.read_csv(DATA / "hasselblad1998_glmer.csv").set_index("treatment")
    rma = pd.read_csv(DATA / "hasselblad1998_rma.csv").set_index("treatment")
    multinma = pd.read_csv(DATA / "hasselblad1998_multinma.csv")
    network = multinma[multinma["quantity"] == "d_net"].set_index("treatment")
    rows = []
    for treatment in ours.index:
        g, r, o, m = (
            glmer.loc[treatment],
            rma.loc[treatment],
            ours.loc[treatment],
            network.loc[treatment],
        )
        rows.append(
            {
                "against no contact": LABELS[treatment],
                "bayesreview (median, 95% CrI)": _interval(o["median"], o.lower, o.upper),
                "multinma (median, 95% CrI)": _interval(m["median"], m.lower, m.upper),
                "lme4 glmer, ML (estimate ± 1.96 SE)": _interval(
                    g.log_or, g.log_or - 1.96 * g.se, g.log_or + 1.96 * g.se
                ),
                "metafor rma.mv, REML (95% CI)": _interval(r.log_or, r.lower, r.upper),
            }
        )
    tau = {
        "bayesreview": result.heterogeneity()["median"],
        "multinma": float(multinma.loc[multinma["quantity"] == "tau_consistency", "median"].item()),
        "lme4": float(glmer["tau"].iloc[0]),
        "metafor": float(rma["tau"].iloc[0]),
    }
    differences = {
        name: float(np.max(np.abs(ours["median"] - frame.loc[ours.index, column])))
        for name, frame, column in (
            ("multinma", network, "median"), ("lme4", glmer, "log_or"), ("metafor", rma, "log_or")
        )
    }  # fmt: skip
    return pd.DataFrame(rows), {**{f"tau_{k}": v for k, v in tau.items()}, **differences}


def inconsistency_part(check) -> list[str]:
    """The inconsistency check of the network, with its reading computed from the numbers."""
    pairs = check.pairs
    table = pd.DataFrame(
        {
            "comparison": [
                f"{LABELS[t]} vs {LABELS[b]}"
                for t, b in zip(pairs["treatment"], pairs["versus"], strict=True)
            ],
            "trials": pairs["studies"],
            "direct (unrelated mean effects)": [
                _interval(*v)
                for v in pairs[["direct_median", "direct_lower", "direct_upper"]].to_numpy()
            ],
            "network (consistency)": [
                _interval(*v)
                for v in pairs[["network_median", "network_lower", "network_upper"]].to_numpy()
            ],
        }
    )
    difference = check.dic_difference
    reading = (
        "less than the 3 that Dias et al. read as meaningful: no sign of inconsistency"
        if abs(difference) < 3
        else "at least the 3 that Dias et al. read as meaningful"
    )
    return [
        "## Inconsistency",
        "`br.inconsistency(trials, reference=...)` (or `fit.inconsistency()`) fits the "
        "unrelated-mean-effects model next to the network model: each pair compared directly "
        "gets its own log odds ratio, nothing tying the pairs together, with the same priors, "
        "tau and baselines (Dias et al. 2013). " + check.summary().replace("\n", " "),
        md_table(table),
        f"The DIC difference is {difference:.1f}, {reading}; multinma's own example of the same "
        'network finds "no difference in fit" between the two models.',
    ]


def figures(result: br.NetworkFit) -> list[Path]:
    written = []
    written += save_figure(
        network_graph(result.structure, labels=LABELS), FIGURES / "network_graph", formats=("png",)
    )
    written += save_figure(
        relative_effects_plot(result, measure="or", labels=LABELS),
        FIGURES / "network_effects",
        formats=("png",),
    )
    written += save_figure(
        league_heatmap(result, measure="or", labels=LABELS),
        FIGURES / "network_league",
        formats=("png",),
    )
    return written


def build(draws: int, chains: int) -> str:
    trials = br.read_studies(DATA / "hasselblad1998.csv")
    structure = br.network_structure(trials, reference=REFERENCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        result = br.fit(
            trials, model="network", outcome="events", reference=REFERENCE, labels=LABELS,
            draws=draws, tune=draws, chains=chains, seed=SEED, progressbar=False,
        )  # fmt: skip
        check = result.inconsistency(progressbar=False)
    statistics = result.fit_statistics()
    figures(result)
    table, numbers = comparison_table(result)
    ranks = result.ranks()
    effects = result.relative_effects().set_index("treatment")
    best = ranks.sort_values("p_best", ascending=False).iloc[0]
    parts = [
        "# Networks of trials\n\n*Generated by `docs/make_network.py`; every number is computed, "
        "and every sentence that reads one is computed from it.*",
        "Rows that share a `study` label are the arms of one trial. `br.network_structure` reads "
        'the network before anything is fitted; `br.fit(trials, model="network", '
        'by="treatment")` (or `br.fit_network`) fits the arm-based '
        "random-effects model on the exact binomial likelihood ([models](models.md#networks)): "
        "logit p_ik = mu_i + d[t_ik] + u_ik, with u_ik ~ Normal(0, tau²/2), so that each "
        "contrast between two arms of a trial varies with SD tau and two contrasts of one "
        "multi-arm trial correlate 0.5, and with the studies' baselines mu_i exchangeable, "
        "which is what lets single-arm studies into the same network.",
        "## The smoking cessation network",
        f"metadat's `dat.hasselblad1998`: {len(trials)} arms of "
        f"{len(dict.fromkeys(trials['study']))} trials. " + structure.describe().replace("\n", " "),
        "![The network](figures/network_graph.png)",
        "## Relative effects against no contact",
        f"Log odds ratios of quitting, bayesreview ({chains} chains × {draws} draws) next to "
        "multinma's Bayesian arm-based model (Stan; vague priors N(0, 100²) on the effects and "
        "the study intercepts, half-N(0, 5²) on tau), the frequentist arm-based GLMM (lme4) "
        "and the contrast-based normal model (metafor):",
        md_table(table),
        f"Between-study SD tau: bayesreview {numbers['tau_bayesreview']:.2f} (posterior "
        f"median), multinma {numbers['tau_multinma']:.2f}, lme4 {numbers['tau_lme4']:.2f} "
        f"(ML), metafor {numbers['tau_metafor']:.2f} (REML). The medians differ from "
        f"multinma's by up to {numbers['multinma']:.2f}, from lme4's estimates by up to "
        f"{numbers['lme4']:.2f} and from metafor's by up to {numbers['metafor']:.2f} on the "
        "log-odds scale. The Bayesian fits differ in their priors (ours: N(0, 2²) on the log "
        "odds ratios, exchangeable baselines where multinma has a free intercept per study, "
        "half-N(0, 1) on tau). "
        + (
            "The frequentist fits estimate a smaller tau, and "
            if min(numbers["tau_bayesreview"], numbers["tau_multinma"])
            > max(numbers["tau_lme4"], numbers["tau_metafor"])
            else "The three estimates of tau are not ordered, and "
        )
        + "a larger tau weighs the trials more equally, so that the small trials count for "
        "more: the maximum-likelihood estimate of a variance from 24 studies is biased "
        "downwards, metafor's normal approximation of log odds ratios with zero cells "
        "differs from the binomial likelihood, and the posterior averages over tau's "
        "uncertainty where the frequentist fits plug in one value.",
        "![Relative effects](figures/network_effects.png)",
        capital(
            _prose.better_sentence(
                LABELS["self_help"],
                LABELS[REFERENCE].lower(),
                float(effects.loc["self_help", "p_better"]),
            )
        )
        + "; "
        + _prose.probability_sentence(
            LABELS[best["treatment"]], "the best of the four", float(best["p_best"])
        )
        + ".",
        "## Ranks and the league table",
        md_table(
            pd.DataFrame(
                {
                    "treatment": [LABELS[t] for t in ranks["treatment"]],
                    "mean rank": [f"{r:.2f}" for r in ranks["mean_rank"]],
                    "P(best)": [f"{p:.2f}" for p in ranks["p_best"]],
                    "SUCRA": [f"{s:.2f}" for s in ranks["sucra"]],
                }
            )
        ),
        "![League table](figures/network_league.png)",
        f"Residual deviance {statistics['residual_deviance']:.1f} summed over the "
        f"{statistics['arms']:.0f} arms ("
        + (
            "close to their number, as where a model fits"
            if abs(statistics["residual_deviance"] - statistics["arms"]) < 0.2 * statistics["arms"]
            else "far from their number: some arms are fitted poorly"
        )
        + f"; Dias et al. 2013), pD {statistics['p_d']:.1f}, DIC {statistics['dic']:.1f}.",
        *inconsistency_part(check),
        "## Single-arm studies",
        f"This network has {len(structure.single_arm)} single-arm studies. Where a network "
        "has some, they join it through the assumption that the studies' baselines are "
        "exchangeable: each informs the rate of its treatment in a typical study. A treatment "
        "that only single-arm studies reach is compared with the rest through that assumption "
        "alone, and the fit warns (`AssumptionWarning`) and says so in `fit.assumptions()`; "
        "with `single_arm=False` it is refused. "
        "`br.single_arm_sensitivity(trials, by=..., reference=...)` sets the relative effects "
        "with the single-arm studies next to those without them. The model's calibration, "
        "with multi-arm trials and single-arm studies, is in [validation](validation.md).",
        "## Command line and report",
        "`bayesreview analyze --model network --by treatment data.csv` fits the network, runs "
        "the inconsistency check where the network has a loop, and writes summary.csv, "
        "relative_effects.csv, rates.csv, league.csv, ranks.csv, diagnostics.csv, "
        "inconsistency.csv, the three figures above (PNG, SVG, PDF), fit.nc and report.html; "
        "`fit.save(path)` and `br.load_fit(path)` keep and restore a network fit.",
        "A study table with rows sharing a study label across treatments is refused by the "
        'single-arm models (`br.fit(..., model="beta_binomial")`), which would pool the arms '
        "of one trial as unrelated studies: the error names the studies and the network model.",
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    write_page(__doc__.splitlines()[0], build, DOCS / "network.md")


if __name__ == "__main__":
    main()
