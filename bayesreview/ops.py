"""Likelihood building blocks that PyTensor's numba backend compiles quickly and caches on disk.

The tabulated beta-binomial log-likelihood and its gradient as one PyTensor Op, and the log
rising factorial of the per-study beta-binomial with a gradient free of scipy calls.

For one stage of the beta-binomial model evaluated from sufficient counts
(:class:`bayesreview.design.Tabulated`), cell c (a group by bias-value cell) has

    eta_c = alpha[g_c] + X_c . beta,   a_c = phi_c sigmoid(eta_c),   b_c = phi_c sigmoid(-eta_c),
    phi_c = exp(log_phi[g_c]),

with X the cells' covariate matrix (one-hot non-reference bias levels, or the centred numeric
value; no column without a covariate), and the log-likelihood, up to the binomial
coefficients, is the sum over the terms k = (c, i, S, F, T) of

    S log(a_c + i) + F log(b_c + i) - T log(phi_c + i).

:class:`TabulatedBetaBinomial` computes this sum and its gradient with respect to alpha,
log_phi and beta in one pass over the terms (:func:`tabulated_beta_binomial`, compiled with
numba). Written with PyTensor's own operations, the same likelihood needs gathers, their
scatter-add gradients and a few dozen fused elementwise kernels: for the joint response model
of the calcinosis data, numba then took about 12 s instead of 6.5 s to compile the
log-density on a first run, and sampling (4 chains of 2000 iterations) 0.57 s instead of
0.48 s.

The Op's outputs are (log-likelihood, d/d alpha, d/d log_phi, d/d beta); its gradient reuses
the last three, so PyTensor evaluates the node once for the log-density and its gradient.
Second derivatives are not implemented (no sampler here needs them).

:func:`log_rising_factorial` is log (x)_k for the per-study beta-binomial, taken from log x;
its gradient uses :func:`digamma`, a series written with elementwise operations, because
PyTensor's own digamma is a scipy function pointer that its numba cache cannot store.
"""

from __future__ import annotations

import hashlib
import marshal
import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedType, grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op


@numba.njit(cache=True)
def _log_sigmoid(x: float) -> float:
    """log(1 / (1 + exp(-x))), without overflow for any x."""
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=True)
def tabulated_beta_binomial(
    alpha, log_phi, beta, cell_group, cell_covariates, term_cell, term_index, successes,
    failures, trials,
):  # fmt: skip
    """(log-likelihood, d/d alpha, d/d log_phi, d/d beta) of one tabulated stage.

    Parameters
    ----------
    alpha, log_phi : (G,) float arrays
        Logit mean and log concentration per group.
    beta : (B,) float array
        Covariate coefficients (B = 0 without a covariate).
    cell_group : (C,) int array
        Group of each cell.
    cell_covariates : (C, B) float array
        Covariate row of each cell.
    term_cell : (K,) int array
    term_index, successes, failures, trials : (K,) float arrays
        The terms (c, i, S, F, T); padding terms have zero counts.
    """
    n_cells = cell_group.shape[0]
    log_a = np.empty(n_cells)  # log a_c = log phi_c + log sigmoid(eta_c)
    log_b = np.empty(n_cells)  # log b_c = log phi_c + log sigmoid(-eta_c)
    a, b, phi = np.empty(n_cells), np.empty(n_cells), np.empty(n_cells)
    sigmoid = np.empty(n_cells)  # sigmoid(eta_c) = a_c / phi_c
    sigmoid_neg = np.empty(n_cells)  # sigmoid(-eta_c) = b_c / phi_c
    for c in range(n_cells):
        g = cell_group[c]
        eta = alpha[g]
        for j in range(beta.shape[0]):
            eta += cell_covariates[c, j] * beta[j]
        log_a[c] = log_phi[g] + _log_sigmoid(eta)
        log_b[c] = log_phi[g] + _log_sigmoid(-eta)
        a[c], b[c], phi[c] = math.exp(log_a[c]), math.exp(log_b[c]), math.exp(log_phi[g])
        sigmoid[c] = math.exp(_log_sigmoid(eta))
        sigmoid_neg[c] = math.exp(_log_sigmoid(-eta))

    # The log-likelihood and its derivatives with respect to eta_c and log phi_c, using
    # da/d eta = -db/d eta = a sigmoid(-eta), da/d log phi = a, db/d log phi = b. The terms
    # with i = 0 are taken in logs: exact even where a, b or phi underflow.
    logp = 0.0
    d_eta = np.zeros(n_cells)
    d_log_phi = np.zeros(n_cells)
    for k in range(term_cell.shape[0]):
        c = term_cell[k]
        i = term_index[k]
        s, f, t = successes[k], failures[k], trials[k]
        g = cell_group[c]
        if i == 0.0:
            logp += s * log_a[c] + f * log_b[c] - t * log_phi[g]
            d_eta[c] += s * sigmoid_neg[c] - f * sigmoid[c]
            d_log_phi[c] += s + f - t
        else:
            logp += s * math.log(a[c] + i) + f * math.log(b[c] + i) - t * math.log(phi[c] + i)
            d_eta[c] += (s / (a[c] + i) - f / (b[c] + i)) * a[c] * sigmoid_neg[c]
            d_log_phi[c] += s * a[c] / (a[c] + i) + f * b[c] / (b[c] + i)
            d_log_phi[c] -= t * phi[c] / (phi[c] + i)

    grad_alpha = np.zeros(alpha.shape[0])
    grad_log_phi = np.zeros(log_phi.shape[0])
    grad_beta = np.zeros(beta.shape[0])
    for c in range(n_cells):
        g = cell_group[c]
        grad_alpha[g] += d_eta[c]
        grad_log_phi[g] += d_log_phi[c]
        for j in range(beta.shape[0]):
            grad_beta[j] += d_eta[c] * cell_covariates[c, j]
    return logp, grad_alpha, grad_log_phi, grad_beta


