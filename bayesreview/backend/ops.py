"""The beta-binomial log-likelihoods, with their gradients, as PyTensor Ops on numba kernels.

Each Op returns a log-likelihood and its gradient with respect to its parameter inputs from
one call of a numba kernel; its gradient reuses those outputs, so PyTensor evaluates the
node once for the log-density and its gradient (second derivatives are not implemented; no
sampler here needs them). Written with PyTensor's own operations, the same likelihoods need
gathers, their scatter-add gradients and dozens of fused elementwise kernels, which numba
compiles slowly; and the gradient of the log-gamma function, scipy's digamma, cannot be
stored in PyTensor's compile cache at all.

:class:`TabulatedBetaBinomial`: one stage evaluated from sufficient counts
(:class:`bayesreview.model_data.Tabulated`). Cell c (a group by bias-value cell) has

    eta_c = alpha[g_c] + X_c . beta,   a_c = phi_c sigmoid(eta_c),   b_c = phi_c sigmoid(-eta_c),
    phi_c = exp(log_phi[g_c]),

with X the cells' covariate matrix (one-hot non-reference bias levels, or the centred numeric
value; no column without a covariate), and the log-likelihood, up to the binomial
coefficients, is the sum over the terms k = (c, i, S, F, T) of

    S log(a_c + i) + F log(b_c + i) - T log(phi_c + i).

For the joint response model of the calcinosis data, the version written with PyTensor
operations took numba about 12 s instead of 6.5 s to compile on a first run, and sampling
(4 chains of 2000 iterations) 0.57 s instead of 0.48 s.

:class:`BetaBinomialRows`: the per-study beta-binomial of all stages (:func:`beta_binomial_rows`),
with log-gammas and a digamma series (:func:`_digamma`): the likelihood of every data set of
fewer than :data:`bayesreview.model_data.MIN_TABULATED_ROWS` studies, and of those with a
missing bias level (the mixture over levels) or a study of more than 1024 patients.

:class:`LogitNormalRows`: the per-study binomial-normal likelihood of all stages with each
study's effect integrated out by the adaptive Gauss-Hermite rule of
:mod:`bayesreview.integrals` (:func:`logit_normal_rows`), so the logit-normal model samples no
study effects at all.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from bayesreview.integrals import GAUSS_HERMITE_LOG_WEIGHTS, GAUSS_HERMITE_NODES
from bayesreview.known_totals import forward_backward_packed


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


#: Above this x, log (x)_k uses its asymptotic expansion (the log-gamma difference cancels).
HUGE_X = 1e8


@numba.njit(cache=True)
def _digamma(x: float) -> float:
    """psi(x) for x > 0, to about 1e-11 (absolute, or relative where |psi(x)| > 1).

    psi(x) = psi(x + m) - sum_{i < m} 1 / (x + i) up to x + m >= 6, then the asymptotic series
    ln z - 1/(2z) - 1/(12 z^2) + 1/(120 z^4) - 1/(252 z^6) + 1/(240 z^8) - 1/(132 z^10).
    """
    shift = 0.0
    while x < 6.0:
        shift += 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    tail = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return math.log(x) - 0.5 / x - tail - shift


@numba.njit(cache=True)
def _log_rising_factorial(log_x: float, k: float) -> tuple[float, float]:
    """(log (x)_k, its derivative with respect to log x), from log x, for data k >= 0.

    log (x)_k = log Gamma(x + k) - log Gamma(x) = log x + log Gamma(x + k) - log Gamma(x + 1)
    for k >= 1 (exact where x underflows), with derivative x (psi(x + k) - psi(x)) =
    1 + x (psi(x + k) - psi(x + 1)). Above x = 1e8 the log-gamma difference cancels
    catastrophically; there the asymptotic expansion k log x + k (k - 1) / (2 x) is used
    (error O(k^3 / x^2)).
    """
    if k == 0.0:
        return 0.0, 0.0
    x = math.exp(log_x)
    if x > HUGE_X:
        return k * log_x + k * (k - 1) / (2 * x), k - k * (k - 1) / (2 * x)
    value = log_x + math.lgamma(x + k) - math.lgamma(x + 1.0)
    return value, 1.0 + x * (_digamma(x + k) - _digamma(x + 1.0))


@numba.njit(cache=True)
def beta_binomial_term(y: float, n: float, eta: float, log_phi: float):
    """(log BetaBinomial(y | n, mu phi, (1 - mu) phi), d/d eta, d/d log phi), mu = invlogit(eta).

    Written as log C(n, y) + log (a)_y + log (b)_(n-y) - log (phi)_n with rising factorials of
    a = mu phi and b = (1 - mu) phi, taken from their logs (a + b = phi exactly, and nothing is
    lost where a or b underflows).
    """
    log_a = log_phi + _log_sigmoid(eta)
    log_b = log_phi + _log_sigmoid(-eta)
    value_a, slope_a = _log_rising_factorial(log_a, y)
    value_b, slope_b = _log_rising_factorial(log_b, n - y)
    value_phi, slope_phi = _log_rising_factorial(log_phi, n)
    log_choose = math.lgamma(n + 1.0) - math.lgamma(y + 1.0) - math.lgamma(n - y + 1.0)
    # d log a/d eta = sigmoid(-eta), d log b/d eta = -sigmoid(eta)
    d_eta = slope_a * math.exp(_log_sigmoid(-eta)) - slope_b * math.exp(_log_sigmoid(eta))
    return log_choose + value_a + value_b - value_phi, d_eta, slope_a + slope_b - slope_phi


@numba.njit(cache=True)
def _mixture_over_levels(
    values, d_eta, d_scale, d_log_w, log_pi, group, weights, level, known, n_groups
):  # fmt: skip
    """Weighted sum over rows of each row's log-likelihood, marginal over missing levels.

    ``values``, ``d_eta``, ``d_scale`` are (S, J, K): stage s's log-likelihood of row j at
    level k and its derivatives with respect to that stage's linear predictor and scale.
    Row j at level k has L_jk = log pi_k + sum_s values[s, j, k]; a row whose level is known
    contributes w_j L_j,level, a row whose level is missing w_j log sum_k exp(L_jk). Returns
    (log-likelihood, d/d scale (S, G), d/d eta summed per group (S, G), per level (S, K), per
    row (S, J), d/d log_pi (K,), d/d log_w per row (J,)). ``d_log_w`` (J, K) is the
    derivative of row j's first-stage value at level k with respect to its log selection
    weight (:func:`_published`); (0, K) without publication selection.
    """
    n_stages, n_rows, n_levels = values.shape
    selected = d_log_w.shape[0] > 0
    grad_log_w = np.zeros(d_log_w.shape[0])
    total = 0.0
    grad_alpha = np.zeros((n_stages, n_groups))
    grad_scale = np.zeros((n_stages, n_groups))
    grad_level_shift = np.zeros((n_stages, n_levels))
    grad_row_shift = np.zeros((n_stages, n_rows))
    grad_log_pi = np.zeros(n_levels)
    joint = np.empty(n_levels)
    for j in range(n_rows):
        weight = weights[j]
        if weight == 0.0:
            continue
        g = group[j]
        first, last = (level[j], level[j] + 1) if known[j] > 0 else (0, n_levels)
        top = -math.inf
        for k in range(first, last):
            joint[k] = log_pi[k]
            for s in range(n_stages):
                joint[k] += values[s, j, k]
            top = max(top, joint[k])
        if top == -math.inf:
            total = -math.inf
            continue
        mass = 0.0
        for k in range(first, last):
            mass += math.exp(joint[k] - top)
        row = top + math.log(mass)
        total += weight * row
        for k in range(first, last):
            share = weight * math.exp(joint[k] - row)  # w_j times the level's responsibility
            grad_log_pi[k] += share
            if selected:
                grad_log_w[j] += share * d_log_w[j, k]
            for s in range(n_stages):
                grad_alpha[s, g] += share * d_eta[s, j, k]
                grad_scale[s, g] += share * d_scale[s, j, k]
                grad_level_shift[s, k] += share * d_eta[s, j, k]
                grad_row_shift[s, j] += share * d_eta[s, j, k]
    return total, grad_alpha, grad_scale, grad_level_shift, grad_row_shift, grad_log_pi, grad_log_w


@numba.njit(cache=True)
def _known_totals_over_levels(
    values, d_eta, d_scale, d_log_w, group, weights, level, known, totals, n_groups
):  # fmt: skip
    """Like :func:`_mixture_over_levels`, with the level totals known instead of pi.

    Row j at level k has L_jk = w_j sum_s values[s, j, k] (-inf at the other levels where its
    level is known); the log-likelihood is log sum over the assignments with these totals of
    prod_j exp(L_j,b_j), minus log N, by the recursion of
    :func:`bayesreview.known_totals.forward_backward_packed` on ``totals`` (the totals and
    their states, :func:`bayesreview.known_totals.packed_states`), whose level probabilities
    P_jk are the gradient with respect to L_jk. A row of weight 0 stays in the recursion (its
    level counts toward the totals) with a flat likelihood. The gradient with respect to log pi
    is 0.
    """
    n_stages, n_rows, n_levels = values.shape
    loglik = np.zeros((n_rows, n_levels))
    for j in range(n_rows):
        for k in range(n_levels):
            if known[j] > 0 and k != level[j]:
                loglik[j, k] = -math.inf
                continue
            for s in range(n_stages):
                loglik[j, k] += weights[j] * values[s, j, k]
    log_z, probabilities = forward_backward_packed(loglik, totals)
    log_n = math.lgamma(n_rows + 1.0)
    for k in range(n_levels):
        log_n -= math.lgamma(totals[k] + 1.0)
    grad_alpha = np.zeros((n_stages, n_groups))
    grad_scale = np.zeros((n_stages, n_groups))
    grad_level_shift = np.zeros((n_stages, n_levels))
    grad_row_shift = np.zeros((n_stages, n_rows))
    grad_log_pi = np.zeros(n_levels)
    grad_log_w = np.zeros(d_log_w.shape[0])
    if log_z == -math.inf:
        return (
            -math.inf, grad_alpha, grad_scale, grad_level_shift, grad_row_shift, grad_log_pi,
            grad_log_w,
        )  # fmt: skip
    for j in range(n_rows):
        g = group[j]
        for k in range(n_levels):
            share = weights[j] * probabilities[j, k]
            if share == 0.0:
                continue
            if d_log_w.shape[0] > 0:
                grad_log_w[j] += share * d_log_w[j, k]
            for s in range(n_stages):
                grad_alpha[s, g] += share * d_eta[s, j, k]
                grad_scale[s, g] += share * d_scale[s, j, k]
                grad_level_shift[s, k] += share * d_eta[s, j, k]
                grad_row_shift[s, j] += share * d_eta[s, j, k]
    return (
        log_z - log_n, grad_alpha, grad_scale, grad_level_shift, grad_row_shift, grad_log_pi,
        grad_log_w,
    )  # fmt: skip


@numba.njit(cache=True)
def _over_levels(
    values, d_eta, d_scale, d_log_w, log_pi, group, weights, level, known, totals, n_groups
):  # fmt: skip
    """The rows' log-likelihood and gradient, marginal over missing levels: with pi
    (:func:`_mixture_over_levels`), or with the level totals where ``totals[0] >= 0``
    (:func:`_known_totals_over_levels`)."""
    if totals[0] >= 0:
        return _known_totals_over_levels(
            values, d_eta, d_scale, d_log_w, group, weights, level, known, totals, n_groups
        )
    return _mixture_over_levels(
        values, d_eta, d_scale, d_log_w, log_pi, group, weights, level, known, n_groups
    )


@numba.njit(cache=True)
def _log1mexp(x: float) -> float:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and for very negative x."""
    if x > -0.6931471805599453:
        return math.log(-math.expm1(x))
    return math.log1p(-math.exp(x))


