"""Fixtures shared by several test files: the bundled data and fits of it, each fitted once.

Fits are session-scoped, so every test file that asks for one gets the same object, and each
model structure is compiled once per test process. Tests must not modify a shared fit or table
in place (copy first).
"""

from __future__ import annotations

import warnings

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
