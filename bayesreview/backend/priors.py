"""A specification's priors as PyMC variables and PyTensor log densities.

:class:`bayesreview.spec.Prior` describes a prior (distribution and parameters) and evaluates it
with scipy; here the same prior becomes a PyMC random variable (:func:`prior_variable`) or a
PyTensor expression of its log density (:func:`prior_logp`). ``tests/test_spec.py`` checks
PyMC's log density against scipy's for every distribution.
"""

from __future__ import annotations

from typing import Any

import pymc as pm
from pytensor.tensor.variable import TensorVariable

from bayesreview.spec import Prior

__all__ = ["PYMC_DISTRIBUTIONS", "prior_logp", "prior_variable"]

#: The PyMC distribution of each prior family of a specification.
PYMC_DISTRIBUTIONS: dict[str, type[pm.Distribution]] = {
    "normal": pm.Normal,
    "student_t": pm.StudentT,
    "halfnormal": pm.HalfNormal,
    "halfstudent_t": pm.HalfStudentT,
    "exponential": pm.Exponential,
    "beta": pm.Beta,
}


def prior_variable(prior: Prior, name: str, **kwargs: Any) -> TensorVariable:
    """``prior`` as a PyMC random variable; call inside a ``pm.Model`` context.

    Parameters
    ----------
    prior
        The prior.
    name
        Name of the variable in the model.
    **kwargs
        Passed to the PyMC distribution, e.g. ``dims="group"`` or ``shape=3``.
    """
    return PYMC_DISTRIBUTIONS[prior.dist](name, **dict(prior.params), **kwargs)


def prior_logp(prior: Prior, x: Any) -> TensorVariable:
    """Log density of ``prior`` at ``x`` as a PyTensor expression (for a potential)."""
    return pm.logp(PYMC_DISTRIBUTIONS[prior.dist].dist(**dict(prior.params)), x)
