"""Frequentist coverage of bayesreview's intervals, next to the binomial-normal GLMM.

The comparator is the binomial-normal (logit-normal) random-effects model of one group fitted
by maximum likelihood, as metafor's ``rma.glmm(xi, ni, measure="PLO", method="ML")`` fits it::

    y_j ~ Binomial(n_j, invlogit(mu + tau z_j)),   z_j ~ Normal(0, 1).

:func:`glmm_loglik` is its marginal log-likelihood by the package's one integrator of the
logit-normal model (:func:`bayesreview.integrals.logit_normal_loglik`: Gauss-Hermite quadrature
centred and scaled at each study's mode, as lme4's ``nAGQ`` but with 32 nodes), :func:`fit_glmm`
its maximum and a Wald interval for ``mu`` from the observed information. The interval's
limits, back-transformed, bound ``invlogit(mu)``: the **median** rate of the population of
studies, which is what ``rma.glmm`` reports as the pooled rate. bayesreview's ``rate`` is the
population **mean** ``E[p]``; :func:`fit_glmm` therefore also gives a delta-method interval for
the mean.

:func:`coverage_replicate` simulates one review (k studies of 1 to 30 patients, logit-normal
truth with a given mean rate and tau), fits it with :func:`bayesreview.fit` and with
:func:`fit_glmm`, and records whether each interval covers the true mean and median;
:func:`coverage_table` aggregates replicates into coverage with its Monte Carlo standard error
and :func:`coverage_plot` draws it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from bayesreview.errors import BayesReviewError
from bayesreview.integrals import (
    log_logit_normal_integral,
    logit_normal_loglik,
    logit_normal_moment,
)
from bayesreview.spec import LIKELIHOODS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "COVERAGE_GRID",
    "COVERAGE_MIN_REPLICATES",
    "COVERAGE_MODELS",
    "COVERAGE_SETTINGS",
    "GlmmFit",
    "coverage_job",
    "coverage_plot",
    "coverage_replicate",
    "coverage_seeds",
    "coverage_settings",
    "coverage_table",
    "fit_glmm",
    "glmm_loglik",
    "grid_replicate",
    "logit_normal_mu",
    "simulate_review",
]

#: Bounds of the ML search: |mu| <= _MU_BOUND (logit), 0 <= tau <= _TAU_BOUND.
_MU_BOUND = 20.0
_TAU_BOUND = 15.0
#: tau below this is reported as on the boundary (tau = 0).
_TAU_ZERO = 1e-4


def _counts(events: Sequence[int] | np.ndarray, trials: Sequence[int] | np.ndarray):
    y = np.asarray(events, dtype=float).ravel()
    n = np.asarray(trials, dtype=float).ravel()
    if y.shape != n.shape or y.size == 0:
        raise BayesReviewError(
            f"events and trials must be non-empty and of one length, got {y.size} and {n.size}"
        )
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(n))):
        raise BayesReviewError("events and trials must be finite")
    if np.any(y != np.round(y)) or np.any(n != np.round(n)):
        raise BayesReviewError("events and trials must be whole numbers")
    bad = np.flatnonzero((y < 0) | (n < 1) | (y > n))
    if bad.size:
        j = int(bad[0])
        raise BayesReviewError(
            f"study {j}: need 0 <= events <= trials and trials >= 1, got events {y[j]:.0f}, "
            f"trials {n[j]:.0f}"
        )
    return y, n


def glmm_loglik(
    mu: float,
    tau: float,
    events: Sequence[int] | np.ndarray,
    trials: Sequence[int] | np.ndarray,
) -> float:
    """Marginal log-likelihood of the binomial-normal GLMM at (mu, tau).

    ``sum_j log int Binomial(y_j | n_j, invlogit(mu + tau z)) Normal(z | 0, 1) dz``, binomial
    coefficients included, by :func:`bayesreview.integrals.logit_normal_loglik` (adaptive
    Gauss-Hermite quadrature centred at each study's mode of the log-concave integrand; more
    nodes than ``glmer``'s default ``nAGQ = 7``).

    Parameters
    ----------
    mu
        Logit of the median rate.
    tau
        Between-study SD on the logit scale (its sign is ignored).
    events, trials
        Events and patients per study.

    Returns
    -------
    float
    """
    y, n = _counts(events, trials)
    return float(np.sum(logit_normal_loglik(y, n, float(mu), abs(float(tau)))))


def _mean_rate(mu: float, tau: float) -> float:
    """Population mean rate E[invlogit(mu + tau z)], by the package's one integrator."""
    return float(logit_normal_moment(float(mu), abs(float(tau))))


def logit_normal_mu(rate: float, tau: float) -> float:
    """The ``mu`` whose logit-normal population with SD ``tau`` has mean rate ``rate``.

    Parameters
    ----------
    rate
        Population mean rate, strictly between 0 and 1.
    tau
        Between-study SD on the logit scale, >= 0.
    """
    if not 0 < rate < 1:
        raise BayesReviewError(f"rate={rate!r}: must be strictly between 0 and 1")
    if not tau >= 0:
        raise BayesReviewError(f"tau={tau!r}: must be >= 0")
    if tau == 0:
        return float(special.logit(rate))
    return float(
        optimize.brentq(lambda m: _mean_rate(m, tau) - rate, -30, 30, xtol=1e-13, rtol=1e-14)
    )


@dataclass(frozen=True)
class GlmmFit:
    """Maximum-likelihood fit of the binomial-normal GLMM (one group).

    Attributes
    ----------
    mu, tau
        Estimates: logit of the median rate, and the between-study SD (logit scale, >= 0).
    se_mu
        Wald standard error of ``mu`` from the observed information.
    cov
        Inverse observed information of ``(mu, tau)`` (2 x 2); at the boundary ``tau = 0``
        only ``cov[0, 0]`` is defined (the rest is NaN).
    loglik
        Maximised log-likelihood.
    boundary
        True when the ML estimate of tau is 0 (below 1e-4).
    converged
        False when the fit failed: the optimiser stopped without a (near-)zero gradient, an
        estimate sits on the search bounds (e.g. all studies with 0 events: mu -> -inf), or the
        information matrix is not positive definite. The other fields are then NaN.
    message
        Why the fit failed (empty when converged).
    level
        Level of the intervals.
    median, median_lower, median_upper
        ``invlogit(mu)`` and its back-transformed Wald interval (what ``rma.glmm`` reports as
        the pooled rate, e.g. via ``predict(fit, transf=transf.ilogit)``).
    mean, mean_lower, mean_upper
        Population mean rate ``E[invlogit(mu + tau z)]`` and a delta-method Wald interval on
        its logit.
    """

    mu: float
    tau: float
    se_mu: float
    cov: np.ndarray
    loglik: float
    boundary: bool
    converged: bool
    message: str
    level: float
    median: float
    median_lower: float
    median_upper: float
    mean: float
    mean_lower: float
    mean_upper: float

    @property
    def mu_lower(self) -> float:
        """Lower Wald limit for ``mu`` (logit scale)."""
        return float(special.logit(self.median_lower))

    @property
    def mu_upper(self) -> float:
        """Upper Wald limit for ``mu`` (logit scale)."""
        return float(special.logit(self.median_upper))


def _hessian(f, point: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    d = len(point)
    out = np.empty((d, d))
    for i in range(d):
        for j in range(i, d):
            ei = np.zeros(d)
            ej = np.zeros(d)
            ei[i] = step
            ej[j] = step
            value = (
                f(point + ei + ej) - f(point + ei - ej) - f(point - ei + ej) + f(point - ei - ej)
            ) / (4 * step * step)
            out[i, j] = out[j, i] = value
    return out


def _gradient(f, point: np.ndarray, step: float = 1e-6) -> np.ndarray:
    d = len(point)
    out = np.empty(d)
    for i in range(d):
        e = np.zeros(d)
        e[i] = step
        out[i] = (f(point + e) - f(point - e)) / (2 * step)
    return out


def _failed(message: str, level: float) -> GlmmFit:
    nan = float("nan")
    return GlmmFit(
        nan, nan, nan, np.full((2, 2), nan), nan, False, False, message, level,
        nan, nan, nan, nan, nan, nan,
    )  # fmt: skip


def fit_glmm(
    events: Sequence[int] | np.ndarray,
    trials: Sequence[int] | np.ndarray,
    level: float = 0.95,
) -> GlmmFit:
    """Fit the binomial-normal GLMM by maximum likelihood; Wald intervals.

    Maximises :func:`glmm_loglik` over ``mu`` in [-20, 20] and ``tau`` in [0, 15] (L-BFGS-B from
    several starting values of tau, keeping the best), as ``rma.glmm(xi, ni, measure="PLO",
    method="ML")`` does with ``lme4::glmer`` (``nAGQ = 7``). The standard error of ``mu`` is
    from the inverse of the observed information of ``(mu, tau)`` (central differences), as
    ``vcov`` of a ``glmer`` fit; at the boundary ``tau = 0`` from the information of ``mu``
    alone.

    Parameters
    ----------
    events, trials
        Events and patients per study.
    level
        Level of the Wald intervals; default 0.95.

    Returns
    -------
    GlmmFit
        With ``converged=False`` (and NaN estimates) when the fit fails; it never raises for
        data that are valid but uninformative.

    Raises
    ------
    BayesReviewError
        For invalid counts or level.
    """
    if not 0 < level < 1:
        raise BayesReviewError(f"level={level!r}: must be strictly between 0 and 1")
    y, n = _counts(events, trials)

    def negloglik(theta: np.ndarray) -> float:
        # the likelihood is even in tau: |tau| lets central differences step across tau = 0
        value = -float(np.sum(logit_normal_loglik(y, n, theta[0], abs(theta[1]))))
        return value if np.isfinite(value) else 1e300

    def jac(theta: np.ndarray) -> np.ndarray:
        return _gradient(negloglik, np.asarray(theta, dtype=float))

    pooled = (y.sum() + 0.5) / (n.sum() + 1.0)
    start_mu = float(special.logit(pooled))
    bounds = [(-_MU_BOUND, _MU_BOUND), (0.0, _TAU_BOUND)]
    best = None
    for start_tau in (0.2, 1.5):
        result = optimize.minimize(
            negloglik,
            np.array([start_mu, start_tau]),
            jac=jac,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 500},
        )
        if best is None or result.fun < best.fun:
            best = result
    mu_hat, tau_hat = (float(v) for v in best.x)
    if abs(mu_hat) >= _MU_BOUND - 1e-3:
        return _failed(
            "mu at the search bound (events 0 or n in every study: no finite MLE)", level
        )
    if tau_hat >= _TAU_BOUND - 1e-3:
        return _failed("tau at the search bound", level)
    boundary = tau_hat < _TAU_ZERO
    if boundary:
        tau_hat = 0.0
        mu_hat = float(
            optimize.minimize_scalar(
                lambda m: negloglik(np.array([m, 0.0])),
                bracket=(mu_hat - 0.1, mu_hat + 0.1),
                tol=1e-12,
            ).x
        )
    theta = np.array([mu_hat, tau_hat])
    grad = jac(theta)
    if not np.isfinite(grad).all() or abs(grad[0]) > 1e-3 or (not boundary and abs(grad[1]) > 1e-3):
        return _failed(f"no zero gradient at the optimum ({best.message})", level)
    if boundary:
        p = special.expit(mu_hat)
        info = float(np.sum(n) * p * (1 - p))
        if not info > 0:
            return _failed("zero information about mu", level)
        cov = np.full((2, 2), np.nan)
        cov[0, 0] = 1.0 / info
    else:
        hess = _hessian(negloglik, theta)
        if not np.all(np.isfinite(hess)) or np.any(np.linalg.eigvalsh(hess) <= 0):
            return _failed("observed information not positive definite", level)
        cov = np.linalg.inv(hess)
    se_mu = math.sqrt(cov[0, 0])
    zq = float(stats.norm.ppf(0.5 + level / 2))
    mean = _mean_rate(mu_hat, tau_hat)

    # delta method for logit(E[p]), p = invlogit(mu + tau z): d E[p] / d mu = E[p(1-p)] and
    # d E[p] / d tau = E[z p(1-p)] = tau E[p(1-p)(1-2p)] (Stein's lemma), all by the one
    # integrator: E[p^a (1-p)^b] = I(a, b)
    def moment(a: float, b: float) -> float:
        return float(np.exp(log_logit_normal_integral(a, b, mu_hat, tau_hat)))

    e11 = moment(1, 1)
    dm = np.array([e11, tau_hat * (e11 - 2 * moment(2, 1))])
    var_m = dm[0] ** 2 * cov[0, 0] if boundary else float(dm @ cov @ dm)
    se_logit_mean = math.sqrt(var_m) / (mean * (1 - mean))
    logit_mean = float(special.logit(mean))
    return GlmmFit(
        mu=mu_hat,
        tau=tau_hat,
        se_mu=se_mu,
        cov=cov,
        loglik=-negloglik(theta),
        boundary=boundary,
        converged=True,
        message="",
        level=level,
        median=float(special.expit(mu_hat)),
        median_lower=float(special.expit(mu_hat - zq * se_mu)),
        median_upper=float(special.expit(mu_hat + zq * se_mu)),
        mean=mean,
        mean_lower=float(special.expit(logit_mean - zq * se_logit_mean)),
        mean_upper=float(special.expit(logit_mean + zq * se_logit_mean)),
    )


# ---------------------------------------------------------------------------------------------
# Simulation and one replicate
# ---------------------------------------------------------------------------------------------


def simulate_review(
    k: int,
    rate: float,
    tau: float,
    rng: np.random.Generator,
    n_range: tuple[int, int] = (1, 30),
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one review of ``k`` studies from a logit-normal population.

    Each study's patients are uniform on ``n_range`` (inclusive); its true rate is
    ``invlogit(mu + tau z)``, z ~ Normal(0, 1), with ``mu`` set so that the population mean rate
    is ``rate`` (:func:`logit_normal_mu`); its events are binomial.

    Returns
    -------
    (events, trials)
    """
    if not isinstance(k, int | np.integer) or k < 1:
        raise BayesReviewError(f"k={k!r}: must be a whole number >= 1")
    low, high = n_range
    if not 1 <= low <= high:
        raise BayesReviewError(f"n_range={n_range!r}: need 1 <= low <= high")
    mu = logit_normal_mu(rate, tau)
    trials = rng.integers(low, high + 1, size=k)
    p = special.expit(mu + tau * rng.standard_normal(k))
    return rng.binomial(trials, p), trials


def _population_median_beta(alpha: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Median of Beta(mu phi, (1 - mu) phi), mu = invlogit(alpha), per draw."""
    mu = special.expit(alpha)
    return stats.beta.ppf(0.5, mu * phi, (1 - mu) * phi)


def coverage_replicate(
    seed: int,
    k: int,
    rate: float,
    tau: float,
    model: str = "beta_binomial",
    level: float = 0.95,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    n_range: tuple[int, int] = (1, 30),
    glmm: bool = True,
) -> dict[str, Any]:
    """One coverage replicate: simulate a review, fit bayesreview and the ML GLMM.

    Parameters
    ----------
    seed
        Seeds the simulation (``numpy.random.default_rng([seed, 1])``) and the sampler.
    k, rate, tau
        Studies, true population mean rate (0-1) and true between-study SD (logit scale).
    model
        bayesreview model fitted: ``"beta_binomial"`` (default) or ``"logit_normal"``.
    level
        Interval level; default 0.95.
    draws, tune, chains
        Sampler settings of :func:`bayesreview.fit`; defaults 500, 500, 2.
    n_range
        Patients per study, uniform on this inclusive range; default (1, 30).
    glmm
        Fit the ML GLMM too (default True). The simulated data depend on the seed alone, so
        one model's replicates carry the GLMM's intervals for every model.

    Returns
    -------
    dict
        Design (``k``, ``true_rate``, ``tau``, ``model``), truths (``true_mean``,
        ``true_median``), simulated ``events`` and ``trials``, and per interval its limits:
        ``bayes_mean_lower/upper`` (posterior interval of ``rate``, the population mean),
        ``bayes_median_lower/upper`` (of the population median), ``glmm_median_lower/upper``
        (back-transformed Wald CI of invlogit(mu)), ``glmm_mean_lower/upper`` (delta-method CI
        of the mean); ``glmm_converged``, ``glmm_boundary``, ``glmm_message``, ``glmm_tau``
        (the ``glmm_`` keys only with ``glmm=True``), and the Bayesian fit's ``divergences``
        and ``max_rhat``.
    """
    import warnings

    from bayesreview.fitting import fit

    if model not in LIKELIHOODS:
        raise BayesReviewError(f"model={model!r}: must be one of {', '.join(LIKELIHOODS)}")
    rng = np.random.default_rng([seed, 1])
    events, trials = simulate_review(k, rate, tau, rng, n_range)
    mu_true = logit_normal_mu(rate, tau)
    result: dict[str, Any] = {
        "k": int(k),
        "true_rate": float(rate),
        "tau": float(tau),
        "model": model,
        "level": float(level),
        "true_mean": float(rate),
        "true_median": float(special.expit(mu_true)),
        "events": events.tolist(),
        "trials": trials.tolist(),
    }

    table = pd.DataFrame(
        {
            "study": [f"study {i + 1}" for i in range(k)],
            "modality": "all",
            "n": trials,
            "events": events,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit(
            table,
            outcome="events",
            model=model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=int(seed),
            progressbar=False,
        )
    tail = (1 - level) / 2
    post = fitted.idata.posterior
    mean_draws = fitted.draws("rate", "events").values.reshape(-1)
    alpha = post["alpha"].values.reshape(post.sizes["chain"] * post.sizes["draw"], -1)[:, 0]
    if model == "beta_binomial":
        phi = post["phi"].values.reshape(alpha.size, -1)[:, 0]
        median_draws = _population_median_beta(alpha, phi)
    else:
        median_draws = special.expit(alpha)
    for name, values in (("mean", mean_draws), ("median", median_draws)):
        lower, upper = np.quantile(values, [tail, 1 - tail])
        result[f"bayes_{name}_lower"] = float(lower)
        result[f"bayes_{name}_upper"] = float(upper)
    result["divergences"] = int(fitted.divergences)
    result["max_rhat"] = float(fitted.diagnostics()["r_hat"].max())

    if not glmm:
        return result
    ml = fit_glmm(events, trials, level=level)
    result.update(
        glmm_converged=bool(ml.converged),
        glmm_boundary=bool(ml.boundary),
        glmm_message=ml.message,
        glmm_tau=ml.tau,
        glmm_median_lower=ml.median_lower,
        glmm_median_upper=ml.median_upper,
        glmm_mean_lower=ml.mean_lower,
        glmm_mean_upper=ml.mean_upper,
    )
    return result


def grid_replicate(
    seed: int, grid: Sequence[tuple[int, float, float]], stride: int = 10_000, **kwargs: Any
) -> dict[str, Any]:
    """:func:`coverage_replicate` for grid cell ``seed // stride`` (a job for run_replicates).

    Parameters
    ----------
    seed
        ``cell * stride + replicate``.
    grid
        Cells ``(k, rate, tau)``.
    stride
        Seeds per cell; default 10000.
    **kwargs
        Passed to :func:`coverage_replicate` (model, level, draws, tune, chains, n_range).
    """
    cell = seed // stride
    if not 0 <= cell < len(grid):
        raise BayesReviewError(f"seed {seed}: cell {cell} is not in the grid of {len(grid)}")
    k, rate, tau = grid[cell]
    return {"cell": int(cell), **coverage_replicate(seed, int(k), rate, tau, **kwargs)}


# ---------------------------------------------------------------------------------------------
# The experiment the documentation reports
# ---------------------------------------------------------------------------------------------

#: Studies per review, true population mean rates and true tau (logit scale) of the grid.
COVERAGE_KS: tuple[int, ...] = (3, 5, 10, 20)
COVERAGE_RATES: tuple[float, ...] = (0.2, 0.5, 0.8)
COVERAGE_TAUS: tuple[float, ...] = (0.3, 1.0)
#: The grid's cells (k, rate, tau), k outermost.
COVERAGE_GRID: tuple[tuple[int, float, float], ...] = tuple(
    (k, rate, tau) for k in COVERAGE_KS for tau in COVERAGE_TAUS for rate in COVERAGE_RATES
)
#: Seeds per cell: replicate r of cell c has seed ``c * COVERAGE_STRIDE + r``.
COVERAGE_STRIDE = 10_000
#: Settings of every replicate's fit (passed to :func:`coverage_replicate`).
COVERAGE_SETTINGS: dict[str, Any] = {"draws": 500, "tune": 500, "chains": 2, "level": 0.95}
#: bayesreview models whose intervals are scored.
COVERAGE_MODELS: tuple[str, ...] = LIKELIHOODS
#: Least replicates per cell of each model in the committed evidence (MC SE of a coverage of
#: 0.95 from 40 replicates: 3.4 percentage points per cell, about 1 pooled over a tau's cells).
COVERAGE_MIN_REPLICATES: dict[str, int] = {"beta_binomial": 40, "logit_normal": 40}


def coverage_job(model: str, **overrides: Any):
    """The replicate job of ``model`` over :data:`COVERAGE_GRID` (a ``functools.partial``).

    The first of :data:`COVERAGE_MODELS` also fits the ML GLMM to each data set (the same for
    every model); the others do not. ``overrides`` replace fit settings (e.g. ``draws=50`` for
    a quick check of the pipeline; such a run has other settings, so it never mixes with the
    real one).
    """
    import functools

    if model not in COVERAGE_MODELS:
        raise BayesReviewError(f"model={model!r}: must be one of {', '.join(COVERAGE_MODELS)}")
    return functools.partial(
        grid_replicate,
        grid=COVERAGE_GRID,
        stride=COVERAGE_STRIDE,
        model=model,
        **{**COVERAGE_SETTINGS, "glmm": model == COVERAGE_MODELS[0], **overrides},
    )


def coverage_settings(model: str, **overrides: Any) -> dict[str, Any]:
    """The settings (as recorded and hashed) of :func:`coverage_job` ``(model, **overrides)``."""
    from bayesreview.evidence import job_settings

    return job_settings(coverage_job(model, **overrides))


def coverage_seeds(replicates: int, n_cells: int = len(COVERAGE_GRID)) -> list[int]:
    """Seeds of ``replicates`` replicates per cell, replicate-major: an interrupted run has
    (nearly) the same number in every cell."""
    return [cell * COVERAGE_STRIDE + r for r in range(replicates) for cell in range(n_cells)]


# ---------------------------------------------------------------------------------------------
# Aggregation and plot
# ---------------------------------------------------------------------------------------------

#: (method, target, interval columns prefix, truth column) of each coverage row.
INTERVALS = (
    ("bayes", "mean", "bayes_mean", "true_mean"),
    ("bayes", "median", "bayes_median", "true_median"),
    ("glmm_ml", "median", "glmm_median", "true_median"),
    ("glmm_ml", "mean", "glmm_median", "true_mean"),
    ("glmm_ml_delta", "mean", "glmm_mean", "true_mean"),
)

_DESIGN = ("k", "true_rate", "tau")


def coverage_table(results: pd.DataFrame, by: Iterable[str] = _DESIGN) -> pd.DataFrame:
    """Coverage, its Monte Carlo SE and mean width of each interval, per design cell.

    Parameters
    ----------
    results
        Replicates, one row each, with the columns of :func:`coverage_replicate`: the design
        columns, ``true_mean``, ``true_median``, ``<prefix>_lower`` / ``<prefix>_upper`` for the
        prefixes ``bayes_mean``, ``bayes_median``, ``glmm_median``, ``glmm_mean``, and
        ``glmm_converged``. A ``model`` column, when present, names the Bayesian method
        (``bayes_<model>``).
    by
        Design columns to group by; default ``("k", "true_rate", "tau")``.

    Returns
    -------
    pandas.DataFrame
        Columns: the design columns, ``method`` (``bayes_<model>``, ``glmm_ml``: the Wald CI of
        invlogit(mu) as rma.glmm reports it, ``glmm_ml_delta``: delta-method CI of the mean),
        ``target`` (``mean`` or ``median`` of the population of study rates), ``coverage``
        (share of usable replicates whose interval holds the target, limits included),
        ``mc_se`` (``sqrt(c (1 - c) / R)``), ``mean_width``, ``failures`` (replicates without
        an interval: GLMM fits that failed) and ``replicates`` (R, usable replicates).
    """
    by = list(by)
    missing = [c for c in (*by, "true_mean", "true_median") if c not in results]
    if missing:
        raise BayesReviewError(f"coverage_table: results lack the column(s) {missing}")
    rows = []
    for keys, cell in results.groupby(by, sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        design = dict(zip(by, keys, strict=True))
        for method, target, prefix, truth in INTERVALS:
            lo_col, hi_col = f"{prefix}_lower", f"{prefix}_upper"
            if lo_col not in cell or hi_col not in cell:
                continue
            name = method
            if method == "bayes" and "model" in cell:
                models = cell["model"].unique()
                if len(models) != 1:
                    raise BayesReviewError("coverage_table: one model per cell; group by model")
                name = f"bayes_{models[0]}"
            lower = cell[lo_col].to_numpy(dtype=float)
            upper = cell[hi_col].to_numpy(dtype=float)
            ok = np.isfinite(lower) & np.isfinite(upper)
            if method.startswith("glmm") and "glmm_converged" in cell:
                ok &= cell["glmm_converged"].to_numpy(dtype=bool)
            true = cell[truth].to_numpy(dtype=float)[ok]
            r = int(ok.sum())
            covered = (lower[ok] <= true) & (true <= upper[ok])
            c = float(covered.mean()) if r else float("nan")
            rows.append(
                {
                    **design,
                    "method": name,
                    "target": target,
                    "coverage": c,
                    "mc_se": math.sqrt(c * (1 - c) / r) if r else float("nan"),
                    "mean_width": float(np.mean(upper[ok] - lower[ok])) if r else float("nan"),
                    "failures": int(len(cell) - r),
                    "replicates": r,
                }
            )
    return pd.DataFrame(rows)


def coverage_plot(
    table: pd.DataFrame,
    target: str = "mean",
    level: float = 0.95,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Coverage against the number of studies, one line per method.

    Each line is a method's coverage pooled over the table's other design cells at each k
    (all their replicates together), with 1.96 Monte Carlo SE error bars; the small faint
    markers are the single cells.

    Parameters
    ----------
    table
        From :func:`coverage_table`; subset it first (e.g. one tau) to pool fewer cells.
    target
        ``"mean"`` (default) or ``"median"``: which target's rows to draw.
    level
        Nominal level, drawn as a horizontal line; default 0.95.
    ax
        Axes to draw on; default a new figure.
    title
        Axes title; default none.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows = table[table["target"] == target]
    if rows.empty:
        raise BayesReviewError(f"coverage_plot: no rows with target {target!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
    else:
        fig = ax.figure
    methods = list(dict.fromkeys(rows["method"]))
    ks = sorted(rows["k"].unique())
    for i, method in enumerate(methods):
        part = rows[rows["method"] == method]
        shift = 1 + 0.04 * (i - (len(methods) - 1) / 2)
        ax.plot(part["k"] * shift, part["coverage"], ".", color=f"C{i}", alpha=0.3, ms=4)
        hits = (part["coverage"] * part["replicates"]).groupby(part["k"]).sum()
        total = part.groupby("k")["replicates"].sum()
        pooled = hits / total
        se = np.sqrt(pooled * (1 - pooled) / total)
        ax.errorbar(
            pooled.index * shift,
            pooled.to_numpy(),
            yerr=1.96 * se.to_numpy(),
            color=f"C{i}",
            marker="o",
            ms=4,
            lw=1.2,
            capsize=2,
            label=method,
        )
    ax.axhline(level, color="0.4", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()
    ax.set_ylim(min(0.7, float(rows["coverage"].min()) - 0.02), 1.01)
    ax.set_xlabel("studies (k)")
    ax.set_ylabel(f"coverage of the {target}")
    ax.set_title(title or "", fontsize=9)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    return fig
