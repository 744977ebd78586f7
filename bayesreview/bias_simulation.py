"""Simulation evidence for the two ways bayesreview handles bias: publication selection and
partly missing risk-of-bias ratings.

**Publication selection.** :func:`simulate_published_literature` simulates how a literature of
small studies comes about when a study with no responders is less likely to be published: each
planned study (its size taken in turn from a list of sizes, e.g. the bundled review's) has a
true rate p ~ Beta(r phi, (1 - r) phi) and y ~ Binomial(n, p) responders; it is published with
probability 1 when y > 0 and with probability w_d when y = 0, d its selection class
(``case_report``: n = 1, ``case_series``: n > 1, :data:`bayesreview.spec.SELECTION_CLASSES`);
planned studies are drawn until a fixed number is published. :func:`selection_replicate` fits
one such literature with the plain beta-binomial (which takes the published studies for all
studies) and with the selection model (``model="selection"``), and records whether each 95%
interval of the pooled mean rate holds the true population mean r of *all* planned studies,
and the posterior of each selection weight.

**Missing ratings.** :func:`simulate_rated_review` simulates a review whose studies have a
risk-of-bias level (the review's totals, low 10, moderate 19, high 11 of 40, assigned to the
studies at random) and a true logit shift of the mean rate per non-reference level, with a
beta-binomial truth. :func:`rating_recovery_replicate` hides the ratings of a share of the
studies, fits ``bias="risk_of_bias"`` (the missing levels marginalised under a Dirichlet prior
of the level probabilities), and records whether the 95% interval of each bias effect ``beta``
holds its true value.

:func:`selection_table` and :func:`rating_table` aggregate replicates into coverage with its
Monte Carlo standard error. :data:`SELECTION_SETTINGS` and :data:`RATING_SETTINGS` are the
designs the documentation reports (``docs/make_bias_simulations.py``), :func:`bias_jobs` their
replicate jobs for :func:`bayesreview.validation.run_replicates`.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bayesreview.data import RISK_OF_BIAS_LEVELS
from bayesreview.errors import BayesReviewError
from bayesreview.spec import SELECTION_CLASSES

__all__ = [
    "BIAS_CONFIGURATIONS",
    "BIAS_MIN_REPLICATES",
    "RATING_FRACTIONS",
    "RATING_SETTINGS",
    "REVIEW_LEVEL_COUNTS",
    "SELECTION_MODELS",
    "SELECTION_SETTINGS",
    "bias_jobs",
    "bias_settings",
    "bundled_sizes",
    "rating_recovery_replicate",
    "rating_table",
    "selection_replicate",
    "selection_table",
    "selection_weight_table",
    "simulate_published_literature",
    "simulate_rated_review",
]

#: Most planned studies drawn per published study before :func:`simulate_published_literature`
#: gives up (a literature whose studies are almost never published).
MAX_PLANNED_PER_PUBLISHED = 1000

#: The review's risk-of-bias totals (low, moderate, high) of its 40 studies.
REVIEW_LEVEL_COUNTS: dict[str, int] = {"low": 10, "moderate": 19, "high": 11}

#: The fitted models of a selection replicate: column prefix -> bayesreview model.
SELECTION_MODELS: dict[str, str] = {"unadjusted": "beta_binomial", "selection": "selection"}


# ---------------------------------------------------------------------------------------------
# Checks of the arguments
# ---------------------------------------------------------------------------------------------


def _check_rate(name: str, value: float) -> float:
    if not isinstance(value, int | float | np.floating) or not 0 < float(value) < 1:
        raise BayesReviewError(f"{name}={value!r}: must be strictly between 0 and 1")
    return float(value)


def _check_positive(name: str, value: float) -> float:
    if not isinstance(value, int | float | np.floating) or not float(value) > 0:
        raise BayesReviewError(f"{name}={value!r}: must be a number > 0")
    if not math.isfinite(float(value)):
        raise BayesReviewError(f"{name}={value!r}: must be finite")
    return float(value)


def _check_count(name: str, value: int, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise BayesReviewError(f"{name}={value!r}: must be a whole number >= {least}")
    return int(value)


def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The selection weights, one per class of :data:`SELECTION_CLASSES`, each in [0, 1]."""
    if not isinstance(weights, Mapping) or set(weights) != set(SELECTION_CLASSES):
        raise BayesReviewError(
            f"weights={weights!r}: need one weight for each of {', '.join(SELECTION_CLASSES)}"
        )
    out = {}
    for key in SELECTION_CLASSES:
        value = weights[key]
        if not isinstance(value, int | float | np.floating) or not 0 <= float(value) <= 1:
            raise BayesReviewError(f"weights[{key!r}]={value!r}: must be between 0 and 1")
        out[key] = float(value)
    return out