@numba.njit(cache=True)
def _published(y: float, log_w: float, value, d_eta, d_scale, zero, zero_d_eta, zero_d_scale):
    """One study's log-likelihood given that it was published, and its derivatives.

    With w(y) = w for y = 0 and 1 otherwise, the published study's likelihood is
    f(y) w(y) / Z, Z = sum over y' of f(y') w(y') = w f(0) + 1 - f(0). From log f(y)
    (``value``) and log f(0) (``zero``), each with its derivatives with respect to the linear
    predictor and the scale, returns (log f(y) + [y = 0] log w - log Z, d/d eta, d/d scale,
    d/d log w). log Z is taken as logaddexp(log w + log f(0), log(1 - f(0))): exact where w
    and 1 - f(0) are both tiny.
    """
    a = log_w + zero
    b = _log1mexp(zero)
    top = max(a, b)
    log_z = top + math.log(math.exp(a - top) + math.exp(b - top))
    shrink = math.exp(zero - log_z) - math.exp(a - log_z)  # (1 - w) f(0) / Z
    is_zero = 1.0 if y == 0.0 else 0.0
    return (
        value + is_zero * log_w - log_z,
        d_eta + shrink * zero_d_eta,
        d_scale + shrink * zero_d_scale,
        is_zero - math.exp(a - log_z),
    )


