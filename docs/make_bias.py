"""Generate docs/bias.md: the ways of handling risk of bias and study design, on the bundled data.

Run from the repository root::

    python docs/make_bias.py [--quick]

Every number in the page comes from this script, and every sentence that reads a number is
computed from it (``docs/_prose.py``); rerun it after changing the models or data.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # docs/_prose.py
sys.path.insert(1, str(DOCS.parent))  # run from a checkout without installing

import _prose  # noqa: E402
import pandas as pd  # noqa: E402
from _pages import capital, md_table, write_page  # noqa: E402

import bayesreview as br  # noqa: E402
from bayesreview.data import display_labels  # noqa: E402
from bayesreview.fitting import WEAK_SD_RATIO  # noqa: E402
from bayesreview.spec import SELECTION_CLASS_LABELS  # noqa: E402

SEED = 2021
STUDIES = br.load_dataset("calcinosis_cutis")
LABELS = display_labels(STUDIES)
TOTALS = br.dataset_info("calcinosis_cutis")["risk_of_bias_totals"]

#: The analyses compared: name -> (words, arguments of fit besides the common ones).
ANALYSES = {
    "none": ("no covariate", {}),
    "design": ("study design (known for every study)", {"bias": "design"}),
    "totals": (
        "risk of bias, the published totals known exactly (`bias_totals`)",
        {"bias": "risk_of_bias", "bias_totals": "dataset"},
    ),
    "uniform": (
        "risk of bias, level probabilities ~ Dirichlet(1, 1, 1) (`bias_prior_counts`)",
        {"bias": "risk_of_bias"},
    ),
    "pseudo": (
        "risk of bias, the totals as Dirichlet prior counts (as if from 40 other studies)",
        {"bias": "risk_of_bias", "bias_prior_counts": dict(TOTALS)},
    ),
    "selection": (
        'publication selection by response (`model="selection"`)',
        {"model": "selection"},
    ),
}


def label(code: str) -> str:
    return LABELS.get(code, code)


def estimate(row) -> str:
    return (
        f"{100 * row.mean_rate:.0f} ({100 * row.mean_rate_lower:.0f}–"
        f"{100 * row.mean_rate_upper:.0f})"
    )


def fit_all(draws: int, chains: int) -> dict[str, tuple[br.Fit, list[str]]]:
    """Every analysis of :data:`ANALYSES`, with the warnings each fit gave (their messages)."""
    fits = {}
    for name, (_, arguments) in ANALYSES.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", br.WeakIdentificationWarning)
            warnings.simplefilter("always", br.ConvergenceWarning)
            result = br.fit(
                STUDIES,
                outcome="any",
                by="group",
                draws=draws,
                chains=chains,
                seed=SEED,
                progressbar=False,
                **arguments,
            )
        fits[name] = (result, [f"{w.category.__name__}: {w.message}" for w in caught])
    return fits


def rates_table(fits) -> str:
    """Per group: the reference-level and the own-mix rate of each analysis."""
    plain = fits["none"][0].summary()
    columns = {"group": [label(g) for g in plain["modality"]]}
    columns["no covariate"] = [estimate(r) for r in plain.itertuples()]
    for name in ("design", "totals", "uniform", "pseudo"):
        result = fits[name][0]
        reference = result.summary(adjusted=True)
        own = result.summary(adjusted=False)
        at = f"{name}: at {result.adjusted_to()}"
        columns[at] = [estimate(r) for r in reference.itertuples()]
        columns[f"{name}: own mix"] = [estimate(r) for r in own.itertuples()]
    return md_table(pd.DataFrame(columns))


def identification_table(fits) -> str:
    rows = []
    for name in ("design", "totals", "uniform", "pseudo"):
        result = fits[name][0]
        for row in result.bias_identification().itertuples():
            rows.append(
                {
                    "analysis": name,
                    "effect": f"{label(str(row.level))}",
                    "prior mean (SD)": f"{row.prior_mean:.2f} ({row.prior_sd:.2f})",
                    "posterior mean (SD)": f"{row.posterior_mean:.2f} ({row.posterior_sd:.2f})",
                    "SD ratio": f"{row.sd_ratio:.2f}",
                    "shift (prior SDs)": f"{row.shift:+.2f}",
                }
            )
    return md_table(pd.DataFrame(rows))


def _verb(count: int) -> str:
    """``"1 reports"``, ``"2 report"``."""
    return f"{count} report" + ("s" if count == 1 else "")


def selection_section(fits) -> str:
    """The selection-adjusted rates next to the unadjusted ones, and the weights."""
    plain = fits["none"][0].summary()
    result = fits["selection"][0]
    adjusted = result.summary()
    groups = [label(g) for g in plain["modality"]]
    rates = md_table(
        pd.DataFrame(
            {
                "group": groups,
                "no selection": [estimate(r) for r in plain.itertuples()],
                "selection-adjusted": [estimate(r) for r in adjusted.itertuples()],
            }
        )
    )
    table = result.selection_identification()
    weights = md_table(
        pd.DataFrame(
            {
                "studies with no responders": [SELECTION_CLASS_LABELS[c] for c in table["level"]],
                "prior mean (SD)": [
                    f"{m:.2f} ({sd:.2f})"
                    for m, sd in zip(table.prior_mean, table.prior_sd, strict=True)
                ],
                "posterior median (95% CrI)": [
                    f"{m:.2f} ({lo:.2f}–{hi:.2f})"
                    for m, lo, hi in zip(
                        table["median"], table["lower"], table["upper"], strict=True
                    )
                ],
                "SD ratio": [f"{r:.2f}" for r in table["sd_ratio"]],
            }
        )
    )
    informed = [
        f"{SELECTION_CLASS_LABELS[row.level]}: "
        + (
            "the data barely move it from its prior"
            if row.sd_ratio > WEAK_SD_RATIO
            else f"the data narrow it to {row.sd_ratio:.2f} of its prior SD"
        )
        for row in table.itertuples()
    ]
    counts = fits["none"][0].data
    reports = counts.trials == 1
    zero = counts.events == 0
    change = _prose.change_sentence(
        "Allowing for publication selection", plain["mean_rate"], adjusted["mean_rate"], groups
    )
    return "\n\n".join(
        [
            "## Publication selection",
            f"Of the {int(reports.sum())} case reports, {_verb(int((reports & zero).sum()))} "
            f"a patient who did not respond; of the {int((~reports).sum())} case series, "
            f"{_verb(int((~reports & zero).sum()))} no responders. Any response, pooled by "
            "group (posterior median % and 95% CrI):",
            rates,
            "The relative publication probability of a study with no responders:",
            weights,
            capital("; ".join(informed)) + ". " + capital(change) + ". "
            "A simulated literature with this kind of selection "
            "([Bias simulations](bias_simulations.md)) shows how often each model's interval "
            "covers the true rate.",
        ]
    )


def domains_section() -> str:
    """How ratings by domain (RoB 2, ROBINS-I) become the overall level: prose, no fit."""
    default = inspect.signature(br.overall_risk_of_bias).parameters["some_concerns_to_high"].default
    return (
        "## Ratings by domain (RoB 2, ROBINS-I)\n\n"
        "Where a review rates each study by domain, `overall_risk_of_bias` combines the "
        "ratings into the overall `risk_of_bias` level by the tools' published rules, before "
        "fitting:\n\n"
        "- **RoB 2** (randomised trials; Sterne et al. 2019, BMJ 366:l4898): domains are low, "
        "some concerns or high. The overall is high if any domain is high, or if at least "
        f"`some_concerns_to_high` domains (default {default}) have some concerns: Cochrane's "
        '"some concerns in multiple domains", made a fixed count (`None` switches it off). '
        "It is low if every domain is low, and otherwise some concerns, which is `moderate` "
        "here.\n"
        '- **ROBINS-I** (non-randomised studies; `tool="robins_i"`; Sterne et al. 2016, BMJ '
        "355:i4919): domains are low, moderate, serious or critical, and the overall is the "
        "worst of them; serious and critical are both `high`. `some_concerns_to_high` does "
        "not apply (leave it at its default or give `None`).\n"
        "- **Domains not assessed** (an empty cell, or ROBINS-I's *no information*): the "
        "overall is given only where the assessed domains decide it. A high (RoB 2) or "
        "serious or critical (ROBINS-I) domain, or (RoB 2) enough domains with some "
        "concerns, makes it high whatever the others say. Otherwise it is missing, even "
        "when every assessed domain is low, because an unassessed domain could raise it; "
        "the fit then marginalises that study's level as it does any unrated study's (above).\n\n"
        "```python\n"
        'studies["risk_of_bias"] = br.overall_risk_of_bias(studies, ["d1", "d2", "d3", "d4", '
        '"d5"])\n'
        "```"
    )


def build(draws: int, chains: int) -> str:
    fits = fit_all(draws, chains)
    parts = []
    add = parts.append
    totals_text = ", ".join(f"{level} {count}" for level, count in TOTALS.items())
    add(
        "# Risk of bias and study design\n\n"
        "*Generated by `docs/make_bias.py`; every number is computed, and every sentence that "
        "reads one is computed from it.*"
    )
    add("## What each option assumes")
    add(
        '- **A known covariate** (`bias="design"`, or `risk_of_bias` with every study rated): '
        "a logit shift per non-reference level, Normal(0, 1) a priori; the pooled rates are "
        "reported at the reference level (`summary(adjusted=True)`) and averaged over each "
        "modality's own studies (`summary(adjusted=False)`); `summary()` reports the first "
        "unless the effects are weakly identified (below).\n"
        "- **Ratings missing, level probabilities unknown** (`bias_prior_counts`, default 1 per "
        "level): each unrated study's level is drawn from pi, pi ~ Dirichlet(counts), and its "
        "likelihood is the mixture over the levels. Prior counts are pseudo-studies: use them "
        "for proportions that come from elsewhere.\n"
        "- **Ratings missing, totals known** (`bias_totals`): the review says how many of "
        "*these* studies are at each level. The missing ratings are marginalised over every "
        "assignment of levels consistent with the totals and with the rated studies, each "
        "equally likely, by an exact recursion (`bayesreview.known_totals`); `Fit.bias_levels()` "
        "gives each study's posterior level probabilities, which add up to the totals.\n"
        "- **Weak identification.** Where no study's level is observed, or every bias effect's "
        f"posterior SD is above {WEAK_SD_RATIO:g} of its prior SD, `fit` warns "
        "(`WeakIdentificationWarning`): the reference-level rates then rest on the prior's bias "
        "effects, so the headline rates (`summary()`, the report, the forest plot) are those "
        "averaged over each modality's own studies, and the reference-level ones stay "
        "available, labelled as prior-driven (`summary(adjusted=True)`).\n"
        '- **Publication selection** (`model="selection"`, or `spec.with_selection()` for '
        "any one-outcome model): a study that reports no responders is published with "
        "probability w relative to one that reports some, one w for case reports (one "
        "patient counted in the denominator) and one for case series (more than one), each "
        "Beta(1, 1) a priori. Each published study's likelihood is f(y) w(y) / (w f(0) + 1 - "
        "f(0)), exact for any study size, and the pooled rates are those of all studies, "
        "published or not. The weights are identified only through an assumption: that case "
        "reports and case series of a modality share one distribution of true rates, so that "
        "the series tell how often a single patient would not respond, and the case reports "
        "how many of those are missing."
    )
    add(domains_section())
    add(selection_section(fits))
    add("## What the bundled data can say")
    add(
        f"The review's text gives the risk-of-bias totals ({totals_text} of "
        f"{sum(TOTALS.values())} studies) but no study's rating; every study's design is "
        "known. Any response, pooled by group (4 chains; posterior median % and 95% CrI):"
    )
    add(rates_table(fits))
    add("How far the data moved each bias effect from its prior:")
    add(identification_table(fits))
    plain = fits["none"][0].summary()
    groups = [label(g) for g in plain["modality"]]
    totals_fit = fits["totals"][0]
    pseudo_fit = fits["pseudo"][0]
    sentences = [
        _prose.change_sentence(
            "Averaged over each group's own studies, the exact-totals analysis",
            plain["mean_rate"],
            totals_fit.summary(adjusted=False)["mean_rate"],
            groups,
        ),
        _prose.change_sentence(
            f"At the reference level ({totals_fit.adjusted_to()}), the exact-totals analysis",
            plain["mean_rate"],
            totals_fit.summary(adjusted=True)["mean_rate"],
            groups,
        ),
        _prose.change_sentence(
            "At the reference level, the analysis that reads the totals as prior counts",
            plain["mean_rate"],
            pseudo_fit.summary(adjusted=True)["mean_rate"],
            groups,
        ),
    ]
    add(". ".join(s[:1].upper() + s[1:] for s in sentences) + ".")
    weak = [m for name in ("totals", "uniform", "pseudo") for m in fits[name][1]]
    weak = [m for m in weak if m.startswith("WeakIdentificationWarning")]
    add(
        f"{len(weak)} of the 3 analyses with missing ratings warn of weak identification; the "
        "exact-totals fit says: *"
        + next((m for m in fits["totals"][1] if m.startswith("WeakIdentification")), "nothing")
        + "*"
    )
    levels = totals_fit.bias_levels()
    per_level = levels.groupby("level", sort=False)["probability"].sum()
    high = levels[levels["level"] == "high"].sort_values("probability", ascending=False)
    add(
        "With the exact totals, the studies' posterior level probabilities add up to "
        + ", ".join(f"{lv} {p:.6f}" for lv, p in per_level.items())
        + ". The studies most likely at high risk of bias, and the least likely:"
    )
    shown = pd.concat([high.head(3), high.tail(3)])
    add(
        md_table(
            pd.DataFrame(
                {
                    "study": shown["study"],
                    "group": [label(g) for g in shown["modality"]],
                    "P(high)": [f"{p:.2f}" for p in shown["probability"]],
                }
            )
        )
    )
    spread = high["probability"].max() - high["probability"].min()
    prior_high = TOTALS["high"] / sum(TOTALS.values())
    add(
        f"A priori each study is at high risk with probability {prior_high:.3f} "
        f"({TOTALS['high']} of {sum(TOTALS.values())}); the data spread the posterior "
        f"probabilities over {spread:.2f}, from {high['probability'].min():.2f} to "
        f"{high['probability'].max():.2f}. Per-study ratings from the review's supplement "
        "would replace these guesses with data."
    )
    return "\n\n".join(parts) + "\n"


def main() -> None:
    write_page(__doc__.splitlines()[0], build, DOCS / "bias.md")


if __name__ == "__main__":
    main()