def _check_sizes(sizes: Sequence[int] | np.ndarray | pd.Series) -> np.ndarray:
    values = np.asarray(sizes)
    if values.ndim != 1 or values.size == 0:
        raise BayesReviewError("sizes: need a non-empty list of study sizes")
    try:
        numbers = values.astype(float)
    except (TypeError, ValueError):
        raise BayesReviewError(f"sizes: must be whole numbers >= 1, got {sizes!r}") from None
    if not np.all(np.isfinite(numbers)) or np.any(numbers != np.round(numbers)):
        raise BayesReviewError("sizes: must be whole numbers >= 1")
    if np.any(numbers < 1):
        raise BayesReviewError(f"sizes: must be whole numbers >= 1, got {int(numbers.min())}")
    return numbers.astype(np.int64)


def bundled_sizes() -> np.ndarray:
    """The study sizes (patients per study) of the bundled calcinosis cutis review, in its
    order: 40 studies, 27 of them case reports of one patient."""
    from bayesreview.data import load_dataset

    return load_dataset("calcinosis_cutis")["n"].to_numpy(dtype=np.int64)


def _sizes_or_bundled(sizes: Sequence[int] | np.ndarray | None) -> np.ndarray:
    return bundled_sizes() if sizes is None else _check_sizes(sizes)


# ---------------------------------------------------------------------------------------------
# Publication selection
# ---------------------------------------------------------------------------------------------


def simulate_published_literature(
    rng: np.random.Generator,
    true_rate: float,
    phi: float,
    weights: Mapping[str, float],
    sizes: Sequence[int] | np.ndarray | pd.Series,
    n_published: int = 40,
    modality: str = "all",
) -> pd.DataFrame:
    """Simulate the published studies of a literature with publication selection by response.

    Planned study i has ``sizes[i % len(sizes)]`` patients (the sizes are taken in turn, from
    the first, and cycled), a true rate p_i ~ Beta(true_rate phi, (1 - true_rate) phi) and
    y_i ~ Binomial(n_i, p_i) responders. It is published with probability 1 when y_i > 0 and
    with probability ``weights[d]`` when y_i = 0, d = ``"case_report"`` when n_i = 1 and
    ``"case_series"`` otherwise. Planned studies are drawn one at a time until ``n_published``
    are published.

    Parameters
    ----------
    rng
        The random generator; per planned study it draws the rate, the responders and the
        publication decision, in that order.
    true_rate
        Population mean rate of all planned studies, published or not (strictly between 0 and
        1).
    phi
        Beta concentration of the study rates (> 0; the intra-class correlation is
        1 / (1 + phi)).
    weights
        Probability that a study with no responders is published, relative to one with
        responders: ``{"case_report": w, "case_series": w'}``, each in [0, 1].
    sizes
        Patients of the planned studies, in the order they are planned (e.g.
        ``bayesreview.load_dataset()["n"]``).
    n_published
        Published studies to reach; default 40.
    modality
        The ``modality`` of every study; default ``"all"``.

    Returns
    -------
    pandas.DataFrame
        The published studies, in the order they were planned: ``study`` (``"study <i>"``, i
        the planned study's number from 1), ``modality``, ``n``, ``events`` and ``planned``
        (the planned study's index from 0: its size is ``sizes[planned % len(sizes)]``). A
        study table for :func:`bayesreview.fit`; ``attrs["planned"]`` holds the number of
        planned studies drawn.

    Raises
    ------
    BayesReviewError
        For invalid arguments, or when fewer than ``n_published`` of
        :data:`MAX_PLANNED_PER_PUBLISHED` x ``n_published`` planned studies are published.
    """
    true_rate = _check_rate("true_rate", true_rate)
    phi = _check_positive("phi", phi)
    w = _check_weights(weights)
    sizes = _check_sizes(sizes)
    n_published = _check_count("n_published", n_published)
    a, b = true_rate * phi, (1 - true_rate) * phi
    limit = MAX_PLANNED_PER_PUBLISHED * n_published
    planned, published = 0, []
    while len(published) < n_published:
        if planned >= limit:
            raise BayesReviewError(
                f"simulate_published_literature: only {len(published)} of {planned} planned "
                f"studies were published (true_rate {true_rate:g}, weights {w}); need "
                f"{n_published}"
            )
        n = int(sizes[planned % sizes.size])
        p = rng.beta(a, b)
        y = int(rng.binomial(n, p))
        keep = rng.random() < (1.0 if y > 0 else w["case_report" if n == 1 else "case_series"])
        if keep:
            published.append((planned, n, y))
        planned += 1
    index, n, y = (np.array(v, dtype=np.int64) for v in zip(*published, strict=True))
    table = pd.DataFrame(
        {
            "study": [f"study {i + 1}" for i in index],
            "modality": modality,
            "n": n,
            "events": y,
            "planned": index,
        }
    )
    table.attrs["planned"] = planned
    return table