@numba.njit(cache=True)
def beta_binomial_rows(
    alpha, log_phi, level_shift, row_shift, log_pi, log_w, group, events, trials, weights,
    level, known, totals,
):  # fmt: skip
    """(log-likelihood, its gradient w.r.t. alpha, log_phi, level_shift, row_shift, log_pi,
    log_w).

    The per-study beta-binomial of S stages sharing a bias level: row j at level k has
    L_jk = log pi_k + sum_s log BB(y_sj | n_sj, eta_sjk, log phi_s[g_j]), with
    eta_sjk = alpha_s[g_j] + level_shift_sk + row_shift_sj. A row whose level is known
    contributes w_j L_j,level; a row whose level is missing, w_j log sum_k exp(L_jk) (the
    mixture over levels). Rows with weight 0 contribute nothing.

    Parameters
    ----------
    alpha, log_phi : (S, G) float arrays
    level_shift : (S, K) float array
        Logit shift of each bias level (0 for the reference; K = 1 without levels).
    row_shift : (S, J) float array
        Logit shift of each row (a numeric covariate's term; else 0).
    log_pi : (K,) float array
        Log probability of each level (zeros where no level is missing).
    log_w : (J,) or (0,) float array
        With publication selection, the log relative publication probability of row j had it
        no events in the first stage: its first-stage term is then the likelihood given
        publication (:func:`_published`). Empty without selection.
    group, level : (J,) int arrays
    events, trials : (S, J) float arrays
    weights, known : (J,) float arrays
        Weight of each row, and 1 where its level is known.
    totals : int array
        Where the number of rows at each level is known, those totals followed by the states
        of their recursion (:func:`bayesreview.known_totals.packed_states`): the missing
        levels are then marginalised over the assignments with these totals, and ``log_pi``
        is not used. Otherwise (K,), -1 everywhere.
    """
    n_stages, n_levels = level_shift.shape
    n_rows = group.shape[0]
    values = np.zeros((n_stages, n_rows, n_levels))
    d_eta = np.zeros((n_stages, n_rows, n_levels))
    d_log_phi = np.zeros((n_stages, n_rows, n_levels))
    d_log_w = np.zeros((log_w.shape[0], n_levels))
    for j in range(n_rows):
        if weights[j] == 0.0:
            continue
        g = group[j]
        first, last = (level[j], level[j] + 1) if known[j] > 0 else (0, n_levels)
        for k in range(first, last):
            for s in range(n_stages):
                eta = alpha[s, g] + level_shift[s, k] + row_shift[s, j]
                y, n = events[s, j], trials[s, j]
                value, slope, slope_scale = beta_binomial_term(y, n, eta, log_phi[s, g])
                if s == 0 and log_w.shape[0] > 0:
                    zero, zero_slope, zero_slope_scale = beta_binomial_term(
                        0.0, n, eta, log_phi[s, g]
                    )
                    value, slope, slope_scale, d_log_w[j, k] = _published(
                        y, log_w[j], value, slope, slope_scale, zero, zero_slope, zero_slope_scale
                    )
                values[s, j, k], d_eta[s, j, k], d_log_phi[s, j, k] = value, slope, slope_scale
    return _over_levels(
        values, d_eta, d_log_phi, d_log_w, log_pi, group, weights, level, known, totals,
        alpha.shape[1],
    )  # fmt: skip


