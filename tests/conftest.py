"""Fixtures shared by several test files: the bundled data and fits of it, each fitted once.

Fits are session-scoped, so every test file that asks for one gets the same object, and each
model structure is compiled once per test process. Tests must not modify a shared fit or table
in place (copy first).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesreview as br

#: Few draws: fast, and enough for the checks that use these fits.
FAST = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}

#: The joint response model pooled by group, as ``bayesreview analyze`` fits the bundled data.
RESPONSE_FIT_ARGS = {
    "outcome": "response",
    "model": "response",
    "by": "group",
    "seed": 11,
    **FAST,
}


def rows_op_inputs(stacked: list, data: list, classes=None) -> tuple[list, list]:
    """(parameters, data) of the rows Ops (``BetaBinomialRows(S)``) from the inputs of their
    kernels: ``stacked`` is alpha, scale, level_shift (S, K; 0 in the reference column) and
    row_shift (S, J), then log pi and optionally the classes' log w; ``data`` is group,
    events (S, J), trials (S, J), weights, level, known and totals; ``classes`` each row's
    selection class (none without selection)."""
    alpha, scale, level_shift, row_shift, log_pi, *log_class_w = stacked
    stages = range(alpha.shape[0])
    parameters = [x for s in stages for x in (alpha[s], scale[s], level_shift[s, 1:], row_shift[s])]
    log_class_w = log_class_w[0] if log_class_w else np.zeros(0)
    group, events, trials, *row_data = data
    counts = [x for s in stages for x in (events[s], trials[s])]
    classes = np.zeros(0, dtype=np.int64) if classes is None else np.asarray(classes)
    return [*parameters, log_pi, log_class_w], [group, *counts, *row_data, classes]


def quiet_fit(studies: pd.DataFrame, **kwargs) -> br.Fit:
    """``br.fit`` without convergence warnings (few draws: the tests check other things)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        return br.fit(studies, **kwargs)


@pytest.fixture(scope="session")
def fast_fit():
    """``fast_fit(studies, **kwargs)``: :func:`quiet_fit` with :data:`FAST` unless overridden."""

    def fit(studies: pd.DataFrame, **kwargs) -> br.Fit:
        return quiet_fit(studies, **{**FAST, **kwargs})

    return fit


@pytest.fixture(scope="session")
def studies() -> pd.DataFrame:
    """The bundled calcinosis cutis table (40 studies)."""
    return br.load_dataset("calcinosis_cutis")


@pytest.fixture(scope="session")
def calcinosis_fit(studies):
    """Any response, beta-binomial, pooled by group (Table 2's rows); 2 x 300 draws."""
    return quiet_fit(studies, outcome="any", by="group", seed=2021, **FAST)


@pytest.fixture(scope="session")
def modality_fit(studies):
    """Any response, beta-binomial, pooled by modality (the defaults); 2 x 200 draws."""
    return quiet_fit(studies, draws=200, tune=200, chains=2, seed=1, progressbar=False)


@pytest.fixture(scope="session")
def response_fit_args() -> dict:
    """The arguments of :func:`response_fit` (a copy: safe to read or change)."""
    return dict(RESPONSE_FIT_ARGS)


@pytest.fixture(scope="session")
def response_fit(studies):
    """Complete, partial and any response (joint model), pooled by group; 2 x 300 draws."""
    return quiet_fit(studies, **RESPONSE_FIT_ARGS)


@pytest.fixture(scope="session")
def comparison_columns() -> list[str]:
    """The columns of a pairwise comparison table, as its documentation lists them."""
    return [
        "outcome",
        "modality_a",
        "modality_b",
        "p_greater",
        "p_better",
        "diff_median",
        "diff_lower",
        "diff_upper",
    ]