def _fit_quietly(table: pd.DataFrame, **kwargs: Any):
    """:func:`bayesreview.fit` with the package's warnings suppressed (the replicate records
    the convergence problems instead)."""
    from bayesreview.fitting import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(table, progressbar=False, **kwargs)


def _convergence(fitted) -> dict[str, Any]:
    """The fit's divergences, number of convergence problems, largest R-hat, smallest ESS."""
    table = fitted.diagnostics()
    return {
        "divergences": int(fitted.divergences),
        "problems": len(fitted.convergence_problems()),
        "max_rhat": float(table["r_hat"].max()),
        "min_ess": float(min(table["ess_bulk"].min(), table["ess_tail"].min())),
    }


def _interval(draws: np.ndarray, truth: float, level: float) -> dict[str, Any]:
    """Posterior median, equal-tailed interval, whether it holds ``truth``, and its width."""
    tail = (1 - level) / 2
    lower, median, upper = (float(v) for v in np.quantile(draws, [tail, 0.5, 1 - tail]))
    return {
        "median": median,
        "lower": lower,
        "upper": upper,
        "covered": bool(lower <= truth <= upper),
        "width": upper - lower,
    }


def selection_replicate(
    seed: int,
    true_rate: float = 0.6,
    phi: float = 5.0,
    weights: Mapping[str, float] | None = None,
    n_published: int = 40,
    sizes: Sequence[int] | np.ndarray | None = None,
    level: float = 0.95,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
) -> dict[str, Any]:
    """One replicate of publication selection: simulate a literature, fit it twice.

    The literature is :func:`simulate_published_literature` with
    ``numpy.random.default_rng([seed, 2])``; it is fitted (any response = the events, one
    modality) with ``model="beta_binomial"`` (unadjusted: the published studies taken for all
    studies) and ``model="selection"``, each with ``seed=seed``, the package's warnings
    suppressed and its convergence problems recorded.

    Parameters
    ----------
    seed
        Seeds the simulation and both fits.
    true_rate, phi
        The population mean rate of all planned studies and the beta concentration.
    weights
        True relative publication probabilities of a study with no responders; default
        ``{"case_report": 0.2, "case_series": 0.5}`` (:data:`SELECTION_SETTINGS`).
    n_published
        Published studies per literature; default 40.
    sizes
        Sizes of the planned studies, cycled; default the bundled review's
        (:func:`bundled_sizes`).
    level
        Interval level; default 0.95.
    draws, tune, chains
        Sampler settings of both fits; defaults 500, 500, 2.

    Returns
    -------
    dict
        ``seed``, ``true_rate``, ``phi``, ``true_w_case_report``, ``true_w_case_series``,
        ``published``, ``planned`` (planned studies drawn), ``case_reports`` (published
        studies of one patient), ``zero_case_reports`` and ``zero_case_series`` (published
        studies with no responders); for each model prefix of :data:`SELECTION_MODELS`
        (``unadjusted``, ``selection``): ``<prefix>_median``, ``_lower``, ``_upper`` of the
        pooled ``mean_rate``, ``<prefix>_covered`` (whether the interval holds ``true_rate``),
        ``<prefix>_width``, ``<prefix>_divergences``, ``<prefix>_problems`` (number of
        convergence problems, :meth:`bayesreview.Fit.convergence_problems`: an R-hat above
        1.01, an ESS below 400 or divergences), ``<prefix>_max_rhat`` and ``<prefix>_min_ess``
        (smallest bulk or tail ESS); for each selection class d, ``w_<d>_median``, ``w_<d>_lower``,
        ``w_<d>_upper`` and ``w_<d>_covered`` of the selection model's weight.
    """
    seed = _check_count("seed", seed, least=0)
    level = _check_rate("level", level)
    weights = _check_weights(SELECTION_SETTINGS["weights"] if weights is None else weights)
    sizes = _sizes_or_bundled(sizes)
    rng = np.random.default_rng([seed, 2])
    table = simulate_published_literature(rng, true_rate, phi, weights, sizes, n_published)
    zero = table["events"] == 0
    single = table["n"] == 1
    row: dict[str, Any] = {
        "seed": seed,
        "true_rate": float(true_rate),
        "phi": float(phi),
        **{f"true_w_{d}": weights[d] for d in SELECTION_CLASSES},
        "published": len(table),
        "planned": int(table.attrs["planned"]),
        "case_reports": int(single.sum()),
        "zero_case_reports": int((zero & single).sum()),
        "zero_case_series": int((zero & ~single).sum()),
    }
    settings = {"draws": draws, "tune": tune, "chains": chains, "seed": seed}
    for prefix, model in SELECTION_MODELS.items():
        fitted = _fit_quietly(table, outcome="events", model=model, **settings)
        rate = fitted.draws("rate", "events").values.reshape(-1)
        for key, value in _interval(rate, float(true_rate), level).items():
            row[f"{prefix}_{key}"] = value
        for key, value in _convergence(fitted).items():
            row[f"{prefix}_{key}"] = value
        if model == "selection":
            weight = fitted.draws("selection_weight")
            for d in SELECTION_CLASSES:
                values = weight.sel(selection_class=d).values.reshape(-1)
                summary = _interval(values, weights[d], level)
                for key in ("median", "lower", "upper", "covered"):
                    row[f"w_{d}_{key}"] = summary[key]
    return row