#: Gauss-Hermite rule of the logit-normal kernel: the same nodes and log weights as
#: :mod:`bayesreview.integrals` (weight exp(-t^2), with t^2 and -log sqrt(pi) folded in).
_GH_NODES = GAUSS_HERMITE_NODES
_GH_LOG_WEIGHTS = GAUSS_HERMITE_LOG_WEIGHTS


@numba.njit(cache=True)
def logit_normal_term(y: float, n: float, eta: float, tau: float):
    """(log of the binomial-normal marginal likelihood, d/d eta, d/d tau).

    log of the integral of Binomial(y | n, invlogit(eta + tau z)) over z ~ Normal(0, 1), by the
    mode-centred Gauss-Hermite rule of :mod:`bayesreview.integrals` (the same nodes, the same
    mode search). The derivatives are the posterior expectations of the score,
    E[y - n p | y] and E[(y - n p) z | y], by the same rule.
    """
    b = n - y
    lower, upper = -tau * b, tau * y
    p_hat = (y + 0.5) / (n + 1.0)
    precision = n * p_hat * (1.0 - p_hat)
    z = tau * precision * (math.log(p_hat / (1.0 - p_hat)) - eta) / (1.0 + tau * tau * precision)
    z = min(max(z, lower), upper)
    for _ in range(60):
        p = math.exp(_log_sigmoid(eta + tau * z))
        slope = tau * (y - n * p) - z
        curvature = -tau * tau * n * p * (1.0 - p) - 1.0
        if slope > 0:
            lower = z
        elif slope < 0:
            upper = z
        step = z - slope / curvature
        new = step if lower < step < upper else 0.5 * (lower + upper)
        done = abs(new - z) <= 1e-12 * (1.0 + abs(z))
        z = new
        if done:
            break
    p = math.exp(_log_sigmoid(eta + tau * z))
    scale = 1.0 / math.sqrt(tau * tau * n * p * (1.0 - p) + 1.0)
    n_nodes = _GH_NODES.shape[0]
    h = np.empty(n_nodes)
    top = -math.inf
    for k in range(n_nodes):
        zk = z + math.sqrt(2.0) * scale * _GH_NODES[k]
        x = eta + tau * zk
        h[k] = n * _log_sigmoid(x) - b * x - 0.5 * zk * zk + _GH_LOG_WEIGHTS[k]
        top = max(top, h[k])
    mass, score, score_z = 0.0, 0.0, 0.0
    for k in range(n_nodes):
        zk = z + math.sqrt(2.0) * scale * _GH_NODES[k]
        w = math.exp(h[k] - top)
        residual = y - n * math.exp(_log_sigmoid(eta + tau * zk))
        mass += w
        score += w * residual
        score_z += w * residual * zk
    log_choose = math.lgamma(n + 1.0) - math.lgamma(y + 1.0) - math.lgamma(b + 1.0)
    value = log_choose + math.log(scale) + top + math.log(mass)
    return value, score / mass, score_z / mass


@numba.njit(cache=True)
def _logit_normal_loglik_flat(events, trials, eta, tau):
    out = np.empty(eta.shape[0])
    for i in range(eta.shape[0]):
        out[i] = logit_normal_term(events[i], trials[i], eta[i], tau[i])[0]
    return out


