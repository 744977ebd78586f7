"""Simulation evidence for publication selection and partly missing risk-of-bias ratings.

Two experiments (bayesreview.bias_simulation), each replicate seeded by its number:

* ``selection``: a literature of 40 published studies simulated with publication selection
  by response (SELECTION_SETTINGS: true mean rate 0.6, phi 5, a non-responding case report
  published with relative probability 0.2, a case series with no responders 0.5; the bundled
  review's study sizes, cycled), fitted with the plain beta-binomial and with
  ``model="selection"``: coverage of the true mean rate of all planned studies.
* ``rating_1`` and ``rating_0.5``: 40 studies (the bundled sizes) with risk-of-bias levels in
  the review's proportions 10/19/11 and true logit shifts +0.5 (moderate) and +1.0 (high) of a
  mean rate of 0.6, with all ratings and with half of them given: coverage of the bias effects.

Each replicate is a JSON record in the cache (``$BAYESREVIEW_CACHE``, else
``$XDG_CACHE_HOME/bayesreview``, else ``~/.cache/bayesreview``) under the fingerprint of today's
model code and ``bayesreview/bias_simulation.py`` and the configuration's settings: a rerun
resumes where it stopped, and records of other code are never reused. The script then writes
docs/evidence/bias_simulations.csv (one row per replicate, a ``configuration`` column) with its
sidecar docs/evidence/bias_simulations.json naming the fingerprint and, from that table,
docs/bias_simulations.md.

Usage (from the repository root)::

    python docs/make_bias_simulations.py --n-jobs 2         # the default replicates
    python docs/make_bias_simulations.py --replicates 50 --n-jobs 2
    python docs/make_bias_simulations.py --report-only      # page from the committed table
    python docs/make_bias_simulations.py --quick --replicates 2 --n-jobs 1 --out /tmp/bias-quick

Sizing: with 2 chains x 500 draws a selection replicate (two fits) takes about 0.4 s once its
models are compiled, a rating replicate about 0.2 s (all rated) or 0.45 s (half rated); each
worker process first imports the package and loads or compiles each model (a few seconds from
the compiled-model cache, up to a minute cold). The defaults (BIAS_MIN_REPLICATES: 500 and
400 + 400) need about 8 minutes of worker time, 4 to 6 minutes on 2 cores: inside the
15-minute budget with room for a machine twice as slow.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from bayesreview.bias_simulation import (
    BIAS_CONFIGURATIONS,
    BIAS_MIN_REPLICATES,
    RATING_FRACTIONS,
    RATING_SETTINGS,
    REVIEW_LEVEL_COUNTS,
    SELECTION_MODELS,
    SELECTION_SETTINGS,
    bias_jobs,
    bias_settings,
    bundled_sizes,
    rating_table,
    selection_table,
    selection_weight_table,
)
from bayesreview.evidence import (
    REGENERATE,
    check_evidence,
    processors_sentence,
    read_evidence,
)
from bayesreview.fitting import ESS_MIN, RHAT_MAX, WEAK_SD_RATIO
from bayesreview.report import write_text_atomic
from bayesreview.spec import SELECTION_CLASSES, load_spec

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # docs/_experiments.py, docs/_prose.py
import _prose  # noqa: E402
from _experiments import dask_client, gather_records, run_experiment, write_table  # noqa: E402

EXPERIMENT = "bias_simulations"
#: Fit settings of --quick (a check that the pipeline runs, not evidence).
QUICK = {"draws": 40, "tune": 40}
#: Nominal level of every interval.
LEVEL = 0.95
#: A coverage is read as short of (or above) the nominal level when it is more than this many
#: Monte Carlo SEs below (above) it.
MC_SE_RULE = 2.0
#: Model words of the selection experiment's column prefixes.
MODEL_WORDS = {
    "unadjusted": 'the plain beta-binomial (`model="beta_binomial"`)',
    "selection": 'the selection model (`model="selection"`)',
}


# ---------------------------------------------------------------------------------------------
# Running and aggregating
# ---------------------------------------------------------------------------------------------


def run(replicates: dict[str, int], n_jobs: int, client, overrides: dict) -> None:
    """Run ``replicates[name]`` replicates (seeds 0, 1, ...) of each named configuration."""
    jobs = bias_jobs(**overrides)
    settings = bias_settings(**overrides)
    run_experiment(
        EXPERIMENT,
        {name: (jobs[name], list(range(n)), settings[name]) for name, n in replicates.items()},
        n_jobs,
        client,
    )


def aggregate(evidence: Path, overrides: dict) -> pd.DataFrame:
    """One table of every configuration's replicates made by today's code (``_experiments``)."""
    table = gather_records(EXPERIMENT, evidence, bias_settings(**overrides))
    if table.empty:
        return table
    first = ["configuration", "seed"]
    return table[[*first, *(c for c in table if c not in first)]]


def _part(replicates: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    if replicates.empty or "configuration" not in replicates:
        return pd.DataFrame()
    part = replicates[replicates["configuration"].isin(names)]
    return part.dropna(axis=1, how="all")


# ---------------------------------------------------------------------------------------------
# Sentences computed from the numbers
# ---------------------------------------------------------------------------------------------


def coverage_reading(coverage: float, mc_se: float, replicates: int) -> str:
    """``"94.2% (MC SE 1.0%) of 500 replicates: within 2 MC SE of 95%"``, or short of it, or
    above it, by :data:`MC_SE_RULE`."""
    if not replicates or not math.isfinite(coverage):
        return "no replicates"
    head = f"{coverage:.1%} (MC SE {mc_se:.1%}) of {replicates} replicates"
    rule = f"{MC_SE_RULE:g} MC SE"
    # with coverage 0 or 1 the MC SE is 0: compare with the SE at the nominal level instead
    se = max(mc_se, math.sqrt(LEVEL * (1 - LEVEL) / replicates))
    if coverage < LEVEL - MC_SE_RULE * se:
        return f"{head}: short of {LEVEL:.0%} by more than {rule}"
    if coverage > LEVEL + MC_SE_RULE * se:
        return f"{head}: above {LEVEL:.0%} by more than {rule}"
    return f"{head}: within {rule} of {LEVEL:.0%}"


def ratio_words(ratio: float) -> str:
    """``"1.3 times as wide as"`` or ``"as wide as"`` (within 5%)."""
    if abs(ratio - 1) < 0.05:
        return "as wide as"
    return f"{ratio:.2f} times as wide as"


def informed_words(width_ratio: float) -> str:
    """Whether an interval ``width_ratio`` as wide as the prior's says the data inform the
    parameter: above :data:`bayesreview.fitting.WEAK_SD_RATIO` they barely do."""
    if width_ratio > WEAK_SD_RATIO:
        return f"the data barely inform it (above {WEAK_SD_RATIO:.0%} of the prior's width)"
    return f"the data inform it (at most {WEAK_SD_RATIO:.0%} of the prior's width)"


def prior_width(spec_name: str, key: str) -> float:
    """Width of the central 95% interval of a shipped specification's prior."""
    lower, upper = load_spec(spec_name).prior(key).quantile([(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(upper - lower)


def _convergence_sentence(rows: pd.DataFrame, prefix: str, what: str, settings: dict) -> str:
    """How many fits had a convergence problem, and of which kind."""
    col = (lambda name: f"{prefix}_{name}") if prefix else (lambda name: name)
    r = len(rows)
    problems = int((rows[col("problems")] > 0).sum())
    if problems == 0:
        return f"No {what} fit of {r} had a convergence problem."
    ess = int((rows[col("min_ess")] < ESS_MIN).sum())
    rhat = int((rows[col("max_rhat")] > RHAT_MAX).sum())
    divergent = int((rows[col("divergences")] > 0).sum())
    return (
        f"{problems} of {r} {what} fits had a convergence problem: {ess} an ESS below "
        f"{ESS_MIN}, {rhat} an R-hat above {RHAT_MAX}, {divergent} divergences (of "
        f"{settings['chains'] * settings['draws']} draws in all per fit; the intervals are "
        "counted all the same)."
    )


# ---------------------------------------------------------------------------------------------
# The sections of the page
# ---------------------------------------------------------------------------------------------


def selection_design() -> str:
    s = SELECTION_SETTINGS
    r, phi = s["true_rate"], s["phi"]
    w = s["weights"]
    sizes = bundled_sizes()
    reports = int((sizes == 1).sum())
    zero_before = 1 - r
    zero_after = w["case_report"] * (1 - r) / (w["case_report"] * (1 - r) + r)
    respond_after = 1 - zero_after
    rationale = ""
    if w["case_report"] < w["case_series"]:
        rationale = (
            " The case report's weight is the smaller: a single patient who did not respond is "
            "the result least likely to be written up, a series with no responders has more to "
            "report."
        )
    return (
        f"* **Truth.** Every planned study has a true rate p ~ Beta({r:g} x {phi:g}, "
        f"{1 - r:g} x {phi:g}): population mean rate {r:g}, concentration phi = {phi:g} "
        f"(intra-class correlation {1 / (1 + phi):.3f}; the shipped prior is centred on "
        f"phi = 10), and y ~ Binomial(n, p) responders.\n"
        f"* **Publication.** A study with responders is always published; one with none is "
        f"published with probability {w['case_report']:g} if it is a case report (one patient) "
        f"and {w['case_series']:g} if it is a case series.{rationale}\n"
        f"* **Studies.** The planned studies take the bundled review's {sizes.size} sizes in "
        f"turn (cycled; {reports} of them case reports, the largest {int(sizes.max())} "
        f"patients) until {s['n_published']} are published.\n"
        f"* **What selection does.** Before selection a case report has no responder with "
        f"probability {_prose.pct(zero_before)}; among published case reports "
        f"{_prose.pct(zero_after)} (w (1 - r) / (w (1 - r) + r)), so a published case report "
        f"responds with probability {_prose.pct(respond_after)} against {_prose.pct(r)} for a "
        f"planned one.\n"
        f"* **Fits.** Outcome `events`, one modality, {s['chains']} chains x {s['draws']} draws "
        f"after {s['tune']} tuning steps, seed = replicate: {MODEL_WORDS['unadjusted']}, which "
        f"takes the published studies for all studies, and {MODEL_WORDS['selection']} with "
        "its Beta(1, 1) priors on both weights. Target: the true population mean rate of all "
        f"planned studies, {r:g} (`summary()`'s `mean_rate`)."
    )


def rating_design() -> str:
    s = RATING_SETTINGS
    base, phi = s["base_rate"], s["phi"]
    logit = math.log(base / (1 - base))
    rates = {"low": base} | {
        level: 1 / (1 + math.exp(-(logit + shift))) for level, shift in s["shifts"].items()
    }
    counts = ", ".join(f"{level} {n}" for level, n in REVIEW_LEVEL_COUNTS.items())
    shifts = ", ".join(f"{level} {shift:+g}" for level, shift in s["shifts"].items())
    means = ", ".join(f"{level} {_prose.pct(rate)}" for level, rate in rates.items())
    fractions = " and ".join(f"{fraction:.0%}" for fraction in RATING_FRACTIONS)
    ordered = list(s["shifts"].values())
    direction = ""
    if 0 < ordered[0] < ordered[-1]:
        direction = " (the higher the risk of bias, the higher the reported response)"
    return (
        f"* **Truth.** 40 studies with the bundled review's sizes; risk-of-bias levels in the "
        f"review's totals ({counts}) assigned to the studies at random; true logit shifts of "
        f"the mean rate {shifts}{direction}, so the mean "
        f"rates are {means}; study rates Beta(m phi, (1 - m) phi), phi = {phi:g}, events "
        "binomial.\n"
        f"* **Ratings given.** {fractions} of the studies, chosen at random; the others are "
        "missing and marginalised, their level probabilities ~ Dirichlet(1, 1, 1) (the default "
        "`bias_prior_counts`). Replicate r simulates the same review at every share, so the "
        "shares differ only in the ratings hidden.\n"
        f'* **Fits.** `bias="risk_of_bias"`, the beta-binomial, {s["chains"]} chains x '
        f"{s['draws']} draws after {s['tune']} tuning steps, seed = replicate. Target: each "
        'bias effect `beta` (`fit.idata.posterior["beta"]`), prior Normal(0, 1).'
    )


def selection_results(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "**No replicates yet.**"
    table = selection_table(rows).set_index("model")
    weights = selection_weight_table(rows)
    truth = SELECTION_SETTINGS["true_rate"]
    lines = [
        "| model | coverage of the true mean rate (MC SE) | mean width | median estimate | "
        "mean error of the posterior median | fits with a convergence problem |",
        "|---|---|---|---|---|---|",
    ]
    for prefix in SELECTION_MODELS:
        row = table.loc[prefix]
        lines.append(
            f"| `{prefix}` | {row.coverage:.1%} ({row.mc_se:.1%}) | {row.mean_width:.3f} | "
            f"{row.median_estimate:.3f} | {_prose.points(row.bias, signed=True)} | "
            f"{int(row.with_problems)} of {int(row.replicates)} |"
        )
    sentences = []
    for prefix in SELECTION_MODELS:
        row = table.loc[prefix]
        sentences.append(
            f"The 95% interval of {MODEL_WORDS[prefix]} holds the true mean rate {truth:g} in "
            f"{coverage_reading(row.coverage, row.mc_se, int(row.replicates))}; its posterior "
            "median "
            f"is off by {_prose.points(row.bias, signed=True)} on average."
        )
    ratio = table.loc["selection", "mean_width"] / table.loc["unadjusted", "mean_width"]
    sentences.append(
        f"The selection model's intervals are {ratio_words(ratio)} the plain model's on "
        f"average ({table.loc['selection', 'mean_width']:.3f} against "
        f"{table.loc['unadjusted', 'mean_width']:.3f})"
        + (": the price of not knowing the weights." if ratio > 1.05 else ".")
    )
    wlines = [
        "| selection class | true weight | median of the posterior medians (IQR) | "
        "coverage (MC SE) | mean width | prior's width |",
        "|---|---|---|---|---|---|",
    ]
    for row in weights.itertuples(index=False):
        width = prior_width("selection", SELECTION_CLASSES[row.selection_class])
        wlines.append(
            f"| {row.selection_class} | {row.true:g} | {row.median_of_medians:.2f} "
            f"({row.q25:.2f} to {row.q75:.2f}) | {row.coverage:.1%} ({row.mc_se:.1%}) | "
            f"{row.mean_width:.2f} | {width:.2f} |"
        )
        sentences.append(
            f"The {row.selection_class.replace('_', ' ')} weight (true {row.true:g}): its "
            f"posterior median is {row.median_of_medians:.2f} in the median replicate; its "
            f"interval is {row.mean_width:.2f} wide on average, "
            f"{row.mean_width / width:.0%} of the prior's {width:.2f}: "
            f"{informed_words(row.mean_width / width)}."
        )
    zero = rows["zero_case_reports"].mean()
    series = rows["zero_case_series"].mean()
    sentences.append(
        f"A literature holds {zero:.1f} zero-responder case reports and {series:.1f} "
        f"zero-responder case series on average, after {rows['planned'].mean():.1f} planned "
        "studies."
    )
    for prefix in SELECTION_MODELS:
        sentences.append(_convergence_sentence(rows, prefix, f"`{prefix}`", SELECTION_SETTINGS))
    return "\n".join(lines) + "\n\n" + "\n".join(wlines) + "\n\n" + " ".join(sentences)


def rating_results(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "**No replicates yet.**"
    table = rating_table(rows)
    width = prior_width("beta_binomial", "bias")
    lines = [
        "| ratings given | effect | true | coverage (MC SE) | mean width | median of the "
        "posterior medians | mean error | fits with a convergence problem |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sentences = []
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.fraction_rated:.0%} | `beta` {row.level} | {row.true:+g} | "
            f"{row.coverage:.1%} ({row.mc_se:.1%}) | {row.mean_width:.2f} | "
            f"{row.median_of_medians:+.2f} | {row.bias:+.2f} | {row.with_problems} of "
            f"{row.replicates} |"
        )
        sentences.append(
            f"With {row.fraction_rated:.0%} of the ratings, the interval of the {row.level} "
            f"effect holds its true value {row.true:+g} in "
            f"{coverage_reading(row.coverage, row.mc_se, row.replicates)}; it is "
            f"{row.mean_width:.2f} wide on average, {row.mean_width / width:.0%} of the "
            f"prior's {width:.2f}: {informed_words(row.mean_width / width)}."
        )
    fractions = sorted(table["fraction_rated"].unique(), reverse=True)
    if len(fractions) > 1:
        full, part = fractions[0], fractions[-1]
        for level in table["level"].unique():
            a = table[(table["fraction_rated"] == full) & (table["level"] == level)].iloc[0]
            b = table[(table["fraction_rated"] == part) & (table["level"] == level)].iloc[0]
            sentences.append(
                f"Giving {part:.0%} instead of {full:.0%} of the ratings makes the {level} "
                f"effect's interval {ratio_words(b.mean_width / a.mean_width)} before "
                f"({b.mean_width:.2f} against {a.mean_width:.2f})."
            )
    for fraction in fractions:
        part = rows[rows["fraction_rated"] == fraction]
        sentences.append(_convergence_sentence(part, "", f"{fraction:.0%}-rated", RATING_SETTINGS))
    return "\n".join(lines) + "\n\n" + " ".join(sentences)


def _timing(replicates: pd.DataFrame) -> str:
    parts = []
    for name, rows in replicates.groupby("configuration", sort=False):
        seconds = rows["seconds"].dropna() if "seconds" in rows else pd.Series(dtype=float)
        if len(seconds):
            parts.append(
                f"`{name}`: median {seconds.median():.2f} s per replicate, "
                f"{seconds.sum() / 60:.1f} min of worker time for {len(rows)} replicates"
            )
    return "; ".join(parts) or "not recorded"


def report(evidence: Path, page: Path) -> None:
    problems = check_evidence(EXPERIMENT, evidence, bias_settings(), BIAS_MIN_REPLICATES)
    problems = [p.replace(str(DOCS.parent) + "/", "") for p in problems]
    replicates = read_evidence(evidence)[0] if evidence.is_file() else pd.DataFrame()
    if replicates.empty:
        status = "**No replicates yet.**"
        timing = "not run"
    else:
        fingerprint = replicates["fingerprint"].iloc[0]
        status = f"The table was made by code with fingerprint `{fingerprint}`."
        if not problems:
            status = f"The table was made by today's code (fingerprint `{fingerprint}`)."
        status += " " + processors_sentence(replicates)
        counts = replicates["configuration"].value_counts()
        status += " Replicates: " + ", ".join(
            f"`{name}` {int(counts.get(name, 0))}" for name in BIAS_CONFIGURATIONS
        )
        status += "."
        timing = _timing(replicates)
    if problems:
        status += "\n\n**This evidence is not complete or not current:**\n\n" + "\n".join(
            f"* {p}" for p in problems
        )
    rating_names = [name for name in BIAS_CONFIGURATIONS if name.startswith("rating_")]
    values = {
        "{status}": status,
        "{selection_design}": selection_design(),
        "{rating_design}": rating_design(),
        "{selection_results}": selection_results(_part(replicates, ["selection"])),
        "{rating_results}": rating_results(_part(replicates, rating_names)),
        "{minimum}": ", ".join(f"{n} for `{name}`" for name, n in BIAS_MIN_REPLICATES.items()),
        "{command}": REGENERATE[EXPERIMENT],
        "{timing}": timing,
        "{rule}": f"{MC_SE_RULE:g}",
        "{weak}": f"{WEAK_SD_RATIO:.0%}",
        "{mc_se}": ", ".join(
            f"{math.sqrt(LEVEL * (1 - LEVEL) / r):.1%} with R = {r}"
            for r in sorted(set(BIAS_MIN_REPLICATES.values()), reverse=True)
        ),
    }
    text = REPORT_TEXT
    for key, value in values.items():
        text = text.replace(key, value)
    write_text_atomic(page, text)
    print(f"wrote {page}")


REPORT_TEXT = """\
# Simulations of selection and missing ratings

*Generated by `python docs/make_bias_simulations.py`; do not edit by hand. Every number is
computed from the evidence table, and every sentence that reads one is computed from it.*

Two questions about the ways bayesreview handles bias (see [Risk of bias](bias.md)), answered
by simulation at the bundled review's design: does the publication-selection model
(`model="selection"`) recover the mean rate of all studies when studies without responders are
less often published, where the plain model does not? And how well are risk-of-bias effects
recovered when only some studies are rated?

## Publication selection

{selection_design}

## Missing ratings

{rating_design}

## Results

{status}

How a coverage is read: the Monte Carlo standard error of a coverage c from R replicates is
sqrt(c (1 - c) / R) (at c = 0.95: {mc_se}); a coverage more than {rule} MC SE below
(above) 95% is read as short of (above) it. An interval's width is compared with the width
of the 95% interval of its prior: above {weak} of it, the data barely inform the parameter
(the threshold of `WeakIdentificationWarning`). Coverage at one fixed truth is not guaranteed
for a posterior interval (it is exact averaged over the prior: the
[validation page](validation.md)); these are checks at a plausible truth.

### Publication selection

{selection_results}

### Missing ratings

{rating_results}

## The evidence and regenerating it

Every replicate is recorded with the fingerprint of the code that produced it: a hash of the
modules that define the likelihoods and the derived quantities, of the shipped model
specifications and of `bayesreview/bias_simulation.py` (`bayesreview.evidence.code_fingerprint`;
comments and docstrings do not count, any code change does); the bundled study sizes are part
of each configuration's settings. The raw records live in a cache outside the repository
(`$BAYESREVIEW_CACHE`, else `$XDG_CACHE_HOME/bayesreview`, else `~/.cache/bayesreview`), one
JSON file per replicate under `replicates/bias_simulations/<fingerprint>-<settings hash>/`; a
rerun resumes where it stopped and never reuses a record of other code or settings. The
repository keeps one table, `docs/evidence/bias_simulations.csv` (one row per replicate, a
`configuration` column), and its sidecar `docs/evidence/bias_simulations.json` (the
fingerprint and the settings), from which this page is written. Default replicates:
{minimum}. To regenerate (from the repository root):

    {command}

Time: {timing}.

Not covered: selection models other than the truth's (here the fitted selection mechanism is
the true one), more than one modality, and the known-totals form of missing ratings
(`bias_totals`), which the [validation page](validation.md) checks by SBC.
"""


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replicates",
        type=int,
        help="per configuration (default "
        + ", ".join(f"{name} {n}" for name, n in BIAS_MIN_REPLICATES.items())
        + ")",
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--scheduler", help="address of a dask scheduler to run on instead")
    parser.add_argument(
        "--configurations",
        default=",".join(BIAS_CONFIGURATIONS),
        help="comma-separated configurations to run (all)",
    )
    parser.add_argument("--report-only", action="store_true", help="do not run replicates")
    parser.add_argument(
        "--quick", action="store_true", help=f"tiny fits ({QUICK}) to check the pipeline"
    )
    parser.add_argument("--out", type=Path, default=DOCS, help="folder of the page and evidence/")
    args = parser.parse_args(argv)
    names = [name for name in args.configurations.split(",") if name]
    unknown = sorted(set(names) - set(BIAS_CONFIGURATIONS))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(BIAS_CONFIGURATIONS)}")
    if args.replicates is not None and args.replicates < 1:
        parser.error("--replicates must be at least 1")
    out = args.out.resolve()
    if args.quick and out == DOCS:
        parser.error("--quick makes no evidence: give --out (a scratch folder)")
    overrides = QUICK if args.quick else {}
    replicates = {
        name: args.replicates if args.replicates is not None else BIAS_MIN_REPLICATES[name]
        for name in names
    }
    evidence = out / "evidence" / f"{EXPERIMENT}.csv"
    if not args.report_only:
        run(replicates, args.n_jobs, dask_client(args.scheduler), overrides)
        write_table(
            EXPERIMENT, evidence, aggregate(evidence, overrides), bias_settings(**overrides)
        )
    out.mkdir(parents=True, exist_ok=True)
    report(evidence, out / "bias_simulations.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