# ---------------------------------------------------------------------------------------------
# Missing risk-of-bias ratings
# ---------------------------------------------------------------------------------------------


def _level_counts(k: int, counts: Mapping[str, int]) -> np.ndarray:
    """Studies per level for ``k`` studies: ``counts`` when they add up to k, else the same
    proportions rounded by largest remainders."""
    if set(counts) != set(RISK_OF_BIAS_LEVELS) or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in counts.values()
    ):
        raise BayesReviewError(
            f"level_counts={dict(counts)!r}: need a whole number >= 0 for each of "
            f"{', '.join(RISK_OF_BIAS_LEVELS)}"
        )
    given = np.array([counts[level] for level in RISK_OF_BIAS_LEVELS], dtype=float)
    if given.sum() == 0:
        raise BayesReviewError("level_counts: at least one study needs a level")
    if given.sum() == k:
        return given.astype(np.int64)
    share = k * given / given.sum()
    out = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - out), kind="stable")
    out[order[: k - int(out.sum())]] += 1
    return out


def simulate_rated_review(
    rng: np.random.Generator,
    base_rate: float,
    phi: float,
    shifts: Mapping[str, float],
    sizes: Sequence[int] | np.ndarray | pd.Series,
    level_counts: Mapping[str, int] | None = None,
    modality: str = "all",
) -> pd.DataFrame:
    """Simulate a review whose studies have a risk-of-bias level that shifts their mean rate.

    One study per size. The levels (:data:`bayesreview.data.RISK_OF_BIAS_LEVELS`) are assigned
    at random: ``level_counts`` studies of each level (the review's 10, 19 and 11 of 40 by
    default; for another number of studies the same proportions, rounded), in a random order.
    A study at level l has a true rate p ~ Beta(m_l phi, (1 - m_l) phi), m_l =
    invlogit(logit(base_rate) + shift_l), and y ~ Binomial(n, p) events.

    Parameters
    ----------
    rng
        The random generator (the levels' order, then each study's rate and events).
    base_rate
        Mean rate at the reference level ``low`` (strictly between 0 and 1).
    phi
        Beta concentration of the study rates (> 0).
    shifts
        True logit shift of the mean rate of ``moderate`` and ``high`` (the model's ``beta``).
    sizes
        Patients per study.
    level_counts
        Studies per level; default :data:`REVIEW_LEVEL_COUNTS`.
    modality
        The ``modality`` of every study; default ``"all"``.

    Returns
    -------
    pandas.DataFrame
        ``study``, ``modality``, ``n``, ``events``, ``risk_of_bias`` (every study rated) and
        ``true_rate`` (the study's true rate p).
    """
    base_rate = _check_rate("base_rate", base_rate)
    phi = _check_positive("phi", phi)
    shift = _check_shifts(shifts)
    sizes = _check_sizes(sizes)
    counts = _level_counts(
        sizes.size, REVIEW_LEVEL_COUNTS if level_counts is None else level_counts
    )
    levels = rng.permutation(np.repeat(np.arange(len(RISK_OF_BIAS_LEVELS)), counts))
    logit_mean = special.logit(base_rate) + np.array([0.0, *shift.values()])[levels]
    mean = special.expit(logit_mean)
    p = rng.beta(mean * phi, (1 - mean) * phi)
    events = rng.binomial(sizes, p)
    return pd.DataFrame(
        {
            "study": [f"study {i + 1}" for i in range(sizes.size)],
            "modality": modality,
            "n": sizes,
            "events": events,
            "risk_of_bias": np.asarray(RISK_OF_BIAS_LEVELS, dtype=object)[levels],
            "true_rate": p,
        }
    )