def logit_normal_loglik_compiled(y, n, eta, tau) -> np.ndarray:
    """:func:`bayesreview.integrals.logit_normal_loglik` by this module's compiled kernel
    (:func:`logit_normal_term`, the same rule): elementwise over broadcast arrays, some ten
    times faster for the per-study values of every posterior draw."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (y, n, eta, tau)))
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    return _logit_normal_loglik_flat(*flat).reshape(arrays[0].shape)


@numba.njit(cache=True)
def logit_normal_rows(
    alpha, tau, level_shift, row_shift, log_pi, log_w, group, events, trials, weights, level,
    known, totals,
):  # fmt: skip
    """(log-likelihood, its gradient w.r.t. alpha, tau, level_shift, row_shift, log_pi, log_w).

    The per-study binomial-normal likelihood of S stages, each study's effect integrated out
    (:func:`logit_normal_term`), missing bias levels marginalised as in
    :func:`beta_binomial_rows`, whose inputs it shares with tau (S, G) in place of log_phi.
    """
    n_stages, n_levels = level_shift.shape
    n_rows = group.shape[0]
    values = np.zeros((n_stages, n_rows, n_levels))
    d_eta = np.zeros((n_stages, n_rows, n_levels))
    d_tau = np.zeros((n_stages, n_rows, n_levels))
    d_log_w = np.zeros((log_w.shape[0], n_levels))
    for j in range(n_rows):
        if weights[j] == 0.0:
            continue
        g = group[j]
        first, last = (level[j], level[j] + 1) if known[j] > 0 else (0, n_levels)
        for k in range(first, last):
            for s in range(n_stages):
                eta = alpha[s, g] + level_shift[s, k] + row_shift[s, j]
                y, n = events[s, j], trials[s, j]
                value, slope, slope_scale = logit_normal_term(y, n, eta, tau[s, g])
                if s == 0 and log_w.shape[0] > 0:
                    zero, zero_slope, zero_slope_scale = logit_normal_term(0.0, n, eta, tau[s, g])
                    value, slope, slope_scale, d_log_w[j, k] = _published(
                        y, log_w[j], value, slope, slope_scale, zero, zero_slope, zero_slope_scale
                    )
                values[s, j, k], d_eta[s, j, k], d_tau[s, j, k] = value, slope, slope_scale
    return _over_levels(
        values, d_eta, d_tau, d_log_w, log_pi, group, weights, level, known, totals,
        alpha.shape[1],
    )  # fmt: skip


@numba.njit(cache=True)
def simplex_log_probabilities(z: np.ndarray) -> np.ndarray:
    """log pi = log_softmax([z, -sum z]): PyMC's simplex map from K - 1 free coordinates to K
    log-probabilities.

    Written as loops: numba compiles array slicing and reductions (``w[:-1] = z``,
    ``w.max()``) in seconds, a loop in a fraction of one, and every first fit pays for it.
    """
    n_free = z.shape[0]
    w = np.empty(n_free + 1)
    total = 0.0
    for k in range(n_free):
        w[k] = z[k]
        total += z[k]
    w[n_free] = -total
    top = w[0]
    for k in range(1, n_free + 1):
        top = max(top, w[k])
    mass = 0.0
    for k in range(n_free + 1):
        mass += math.exp(w[k] - top)
    log_mass = top + math.log(mass)
    for k in range(n_free + 1):
        w[k] -= log_mass
    return w


@numba.njit(cache=True)
def simplex_log_probabilities_gradient(z: np.ndarray, upstream: np.ndarray) -> np.ndarray:
    """d/dz of sum_k upstream_k log pi_k(z): with d log pi_k / d w_m = [k = m] - pi_m,
    d/dw_m = upstream_m - pi_m sum(upstream), and w = [z, -sum z]. Loops, as
    :func:`simplex_log_probabilities`."""
    log_pi = simplex_log_probabilities(z)
    n_free = z.shape[0]
    upstream_total = 0.0
    for k in range(n_free + 1):
        upstream_total += upstream[k]
    d_last = upstream[n_free] - math.exp(log_pi[n_free]) * upstream_total
    out = np.empty(n_free)
    for k in range(n_free):
        out[k] = upstream[k] - math.exp(log_pi[k]) * upstream_total - d_last
    return out


@numba.njit(cache=True)
def simplex_node(z):
    """:func:`simplex_log_probabilities` on a C-contiguous copy of z: the numba node of
    :class:`SimplexLogProbabilities`, so the kernel is compiled for the one type that the
    Op's Python ``perform`` also gives it."""
    return simplex_log_probabilities(z.copy())


@numba.njit(cache=True)
def simplex_gradient_node(z, upstream):
    """:func:`simplex_log_probabilities_gradient` on C-contiguous copies (as
    :func:`simplex_node`)."""
    return simplex_log_probabilities_gradient(z.copy(), upstream.copy())


@numba.njit(cache=True)
def stage_rows(rows):
    """The (S, n) array of a tuple of S (n,) arrays, one per stage (loops, as
    :func:`simplex_log_probabilities`: a row assignment ``out[s] = rows[s]`` took numba about
    2 s to compile)."""
    out = np.empty((len(rows), rows[0].shape[0]))
    for s in range(len(rows)):
        for j in range(out.shape[1]):
            out[s, j] = rows[s][j]
    return out


@numba.njit(cache=True)
def level_shifts(coefficients):
    """(S, K): each stage's logit shift per bias level, 0 at the reference level, from a tuple
    of S (K - 1,) coefficient vectors (empty without a categorical covariate: K = 1)."""
    out = np.zeros((len(coefficients), coefficients[0].shape[0] + 1))
    for s in range(len(coefficients)):
        for k in range(coefficients[s].shape[0]):
            out[s, k + 1] = coefficients[s][k]
    return out


@numba.njit(cache=True)
def row_log_weights(log_class_weights, classes):
    """Each row's log w, its selection class's (empty without selection: no classes)."""
    if log_class_weights.shape[0] == 0:
        return np.zeros(0)
    return log_class_weights[classes]


@numba.njit(cache=True)
def class_gradient(row_gradient, classes, n_classes: int):
    """The gradient with respect to the classes' log w from the rows' (the adjoint of
    :func:`row_log_weights`)."""
    out = np.zeros(n_classes)
    for j in range(row_gradient.shape[0]):
        out[classes[j]] += row_gradient[j]
    return out