def _kernel_version() -> int:
    """A number that changes with the kernel's code: part of PyTensor's numba cache key."""
    code = b"".join(
        marshal.dumps(f.py_func.__code__) for f in (_log_sigmoid, tabulated_beta_binomial)
    )
    return int(hashlib.sha256(code).hexdigest()[:12], 16)


class TabulatedBetaBinomial(Op):
    """One stage's tabulated beta-binomial log-likelihood with its gradient (module docstring).

    Inputs: alpha (G,), log_phi (G,), beta (B,), cell_group (C,) int, cell_covariates (C, B),
    term_cell (K,) int, term_index, successes, failures, trials (K,). Outputs: the
    log-likelihood (scalar) and its gradient with respect to alpha, log_phi and beta.
    """

    __props__ = ()
    n_parameters = 3

    def make_node(self, *inputs) -> Apply:
        if len(inputs) != 10:
            raise TypeError(f"TabulatedBetaBinomial takes 10 inputs, got {len(inputs)}")
        alpha, log_phi, beta, cell_group, covariates, term_cell, *counts = inputs
        floats = [pt.as_tensor_variable(x, dtype="float64") for x in (alpha, log_phi, beta)]
        cell_group = pt.as_tensor_variable(cell_group, dtype="int64")
        covariates = pt.as_tensor_variable(covariates, dtype="float64")
        term_cell = pt.as_tensor_variable(term_cell, dtype="int64")
        counts = [pt.as_tensor_variable(x, dtype="float64") for x in counts]
        ndims = [x.ndim for x in (*floats, cell_group, covariates, term_cell, *counts)]
        if ndims != [1, 1, 1, 1, 2, 1, 1, 1, 1, 1]:
            raise TypeError(f"TabulatedBetaBinomial: unexpected input dimensions {ndims}")
        outputs = [pt.dscalar(), pt.dvector(), pt.dvector(), pt.dvector()]
        return Apply(self, [*floats, cell_group, covariates, term_cell, *counts], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        logp, *gradient = tabulated_beta_binomial(*inputs)
        output_storage[0][0] = np.asarray(logp)
        for storage, values in zip(output_storage[1:], gradient, strict=True):
            storage[0] = values

    def infer_shape(self, fgraph, node, input_shapes):
        return [(), input_shapes[0], input_shapes[1], input_shapes[2]]

    def L_op(self, inputs, outputs, output_grads):
        parameters, data = inputs[: self.n_parameters], inputs[self.n_parameters :]
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            gradient = [grad_not_implemented(self, k, x) for k, x in enumerate(parameters)]
        else:
            gradient = [output_grads[0] * d for d in outputs[1:]]
        offset = self.n_parameters
        return gradient + [grad_undefined(self, offset + k, x) for k, x in enumerate(data)]


def _register_numba() -> None:
    """The numba implementation of the Op, cached on disk by PyTensor under the kernel's version."""
    from pytensor.link.numba.dispatch import basic

    def funcify(op, node=None, **kwargs):
        @numba.njit
        def tabulated_beta_binomial_node(*inputs):
            logp, grad_alpha, grad_log_phi, grad_beta = tabulated_beta_binomial(*inputs)
            return np.array(logp), grad_alpha, grad_log_phi, grad_beta

        return tabulated_beta_binomial_node, _kernel_version()

    register = getattr(basic, "register_funcify_default_op_cache_key", None)
    if register is not None:
        register(TabulatedBetaBinomial)(funcify)
    else:  # older PyTensor: no on-disk cache for custom Ops
        basic.numba_funcify.register(TabulatedBetaBinomial)(lambda op, **kw: funcify(op)[0])


_register_numba()


# --------------------------------------------------------------------------------------------
# log rising factorial with a gradient PyTensor's numba backend can cache
# --------------------------------------------------------------------------------------------

#: Above this x, log (x)_k uses its asymptotic expansion (the log-gamma difference cancels).
HUGE_X = 1e8


def digamma(x):
    """psi(x) for x > 0 from elementwise operations, to about 1e-12 relative error.

    psi(x) = psi(x + 6) - sum_{i < 6} 1 / (x + i), and psi(z) for z >= 6 from its asymptotic
    series ln z - 1/(2z) - 1/(12 z^2) + 1/(120 z^4) - 1/(252 z^6) + 1/(240 z^8) - 1/(132 z^10).
    PyTensor's own digamma calls scipy through a function pointer, which its numba backend
    cannot store in its disk cache: every model whose gradient holds it was compiled anew in
    every process.
    """
    z = x + 6.0
    inv2 = 1.0 / (z * z)
    tail = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return pt.log(z) - 0.5 / z - tail - sum(1.0 / (x + i) for i in range(6))


def _log_rising_factorial_value(log_x, k):
    x = pt.exp(log_x)
    asymptotic = k * log_x + k * (k - 1) / (2 * x)
    # log (x)_k = log x + log (x + 1)_(k-1) for k >= 1: finite where x underflows
    exact = pt.switch(k > 0, log_x + pt.gammaln(x + k) - pt.gammaln(x + 1), 0.0)
    return pt.switch(x > HUGE_X, asymptotic, exact)


def _log_rising_factorial_gradient(inputs, outputs, output_grads):
    """d/d log x of log (x)_k = x (psi(x + k) - psi(x)) = 1 + x (psi(x + k) - psi(x + 1))."""
    log_x, k = inputs
    x = pt.exp(log_x)
    asymptotic = k - k * (k - 1) / (2 * x)
    exact = pt.switch(k > 0, 1.0 + x * (digamma(x + k) - digamma(x + 1)), 0.0)
    gradient = output_grads[0] * pt.switch(x > HUGE_X, asymptotic, exact)
    extra = gradient.ndim - log_x.ndim  # sum over the axes log_x was broadcast along
    if extra:
        gradient = gradient.sum(axis=tuple(range(extra)))
    axes = [i for i, flat in enumerate(log_x.broadcastable) if flat]
    if axes:
        gradient = gradient.sum(axis=axes, keepdims=True)
    return [gradient, DisconnectedType()()]


def log_rising_factorial(log_x, k):
    """log (x)_k = log Gamma(x + k) - log Gamma(x), elementwise, from log x and data k >= 0.

    Taken from log x so that it stays exact where x underflows: log (x)_k = log x +
    log Gamma(x + k) - log Gamma(x + 1) for k >= 1, and 0 for k = 0. For huge x (a beta-binomial
    with a huge concentration) the log-gamma difference cancels catastrophically, where the
    sampler would see a wrong, possibly very high density; above x = 1e8 the asymptotic
    expansion k log x + k (k - 1) / (2 x) is used instead (error O(k^3 / x^2)). The gradient
    with respect to log x is x (psi(x + k) - psi(x)), with :func:`digamma`, so that the compiled
    model can be cached on disk; k, the data, gets none.
    """
    log_x, k = pt.as_tensor_variable(log_x), pt.as_tensor_variable(k)
    inner = [log_x.type(), k.type()]
    op = OpFromGraph(
        inner,
        [_log_rising_factorial_value(*inner)],
        inline=True,
        lop_overrides=_log_rising_factorial_gradient,
        connection_pattern=[[True], [False]],  # k: counts, no gradient
    )
    return op(log_x, k)