def _check_shifts(shifts: Mapping[str, float]) -> dict[str, float]:
    """The true shifts of the non-reference levels, in the order of the levels."""
    others = RISK_OF_BIAS_LEVELS[1:]
    if not isinstance(shifts, Mapping) or set(shifts) != set(others):
        raise BayesReviewError(f"shifts={shifts!r}: need one shift for each of {', '.join(others)}")
    out = {}
    for level in others:
        value = shifts[level]
        if not isinstance(value, int | float | np.floating) or not math.isfinite(float(value)):
            raise BayesReviewError(f"shifts[{level!r}]={value!r}: must be a finite number")
        out[level] = float(value)
    return out


def _hide_ratings(
    table: pd.DataFrame, fraction_rated: float, rng: np.random.Generator
) -> pd.DataFrame:
    """``table`` with the ratings of all but ``round(fraction_rated * k)`` studies (chosen at
    random) removed."""
    k = len(table)
    rated = round(float(fraction_rated) * k)
    hidden = rng.permutation(k)[rated:]
    out = table.copy()
    out["risk_of_bias"] = out["risk_of_bias"].astype(object)
    out.loc[out.index[hidden], "risk_of_bias"] = None
    return out


def rating_recovery_replicate(
    seed: int,
    fraction_rated: float,
    base_rate: float = 0.6,
    phi: float = 5.0,
    shifts: Mapping[str, float] | None = None,
    sizes: Sequence[int] | np.ndarray | None = None,
    level_counts: Mapping[str, int] | None = None,
    level: float = 0.95,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
) -> dict[str, Any]:
    """One replicate of bias-effect recovery with a share of the ratings missing.

    Simulates :func:`simulate_rated_review` with ``numpy.random.default_rng([seed, 3])``, hides
    the ratings of all but ``round(fraction_rated * k)`` studies chosen at random by
    ``default_rng([seed, 4])`` (so replicates of one seed simulate the same review at every
    ``fraction_rated``), and fits ``bias="risk_of_bias"`` with the beta-binomial (the missing
    levels marginalised, their probabilities ~ Dirichlet(1, 1, 1)), ``seed=seed``, the
    package's warnings suppressed.

    Parameters
    ----------
    seed
        Seeds the simulation, the hiding and the fit.
    fraction_rated
        Share of the studies whose rating the fit sees, in [0, 1] (1: all rated).
    base_rate, phi
        Mean rate at the reference level ``low`` and the beta concentration.
    shifts
        True logit shifts of ``moderate`` and ``high``; default ``{"moderate": 0.5,
        "high": 1.0}`` (:data:`RATING_SETTINGS`).
    sizes
        Patients per study; default the bundled review's (:func:`bundled_sizes`).
    level_counts
        Studies per level; default :data:`REVIEW_LEVEL_COUNTS`.
    level
        Interval level; default 0.95.
    draws, tune, chains
        Sampler settings; defaults 500, 500, 2.

    Returns
    -------
    dict
        ``seed``, ``fraction_rated``, ``rated`` (studies rated in the fit), ``base_rate``,
        ``phi``, for each non-reference level l ``true_beta_<l>``, ``beta_<l>_median``,
        ``_lower``, ``_upper``, ``beta_<l>_covered`` (whether the 95% interval holds the true
        shift), ``beta_<l>_width``, and ``rated_<l>`` (rated studies at that level); the fit's
        ``divergences``, ``problems`` (as :func:`selection_replicate`'s), ``max_rhat`` and
        ``min_ess``.
    """
    seed = _check_count("seed", seed, least=0)
    if not isinstance(fraction_rated, int | float | np.floating) or not (
        0 <= float(fraction_rated) <= 1
    ):
        raise BayesReviewError(f"fraction_rated={fraction_rated!r}: must be between 0 and 1")
    level = _check_rate("level", level)
    shifts = _check_shifts(RATING_SETTINGS["shifts"] if shifts is None else shifts)
    sizes = _sizes_or_bundled(sizes)
    truth = simulate_rated_review(
        np.random.default_rng([seed, 3]), base_rate, phi, shifts, sizes, level_counts
    )
    table = _hide_ratings(
        truth.drop(columns="true_rate"), fraction_rated, np.random.default_rng([seed, 4])
    )
    rated = table["risk_of_bias"].notna()
    row: dict[str, Any] = {
        "seed": seed,
        "fraction_rated": float(fraction_rated),
        "rated": int(rated.sum()),
        "base_rate": float(base_rate),
        "phi": float(phi),
    }
    fitted = _fit_quietly(
        table,
        outcome="events",
        model="beta_binomial",
        bias="risk_of_bias",
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
    )
    beta = fitted.draws("beta")
    for name, shift in shifts.items():
        row[f"true_beta_{name}"] = shift
        row[f"rated_{name}"] = int((table["risk_of_bias"] == name).sum())
        values = beta.sel(bias_level=name).values.reshape(-1)
        for key, value in _interval(values, shift, level).items():
            row[f"beta_{name}_{key}"] = value
    row.update(_convergence(fitted))
    return row