_KERNELS = (
    _log_sigmoid,
    tabulated_beta_binomial,
    _digamma,
    _log_rising_factorial,
    beta_binomial_term,
    _mixture_over_levels,
    forward_backward_packed,
    _known_totals_over_levels,
    _over_levels,
    _log1mexp,
    _published,
    beta_binomial_rows,
    logit_normal_term,
    logit_normal_rows,
    simplex_log_probabilities,
    simplex_log_probabilities_gradient,
    simplex_node,
    simplex_gradient_node,
    stage_rows,
    level_shifts,
    row_log_weights,
    class_gradient,
)


def _code_digest(code) -> bytes:
    """The bytecode, names and constants of ``code`` (nested functions included), as bytes that
    depend on the code alone. ``marshal.dumps`` would not do: its output depends on reference
    counts, which differ once numba has compiled a kernel, so the cache key changed with what
    the process had compiled before."""
    parts = [code.co_code, repr((code.co_names, code.co_varnames, code.co_freevars)).encode()]
    for constant in code.co_consts:
        parts.append(
            _code_digest(constant) if hasattr(constant, "co_code") else repr(constant).encode()
        )
    return hashlib.sha256(b"\x00".join(parts)).digest()


@functools.cache
def _kernel_version() -> int:
    """A number that changes with the kernels' code (and the quadrature rule they read): part
    of PyTensor's numba cache key (computed once per process)."""
    code = b"".join(_code_digest(f.py_func.__code__) for f in _KERNELS)
    code += _GH_NODES.tobytes() + _GH_LOG_WEIGHTS.tobytes()
    code += _NODE_SOURCE.encode() + _ROWS_NODE_SOURCE.encode()
    return int(hashlib.sha256(code).hexdigest()[:12], 16)


