"""bayesreview: Bayesian random-effects meta-analysis of response rates from small studies.

The public API::

    studies = load_dataset("calcinosis_cutis")      # or read_studies("my_studies.csv")
    crude_table(studies, by="group")                 # the review's crude percentages
    result = fit(studies, outcome="any")             # hierarchical beta-binomial model
    result.summary()                                 # crude next to posterior, per modality

Heavy dependencies (PyMC, ArviZ, matplotlib) are imported only when a model is fitted or a
figure drawn, so reading data and the command line's ``--help`` stay quick.
"""

from importlib import import_module
from typing import Any

from bayesreview.errors import (
    AssumptionWarning,
    BackendFallbackWarning,
    BayesReviewError,
    ConvergenceWarning,
    DataError,
    SpecError,
    WeakIdentificationWarning,
)

__version__ = "0.1.0"

# name -> module that defines it; imported on first use (PEP 562)
_LAZY = {
    **dict.fromkeys(
        [
            "clopper_pearson",
            "crude_table",
            "dataset_info",
            "list_datasets",
            "load_dataset",
            "load_published",
            "overall_risk_of_bias",
            "read_adverse_events",
            "read_studies",
            "reconcile",
            "reconcile_adverse_events",
        ],
        "bayesreview.data",
    ),
    "Fit": "bayesreview.fitting",
    "fit": "bayesreview.fitting",
    "load_fit": "bayesreview.fitting",
    "compare_models": "bayesreview.checks",
    "sensitivity": "bayesreview.robustness",
    "ModelSpec": "bayesreview.spec",
    "Prior": "bayesreview.spec",
    "load_spec": "bayesreview.spec",
    "clear_compiled_models": "bayesreview.backend.sampling",
    "exceedance": "bayesreview.thresholds",
    "update": "bayesreview.living",
    "changes": "bayesreview.living",
    "shipped_models": "bayesreview.spec",
    "harm_studies": "bayesreview.harms",
    "fit_harm": "bayesreview.harms",
    "benefit_risk": "bayesreview.harms",
    "network_structure": "bayesreview.network",
    "fit_network": "bayesreview.network",
    "single_arm_sensitivity": "bayesreview.network",
    "NetworkFit": "bayesreview.network",
    "inconsistency": "bayesreview.network",
}

__all__ = [
    "AssumptionWarning",
    "BackendFallbackWarning",
    "BayesReviewError",
    "ConvergenceWarning",
    "DataError",
    "SpecError",
    "WeakIdentificationWarning",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bayesreview' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