# ---------------------------------------------------------------------------------------------
# The experiments the documentation reports
# ---------------------------------------------------------------------------------------------

#: The publication-selection design: a mean rate of 0.6 (the review's modalities range from
#: about 0.5 to 0.9), phi = 5 (ICC 1/6: more heterogeneity than the prior's centre phi = 10),
#: a non-responding case report published a fifth as often as a responding one and a case
#: series with no responders half as often; 40 published studies, the bundled review's sizes.
SELECTION_SETTINGS: dict[str, Any] = {
    "true_rate": 0.6,
    "phi": 5.0,
    "weights": {"case_report": 0.2, "case_series": 0.5},
    "n_published": 40,
    "level": 0.95,
    "draws": 500,
    "tune": 500,
    "chains": 2,
}

#: The missing-ratings design: a mean rate of 0.6 at low risk of bias, higher risk of bias
#: reporting higher response (logit shifts +0.5 moderate, +1.0 high: 0.71 and 0.80), phi = 5,
#: the review's 40 sizes and its totals 10/19/11.
RATING_SETTINGS: dict[str, Any] = {
    "base_rate": 0.6,
    "phi": 5.0,
    "shifts": {"moderate": 0.5, "high": 1.0},
    "level": 0.95,
    "draws": 500,
    "tune": 500,
    "chains": 2,
}