def _fresh(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable copy of ``x``."""
    return np.array(x, order="C", copy=True)


class _LikelihoodOp(Op):
    """An Op computing a log-likelihood and its gradient in one call of a numba kernel.

    The kernel takes the parameter inputs first, then the data inputs, and returns the
    log-likelihood followed by its gradient with respect to each parameter input. The Op's
    outputs are the same; its gradient reuses them, so the node is evaluated once for the
    log-density and its gradient. Second derivatives are not implemented.
    """

    __props__ = ()
    #: (ndim, dtype) of each input: the parameters first
    input_types: tuple[tuple[int, str], ...]
    n_parameters: int

    @staticmethod
    def kernel(*inputs):
        raise NotImplementedError

    def make_node(self, *inputs) -> Apply:
        name = type(self).__name__
        if len(inputs) != len(self.input_types):
            raise TypeError(f"{name} takes {len(self.input_types)} inputs, got {len(inputs)}")
        variables = []
        for k, (x, (ndim, dtype)) in enumerate(zip(inputs, self.input_types, strict=True)):
            x = pt.cast(pt.as_tensor_variable(x), dtype)
            if x.ndim != ndim:
                raise TypeError(f"{name}: input {k} has {x.ndim} dimensions, expected {ndim}")
            variables.append(x)
        outputs = [pt.dscalar()] + [x.type() for x in variables[: self.n_parameters]]
        return Apply(self, variables, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        # fresh C-contiguous, writable copies, as the numba node hands the kernel
        # (:data:`_NODE_SOURCE`): the kernel's one compiled version serves both
        logp, *gradient = self.kernel(*(_fresh(x) for x in inputs))
        output_storage[0][0] = np.asarray(logp)
        for storage, values in zip(output_storage[1:], gradient, strict=True):
            storage[0] = values

    def infer_shape(self, fgraph, node, input_shapes):
        return [(), *input_shapes[: self.n_parameters]]

    def L_op(self, inputs, outputs, output_grads):
        parameters, data = inputs[: self.n_parameters], inputs[self.n_parameters :]
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            gradient = [grad_not_implemented(self, k, x) for k, x in enumerate(parameters)]
        else:
            gradient = [output_grads[0] * d for d in outputs[1:]]
        offset = self.n_parameters
        return gradient + [grad_undefined(self, offset + k, x) for k, x in enumerate(data)]


class TabulatedBetaBinomial(_LikelihoodOp):
    """One stage's tabulated beta-binomial log-likelihood with its gradient (module docstring).

    Inputs: alpha (G,), log_phi (G,), beta (B,), cell_group (C,) int, cell_covariates (C, B),
    term_cell (K,) int, term_index, successes, failures, trials (K,). Outputs: the
    log-likelihood (scalar) and its gradient with respect to alpha, log_phi and beta.
    """

    input_types = ((1, "float64"),) * 3 + ((1, "int64"), (2, "float64"), (1, "int64"))
    input_types += ((1, "float64"),) * 4
    n_parameters = 3
    kernel = staticmethod(tabulated_beta_binomial)


class _RowsOp(_LikelihoodOp):
    """Per-study likelihood of ``n_stages`` stages, missing levels marginalised: the kernels
    :func:`beta_binomial_rows` and :func:`logit_normal_rows`, their inputs given per stage.

    Inputs, for each stage s in turn: alpha_s (G,), scale_s (G,) (log_phi or tau), the bias
    coefficients of the non-reference levels (K - 1,) (empty without a categorical covariate)
    and row_shift_s (J,); then log_pi (K,) and the selection classes' log w (D,) (empty
    without selection). Those are the parameters; the data follow: group (J,) int, for each
    stage events_s and trials_s (J,), then weights (J,), level (J,) int, known (J,), totals
    int (the level totals and their states, or (K,) of -1: :func:`beta_binomial_rows`) and
    each row's selection class (J,) int (empty without selection). The outputs are the
    log-likelihood and its gradient with respect to each parameter.

    Taking each stage's vectors as they are, rather than stacked into (S, G) and (S, J)
    arrays in the graph, keeps the joins, and the splits of their gradients, out of the
    compiled log-density: the node packs them itself (:data:`_ROWS_NODE_SOURCE`).
    """

    __props__ = ("n_stages",)

    def __init__(self, n_stages: int = 1):
        if n_stages < 1:
            raise ValueError(f"{type(self).__name__}: n_stages must be at least 1, got {n_stages}")
        self.n_stages = n_stages
        vector, integers = (1, "float64"), (1, "int64")
        self.input_types = (vector,) * (4 * n_stages + 2) + (integers,)
        self.input_types += (vector,) * (2 * n_stages + 1) + (integers, vector, integers, integers)
        self.n_parameters = 4 * n_stages + 2

    def perform(self, node, inputs, output_storage) -> None:
        """The kernel called from Python on the arrays :data:`_ROWS_NODE_SOURCE` packs, built
        with numpy: fresh C-contiguous, writable arrays of the types the numba node hands it,
        so that evaluating the graph in Python compiles nothing."""
        n = self.n_stages
        stages = [inputs[4 * s : 4 * s + 4] for s in range(n)]
        log_pi, log_class_w, group = inputs[4 * n : 4 * n + 3]
        counts = inputs[4 * n + 3 : 6 * n + 3]
        weights, level, known, totals, classes = inputs[6 * n + 3 :]
        coefficients = np.array([stage[2] for stage in stages], dtype=float)
        level_shift = np.zeros((n, coefficients.shape[1] + 1))
        level_shift[:, 1:] = coefficients
        logp, d_alpha, d_scale, d_level_shift, d_row_shift, d_log_pi, d_log_w = self.kernel(
            np.array([stage[0] for stage in stages], dtype=float),
            np.array([stage[1] for stage in stages], dtype=float),
            level_shift,
            np.array([stage[3] for stage in stages], dtype=float),
            _fresh(log_pi),
            np.array(log_class_w[classes], dtype=float),
            _fresh(group),
            np.array(counts[0::2], dtype=float),
            np.array(counts[1::2], dtype=float),
            _fresh(weights),
            _fresh(level),
            _fresh(known),
            _fresh(totals),
        )
        gradient = []
        for s in range(n):
            gradient += [d_alpha[s], d_scale[s], d_level_shift[s, 1:], d_row_shift[s]]
        class_w = np.bincount(classes, weights=d_log_w, minlength=log_class_w.shape[0])
        gradient += [d_log_pi, class_w]
        output_storage[0][0] = np.asarray(logp)
        for storage, values in zip(output_storage[1:], gradient, strict=True):
            storage[0] = np.array(values, dtype=float)


class BetaBinomialRows(_RowsOp):
    """The per-study beta-binomial of all stages, missing bias levels marginalised.

    The inputs of :class:`_RowsOp` with log_phi as the scale (:func:`beta_binomial_rows`).
    """

    kernel = staticmethod(beta_binomial_rows)


class LogitNormalRows(_RowsOp):
    """The per-study binomial-normal likelihood of all stages, study effects integrated out.

    The inputs of :class:`_RowsOp` with tau as the scale (:func:`logit_normal_rows`).
    """

    kernel = staticmethod(logit_normal_rows)


class SimplexLogProbabilities(Op):
    """log pi (K,) from the K - 1 free coordinates z of PyMC's simplex scale
    (:func:`simplex_log_probabilities`), its gradient one node
    (:class:`SimplexLogProbabilitiesGradient`): PyTensor's own graph of the same map and its
    gradient (a join, log-softmax, softmax, split) is a third of the missing-level model's
    log-density, and compiling it costs seconds."""

    __props__ = ()

    def make_node(self, z) -> Apply:
        z = pt.cast(pt.as_tensor_variable(z), "float64")
        if z.ndim != 1:
            raise TypeError(f"SimplexLogProbabilities: z has {z.ndim} dimensions, expected 1")
        return Apply(self, [z], [pt.dvector()])

    def perform(self, node, inputs, output_storage) -> None:
        output_storage[0][0] = simplex_log_probabilities(_fresh(inputs[0]))

    def infer_shape(self, fgraph, node, input_shapes):
        return [(input_shapes[0][0] + 1,)]

    def L_op(self, inputs, outputs, output_grads):
        return [SimplexLogProbabilitiesGradient()(inputs[0], output_grads[0])]


class SimplexLogProbabilitiesGradient(Op):
    """The gradient of ``sum(upstream * log pi(z))`` with respect to z
    (:func:`simplex_log_probabilities_gradient`); no second derivatives."""

    __props__ = ()

    def make_node(self, z, upstream) -> Apply:
        z = pt.cast(pt.as_tensor_variable(z), "float64")
        upstream = pt.cast(pt.as_tensor_variable(upstream), "float64")
        return Apply(self, [z, upstream], [pt.dvector()])

    def perform(self, node, inputs, output_storage) -> None:
        output_storage[0][0] = simplex_log_probabilities_gradient(*(_fresh(x) for x in inputs))

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def L_op(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, k, x) for k, x in enumerate(inputs)]


#: The numba implementation of a likelihood Op's node (arguments x0, x1, ...). It hands the
#: kernel a C-contiguous, writable copy of every input, so that the kernel is compiled for one
#: type per input: PyTensor passes a strided view or a read-only constant in some graphs, and
#: each such variant would compile the whole kernel again (the joint response model's first
#: fit compiled it three times, about 8 s each). The copies are small: rows, cells or terms.
_NODE_SOURCE = """
def likelihood_node({arguments}):
    result = kernel({copies})
    return (np.array(result[0]),) + result[1:]