#: Shares of the studies rated in the missing-ratings experiment.
RATING_FRACTIONS: tuple[float, ...] = (1.0, 0.5)

#: The configurations of the evidence table: name -> (replicate function, its arguments).
BIAS_CONFIGURATIONS: dict[str, tuple[Any, dict[str, Any]]] = {
    "selection": (selection_replicate, SELECTION_SETTINGS),
    **{
        f"rating_{fraction:g}": (
            rating_recovery_replicate,
            {"fraction_rated": fraction, **RATING_SETTINGS},
        )
        for fraction in RATING_FRACTIONS
    },
}

#: Replicates per configuration of the committed evidence. MC SE of a coverage of 0.95: 1.0
#: percentage point from 500, 1.1 from 400. At about 0.4 s per selection replicate (two fits)
#: and 0.2 / 0.45 s per rating replicate (all / half rated) once compiled, about 8 minutes of
#: worker time: 4 to 6 minutes on 2 cores (docs/make_bias_simulations.py).
BIAS_MIN_REPLICATES: dict[str, int] = {
    "selection": 500,
    **{f"rating_{fraction:g}": 400 for fraction in RATING_FRACTIONS},
}


def bias_jobs(**overrides: Any) -> dict[str, functools.partial]:
    """The replicate job of each configuration: a ``functools.partial`` of a seed each.

    The bundled review's study sizes (:func:`bundled_sizes`) are bound into every job, so that
    they are part of the recorded settings: a change to the bundled data changes the settings
    hash. ``overrides`` replace settings of every configuration (e.g. ``draws=40`` for a quick
    check of the pipeline: such a run has other settings, so it never mixes with the real
    one).
    """
    sizes = [int(n) for n in bundled_sizes()]
    return {
        name: functools.partial(function, **{**arguments, "sizes": sizes, **overrides})
        for name, (function, arguments) in BIAS_CONFIGURATIONS.items()
    }


def bias_settings(**overrides: Any) -> dict[str, dict[str, Any]]:
    """The settings (as recorded and hashed) of each job of :func:`bias_jobs`."""
    from bayesreview.evidence import job_settings

    return {name: job_settings(job) for name, job in bias_jobs(**overrides).items()}


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------


def _share(values: pd.Series) -> tuple[float, float, int]:
    """Share of True, its Monte Carlo SE sqrt(c (1 - c) / R), and R (NaN rows left out)."""
    known = values.dropna().astype(bool)
    r = len(known)
    if not r:
        return float("nan"), float("nan"), 0
    c = float(known.mean())
    return c, math.sqrt(c * (1 - c) / r), r


def selection_table(results: pd.DataFrame) -> pd.DataFrame:
    """Coverage of the true mean rate by each model of the selection replicates.

    Parameters
    ----------
    results
        Rows of :func:`selection_replicate`.

    Returns
    -------
    pandas.DataFrame
        One row per model prefix (``unadjusted``, ``selection``): ``model``, ``replicates``,
        ``coverage`` and ``mc_se``, ``mean_width``, ``median_estimate`` (median over the
        replicates of the posterior median), ``bias`` (mean of posterior median minus the true
        rate), ``with_problems`` (replicates with any convergence problem) and
        ``divergent`` (replicates with a divergence).
    """
    rows = []
    for prefix in SELECTION_MODELS:
        if f"{prefix}_covered" not in results:
            raise BayesReviewError(f"selection_table: results lack {prefix}_covered")
        coverage, mc_se, r = _share(results[f"{prefix}_covered"])
        rows.append(
            {
                "model": prefix,
                "replicates": r,
                "coverage": coverage,
                "mc_se": mc_se,
                "mean_width": float(results[f"{prefix}_width"].mean()),
                "median_estimate": float(results[f"{prefix}_median"].median()),
                "bias": float((results[f"{prefix}_median"] - results["true_rate"]).mean()),
                "with_problems": int((results[f"{prefix}_problems"] > 0).sum()),
                "divergent": int((results[f"{prefix}_divergences"] > 0).sum()),
            }
        )
    return pd.DataFrame(rows)


def selection_weight_table(results: pd.DataFrame) -> pd.DataFrame:
    """The selection model's posterior weights against the truth, over the replicates.

    Returns
    -------
    pandas.DataFrame
        One row per selection class: ``selection_class``, ``true``, ``median_of_medians``
        (median over the replicates of the posterior median), ``q25`` and ``q75`` of the
        posterior medians, ``coverage`` and ``mc_se`` of the 95% interval, and
        ``mean_width``.
    """
    rows = []
    for d in SELECTION_CLASSES:
        medians = results[f"w_{d}_median"].astype(float)
        coverage, mc_se, _ = _share(results[f"w_{d}_covered"])
        rows.append(
            {
                "selection_class": d,
                "true": float(results[f"true_w_{d}"].iloc[0]),
                "median_of_medians": float(medians.median()),
                "q25": float(medians.quantile(0.25)),
                "q75": float(medians.quantile(0.75)),
                "coverage": coverage,
                "mc_se": mc_se,
                "mean_width": float((results[f"w_{d}_upper"] - results[f"w_{d}_lower"]).mean()),
            }
        )
    return pd.DataFrame(rows)


def rating_table(results: pd.DataFrame) -> pd.DataFrame:
    """Coverage and width of each bias effect's interval, by share of studies rated.

    Parameters
    ----------
    results
        Rows of :func:`rating_recovery_replicate` (any number of ``fraction_rated``).

    Returns
    -------
    pandas.DataFrame
        One row per ``fraction_rated`` (largest first) and level: ``fraction_rated``,
        ``level``, ``true``, ``replicates``, ``coverage``, ``mc_se``, ``mean_width``,
        ``median_of_medians`` (median over the replicates of the posterior median), ``bias``
        (mean of posterior median minus truth) and ``with_problems``.
    """
    if "fraction_rated" not in results:
        raise BayesReviewError("rating_table: results lack fraction_rated")
    rows = []
    for fraction, part in results.groupby("fraction_rated", sort=True):
        for name in RISK_OF_BIAS_LEVELS[1:]:
            coverage, mc_se, r = _share(part[f"beta_{name}_covered"])
            truth = part[f"true_beta_{name}"].astype(float)
            medians = part[f"beta_{name}_median"].astype(float)
            rows.append(
                {
                    "fraction_rated": float(fraction),
                    "level": name,
                    "true": float(truth.iloc[0]),
                    "replicates": r,
                    "coverage": coverage,
                    "mc_se": mc_se,
                    "mean_width": float(part[f"beta_{name}_width"].mean()),
                    "median_of_medians": float(medians.median()),
                    "bias": float((medians - truth).mean()),
                    "with_problems": int((part["problems"] > 0).sum()),
                }
            )
    table = pd.DataFrame(rows)
    return table.sort_values("fraction_rated", ascending=False, kind="stable").reset_index(
        drop=True
    )