"""


def _node_function(kernel, n_inputs: int):
    """The njit-compiled :data:`_NODE_SOURCE` for ``kernel`` with ``n_inputs`` inputs."""
    names = [f"x{k}" for k in range(n_inputs)]
    source = _NODE_SOURCE.format(
        arguments=", ".join(names), copies=", ".join(f"{name}.copy()" for name in names)
    )
    namespace = {"kernel": kernel, "np": np}
    exec(compile(source, "<bayesreview likelihood node>", "exec"), namespace)
    return numba.njit(namespace["likelihood_node"])


#: The numba implementation of a rows Op's node: packs the stages' inputs into the (S, ...)
#: arrays of the kernel (fresh C-contiguous arrays, as :data:`_NODE_SOURCE` does), gathers
#: each row's log w from its class's, and hands back the gradient per stage and per class.
_ROWS_NODE_SOURCE = """
def likelihood_node({arguments}):
    row_classes = classes.copy()
    logp, d_alpha, d_scale, d_level_shift, d_row_shift, d_log_pi, d_log_w = kernel(
        stage_rows(({alphas})), stage_rows(({scales})), level_shifts(({coefficients})),
        stage_rows(({row_shifts})), log_pi.copy(),
        row_log_weights(log_class_w.copy(), row_classes), group.copy(),
        stage_rows(({events})), stage_rows(({trials})), weights.copy(), level.copy(),
        known.copy(), totals.copy(),
    )
    return (np.array(logp), {gradients}, d_log_pi,
            class_gradient(d_log_w, row_classes, log_class_w.shape[0]))
"""

_STAGE_PARAMETERS = ("alpha", "scale", "coefficients", "row_shift")


@functools.cache
def _rows_node_function(kernel, n_stages: int):
    """The njit-compiled :data:`_ROWS_NODE_SOURCE` for ``kernel`` with ``n_stages`` stages."""
    stages = range(n_stages)
    names = [f"{name}_{s}" for s in stages for name in _STAGE_PARAMETERS]
    names += ["log_pi", "log_class_w", "group"]
    names += [f"{name}_{s}" for s in stages for name in ("events", "trials")]
    names += ["weights", "level", "known", "totals", "classes"]

    def copies(name: str) -> str:
        return "".join(f"{name}_{s}.copy(), " for s in stages)

    gradients = ", ".join(
        f"d_alpha[{s}].copy(), d_scale[{s}].copy(), d_level_shift[{s}, 1:].copy(), "
        f"d_row_shift[{s}].copy()"
        for s in stages
    )
    source = _ROWS_NODE_SOURCE.format(
        arguments=", ".join(names),
        alphas=copies("alpha"),
        scales=copies("scale"),
        coefficients=copies("coefficients"),
        row_shifts=copies("row_shift"),
        events=copies("events"),
        trials=copies("trials"),
        gradients=gradients,
    )
    namespace = {
        "kernel": kernel,
        "np": np,
        "stage_rows": stage_rows,
        "level_shifts": level_shifts,
        "row_log_weights": row_log_weights,
        "class_gradient": class_gradient,
    }
    exec(compile(source, "<bayesreview rows likelihood node>", "exec"), namespace)
    return numba.njit(namespace["likelihood_node"])


def _register_numba() -> None:
    """The Ops' numba implementation, cached on disk by PyTensor under the kernels' version."""
    from pytensor.link.numba.dispatch import basic

    def funcify(op, node=None, **kwargs):
        return _node_function(op.kernel, len(op.input_types)), _kernel_version()

    def rows(op, node=None, **kwargs):
        return _rows_node_function(op.kernel, op.n_stages), _kernel_version()

    def simplex(kernel):
        return lambda op, node=None, **kwargs: (kernel, _kernel_version())

    register = getattr(basic, "register_funcify_default_op_cache_key", None)
    implementations = {
        TabulatedBetaBinomial: funcify,
        BetaBinomialRows: rows,
        LogitNormalRows: rows,
        SimplexLogProbabilities: simplex(simplex_node),
        SimplexLogProbabilitiesGradient: simplex(simplex_gradient_node),
    }
    for op_type, implementation in implementations.items():
        if register is not None:
            register(op_type)(implementation)
        else:  # older PyTensor: no on-disk cache for custom Ops
            basic.numba_funcify.register(op_type)(
                lambda op, implementation=implementation, **kw: implementation(op)[0]
            )


_register_numba()
