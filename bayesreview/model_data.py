"""From a study table to the arrays a model needs: outcome counts, group and bias codes.

Everything here is pure pandas/numpy. :class:`ModelData` is what the PyMC builders in
:mod:`bayesreview.backend.models` and the post-processing in :mod:`bayesreview.quantities` consume.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesreview.data import FIT_OUTCOMES, outcome_counts, outcomes_of
from bayesreview.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bayesreview.spec import ModelSpec


@dataclass(frozen=True)
class Bias:
    """How the bias (or study-design) covariate enters the model.

    ``kind`` is ``"categorical"`` (one logit shift per non-reference level, missing levels
    marginalised) or ``"numeric"`` (one slope). ``codes`` holds, per row, the level index
    (reference = 0, missing = -1) or the numeric value minus ``centre`` (the reference value:
    the mean unless ``bias_reference`` is given), so that the adjusted rate is the rate at the
    centre, not at an extrapolated zero.

    Missing levels are marginalised with level probabilities pi ~ Dirichlet(``prior_counts``),
    or, where ``totals`` gives the number of studies at each level (in the order of
    ``levels``), over every assignment of levels consistent with those totals
    (:mod:`bayesreview.known_totals`).
    """

    column: str
    kind: str
    levels: tuple[str, ...] = ()
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prior_counts: tuple[float, ...] = ()
    centre: float = 0.0
    totals: tuple[int, ...] | None = None

    @property
    def known_totals(self) -> bool:
        """True where missing levels are marginalised given known totals."""
        return self.totals is not None and self.n_missing > 0

    @property
    def n_missing(self) -> int:
        return int((self.codes < 0).sum()) if self.kind == "categorical" else 0


@dataclass(frozen=True)
class ModelData:
    """The arrays behind one fit.

    Attributes
    ----------
    outcome
        ``"any"``, ``"complete"``, ``"partial"``, ``"events"``, or ``"response"`` for the joint
        sequential model (stage 1: any response of ``trials``; stage 2: complete of ``any``).
    groups
        Labels of the pooled units (modalities), in order of first appearance.
    group_idx, trials, events
        Per row: group index, denominator, and events of the modelled outcome. For
        ``"response"``, ``events`` holds any-response counts and ``complete`` the complete
        responses (the second stage's events; its trials are ``events``).
    weights
        How many identical studies a row stands for (1 unless collapsed).
    study
        Study labels per row (``"k identical studies"`` after collapsing).
    prior_only_groups
        How many of the last ``groups`` are padding with no rows (:func:`pad_groups`): their
        parameters enter no likelihood term and are dropped after sampling.
    """

    outcome: str
    by: str
    unknown: str
    groups: tuple[str, ...]
    group_idx: np.ndarray
    trials: np.ndarray
    events: np.ndarray
    study: tuple[str, ...]
    weights: np.ndarray
    complete: np.ndarray | None = None
    bias: Bias | None = None
    prior_only_groups: int = 0

    @property
    def n_rows(self) -> int:
        return len(self.trials)

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def n_data_groups(self) -> int:
        """Groups that hold studies (all but the prior-only padding)."""
        return self.n_groups - self.prior_only_groups

    @property
    def joint(self) -> bool:
        return self.outcome == "response"

    @property
    def reported_outcomes(self) -> tuple[str, ...]:
        """Outcomes a fit reports: all three for the joint model, else the one fitted."""
        return ("complete", "partial", "any") if self.joint else (self.outcome,)

    @property
    def study_labels(self) -> tuple[str, ...]:
        """Unique per-row labels for InferenceData coordinates.

        The study label, or ``"label [group]"`` where a label appears in several groups (the
        arms of one study), numbered ``#2, #3, ...`` if still repeated.
        """
        study = pd.Series(self.study, dtype=object)
        repeated = (study.map(study.value_counts()) > 1).to_numpy()
        group = pd.Series(np.asarray(self.groups, dtype=object)[self.group_idx], dtype=object)
        labels = study.where(~repeated, study + " [" + group + "]")
        seen = labels.groupby(labels, sort=False).cumcount().to_numpy() + 1
        unique = labels.where(seen == 1, labels + " #" + pd.Series(seen).astype(str))
        return tuple(unique)

    def stage_counts(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(stage name, events, trials) of each likelihood stage."""
        if self.joint:
            return [("", self.events, self.trials), ("_cond", self.complete, self.events)]
        return [("", self.events, self.trials)]

    def structure(self) -> tuple:
        """What fixes the compiled model: the outcome, the number of groups and the bias
        structure; not the counts, nor the number of rows (the model reads them at run time)."""
        bias = (
            None
            if self.bias is None
            else (
                self.bias.kind,
                len(self.bias.levels),
                self.bias.n_missing > 0,
                self.bias.known_totals,
            )
        )
        return (self.outcome, self.n_groups, bias)


def _bias(
    studies: pd.DataFrame,
    column: str,
    reference: str | None,
    prior_counts,
    totals: Mapping[str, int] | None = None,
) -> Bias:
    if column not in studies:
        raise DataError(f"bias={column!r}: no such column; columns are {', '.join(studies)}")
    values = studies[column]
    if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = [str(c) for c in values.cat.categories]
            if reference is None:
                reference = levels[0] if values.cat.ordered else None
        else:
            levels = sorted({str(v) for v in values.dropna()})
        labels = [None if pd.isna(v) else str(v) for v in values.astype(object)]
        if reference is None:
            counts = pd.Series([v for v in labels if v is not None]).value_counts()
            if counts.empty:
                raise DataError(
                    f"bias={column!r}: no study has a known level, so no reference level can be "
                    "chosen; give bias_reference and the level names through a categorical column"
                )
            reference = str(counts.index[0])
        if reference not in levels:
            raise DataError(
                f"bias_reference={reference!r} is not a level of column {column!r} "
                f"(levels: {', '.join(levels)})"
            )
        levels = [reference] + [lv for lv in levels if lv != reference]
        if len(levels) < 2:
            raise DataError(
                f"bias={column!r}: only one level ({levels[0]!r}); a covariate needs at least two"
            )
        index = {lv: i for i, lv in enumerate(levels)}
        codes = np.array([index[v] if v is not None else -1 for v in labels], dtype=np.int64)
        if prior_counts is None:
            counts_tuple = tuple(1.0 for _ in levels)
        else:
            if isinstance(prior_counts, dict):
                unknown = sorted(set(prior_counts) - set(levels))
                if unknown:
                    raise DataError(
                        f"bias_prior_counts: unknown level(s) {', '.join(map(str, unknown))}; "
                        f"levels of {column!r}: {', '.join(levels)}"
                    )
                counts_tuple = tuple(float(prior_counts.get(lv, 1.0)) for lv in levels)
            else:
                counts_tuple = tuple(float(c) for c in prior_counts)
                if len(counts_tuple) != len(levels):
                    raise DataError(
                        f"bias_prior_counts: {len(counts_tuple)} values for {len(levels)} levels "
                        f"({', '.join(levels)}); give a dict level -> count"
                    )
            if not all(np.isfinite(c) and c > 0 for c in counts_tuple):
                raise DataError("bias_prior_counts: every count must be a finite number > 0")
        known_totals = None
        if totals is not None:
            from bayesreview.known_totals import check_totals  # numba: only when asked for

            if prior_counts is not None:
                raise DataError(
                    "give bias_totals (the number of studies at each level) or "
                    "bias_prior_counts (Dirichlet prior counts of the level probabilities), "
                    "not both"
                )
            observed = [None if c < 0 else levels[c] for c in codes]
            known_totals = tuple(int(t) for t in check_totals(levels, totals, observed))
        return Bias(column, "categorical", tuple(levels), codes, counts_tuple, totals=known_totals)

    numeric = values.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(numeric))
    if bad.size:
        rows = ", ".join(str(r + 1) for r in bad[:10])
        raise DataError(
            f"bias={column!r} is numeric but missing or infinite in row(s) {rows}; only a "
            "categorical covariate's missing levels can be marginalised"
        )
    if prior_counts is not None or totals is not None:
        raise DataError(
            "bias_prior_counts and bias_totals apply to a categorical bias covariate only"
        )
    try:
        centre = float(numeric.mean() if reference is None else reference)
    except (TypeError, ValueError):
        raise DataError(
            f"bias_reference={reference!r}: column {column!r} is numeric, so the reference must "
            "be a number"
        ) from None
    return Bias(column, "numeric", (), numeric - centre, centre=centre)


def model_data(
    studies: pd.DataFrame,
    outcome: str = "any",
    by: str = "modality",
    bias: str | None = None,
    bias_reference: str | None = None,
    bias_prior_counts=None,
    unknown: str = "failure",
    collapse: bool = False,
    bias_totals: Mapping[str, int] | None = None,
) -> ModelData:
    """Arrays for one fit (see :func:`bayesreview.fit` for the arguments).

    With ``collapse=True`` rows identical in group, bias code, trials and events (and complete
    events for the joint model) are merged into one row with a weight: the beta-binomial
    likelihood depends on a study only through these, so the posterior is unchanged.
    """
    if outcome not in FIT_OUTCOMES:
        raise DataError(f"outcome={outcome!r}: must be one of {', '.join(FIT_OUTCOMES)}")
    available = outcomes_of(studies)
    if outcome == "response" and "complete" not in studies:
        raise DataError("outcome='response' needs the complete/partial/none/unknown columns")
    if by not in studies:
        raise DataError(f"by={by!r}: no such column; columns are {', '.join(studies.columns)}")
    if studies[by].isna().any():
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(studies[by].isna().to_numpy())[:10])
        raise DataError(f"column {by!r} (by) is missing in row(s) {rows}")
    labels = studies[by].astype(str).to_numpy()
    groups = tuple(pd.unique(labels))
    group_idx = pd.Index(groups).get_indexer(labels).astype(np.int64)

    if outcome == "response":
        any_events, trials = outcome_counts(studies, "any", unknown)
        complete = outcome_counts(studies, "complete", unknown)[0]
        events = any_events
    else:
        if outcome not in available:
            raise DataError(
                f"outcome={outcome!r}: this study table supports {', '.join(available)}"
            )
        events, trials = outcome_counts(studies, outcome, unknown)
        complete = None

    if bias is None and bias_totals is not None:
        raise DataError("bias_totals: give the covariate too (bias=...)")
    bias_info = (
        None
        if bias is None
        else _bias(studies, bias, bias_reference, bias_prior_counts, bias_totals)
    )
    data = ModelData(
        outcome=outcome,
        by=by,
        unknown=unknown,
        groups=groups,
        group_idx=group_idx,
        trials=trials.astype(np.int64),
        events=events.astype(np.int64),
        study=tuple(studies["study"].astype(str)),
        weights=np.ones(len(studies), dtype=np.int64),
        complete=None if complete is None else complete.astype(np.int64),
        bias=bias_info,
    )
    return collapse_identical(data) if collapse else data


def take_rows(data: ModelData, rows: np.ndarray, study: tuple[str, ...] | None = None) -> ModelData:
    """The rows ``rows`` (integer positions) of ``data``, with their study labels or ``study``."""
    bias = None
    if data.bias is not None:
        b = data.bias
        bias = replace(b, codes=b.codes[rows])
    return ModelData(
        outcome=data.outcome,
        by=data.by,
        unknown=data.unknown,
        groups=data.groups,
        group_idx=data.group_idx[rows],
        trials=data.trials[rows],
        events=data.events[rows],
        study=tuple(data.study[r] for r in rows) if study is None else study,
        weights=data.weights[rows],
        complete=None if data.complete is None else data.complete[rows],
        bias=bias,
    )


def collapse_identical(data: ModelData) -> ModelData:
    """Merge rows identical in everything the beta-binomial likelihood sees, with weights.

    Not with known level totals (:attr:`Bias.known_totals`): each study then needs a level of
    its own, and ``data`` is returned as it is.
    """
    if data.bias is not None and data.bias.known_totals:
        return data
    columns = [data.group_idx, data.trials, data.events]
    if data.complete is not None:
        columns.append(data.complete)
    if data.bias is not None:
        columns.append(data.bias.codes)
    keys = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # keep the order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    weights = np.bincount(rank[inverse], weights=data.weights, minlength=len(order))
    rows = first[order]
    study = tuple(
        data.study[r] if w == 1 else f"{int(w)} studies like {data.study[r]}"
        for r, w in zip(rows, weights, strict=True)
    )
    return replace(take_rows(data, rows, study), weights=weights.astype(np.int64))


def padded_size(n: int, smallest: int) -> int:
    """The next power of two at or above ``n``, at least ``smallest``."""
    return max(smallest, 1 << (max(n, 1) - 1).bit_length())


#: Name of the model's data container marking the prior-only groups (1) among the groups.
PRIOR_ONLY_GROUP = "prior_only_group"


def prior_only_groups(data: ModelData) -> np.ndarray:
    """1.0 for each prior-only (padding) group of ``data``, 0.0 for a group with studies."""
    return (np.arange(data.n_groups) >= data.n_data_groups).astype(float)


#: Data sets are fitted with their groups padded to :func:`padded_size` of at least this many,
#: so that one compiled model serves every data set of up to this many groups.
SMALLEST_GROUP_PADDING = 8


def pad_groups(data: ModelData, n_groups: int) -> ModelData:
    """``data`` with prior-only groups (no rows) appended up to ``n_groups``.

    Each group's parameters are a priori independent of the others' given the pooled ones
    (location and spread), so a group with no studies leaves the posterior of the rest
    unchanged. Its own parameters are sampled as standard normals on the sampler's scale
    (:func:`bayesreview.backend.models.group_variable`) and dropped after sampling. Whether
    heterogeneity is pooled is decided on the groups that hold studies
    (:attr:`ModelData.n_data_groups`).
    """
    extra = n_groups - data.n_groups
    if extra <= 0:
        return data
    labels = tuple(f"(prior-only group {i + 1})" for i in range(extra))
    return replace(
        data, groups=data.groups + labels, prior_only_groups=data.prior_only_groups + extra
    )


#: Largest denominator for which the beta-binomial likelihood is tabulated (see ``tabulate``).
MAX_TABULATED_TRIALS = 1024


#: Names of the model's data containers for a tabulated stage's terms (:class:`Tabulated`).
TERM_NAMES = ("term_cell", "term_index", "events_above", "failures_above", "trials_above")


@dataclass(frozen=True)
class Tabulated:
    """The beta-binomial likelihood's sufficient counts per cell (group x bias value).

    With a = mu phi, b = (1 - mu) phi shared by every study of a cell, the weighted sum of the
    studies' log-likelihoods is, up to the binomial coefficients (a constant),

        sum_i [ S_i log(a + i) + F_i log(b + i) - T_i log(phi + i) ],  i = 0, 1, ...

    with S_i, F_i, T_i the (weighted) numbers of studies with y > i, n - y > i and n > i: the
    rising factorials written out. Only the terms with T_i > 0 (i below the cell's largest n)
    are kept, as a list of (cell, i, S_i, F_i, T_i): its length is the sum over cells of their
    largest n, whatever the number of studies, and it has no cancellation for any phi.
    ``terms`` maps a stage's suffix to the arrays (cell, i, S, F, T), each of one length.
    """

    cell_group: np.ndarray
    cell_code: np.ndarray
    terms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    @property
    def n_cells(self) -> int:
        return len(self.cell_group)

    @property
    def n_terms(self) -> tuple[int, ...]:
        """Number of terms of each stage."""
        return tuple(len(cell) for cell, *_ in self.terms.values())


#: Fewest rows for which the beta-binomial likelihood is tabulated. Below it the per-row
#: likelihood costs little more to evaluate, and every small data set then shares one compiled
#: model whatever its denominators (the tabulated one is compiled for large data sets only).
MIN_TABULATED_ROWS = 256


def can_tabulate(data: ModelData) -> bool:
    """Whether :func:`tabulate` applies: many rows, no missing bias level, no huge
    denominator."""
    return (
        (data.bias is None or data.bias.n_missing == 0)
        and data.n_rows >= MIN_TABULATED_ROWS
        and int(data.trials.max()) <= MAX_TABULATED_TRIALS
    )


def _at_least(values: np.ndarray, cell: np.ndarray, n_cells: int, width: int, weights):
    """(cells, width) matrix of the weighted number of rows with value > i, i = 0..width-1."""
    histogram = np.bincount(
        cell * (width + 1) + values, weights=weights, minlength=n_cells * (width + 1)
    ).reshape(n_cells, width + 1)
    at_least = np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1]  # rows with value >= v
    return at_least[:, 1:]


def tabulate(data: ModelData) -> Tabulated:
    """Sufficient counts of ``data`` per (group, bias value) cell; see :class:`Tabulated`."""
    codes = np.zeros(data.n_rows) if data.bias is None else data.bias.codes.astype(float)
    keys = np.column_stack([data.group_idx.astype(float), codes])
    unique, cell = np.unique(keys, axis=0, return_inverse=True)
    cell = cell.reshape(-1)
    n_cells = len(unique)
    width = int(data.trials.max())
    weights = data.weights.astype(float)
    terms = {}
    for suffix, events, trials in data.stage_counts():
        above = [
            _at_least(values, cell, n_cells, width, weights)
            for values in (events, trials - events, trials)
        ]
        term_cell, term_index = np.nonzero(above[2] > 0)
        terms[suffix] = (
            term_cell.astype(np.int64),
            term_index.astype(float),
            *(counts[term_cell, term_index] for counts in above),
        )
    return Tabulated(cell_group=unique[:, 0].astype(np.int64), cell_code=unique[:, 1], terms=terms)


def cell_covariates(data: ModelData, tabulated: Tabulated) -> np.ndarray:
    """(cells, B) covariate matrix of the tabulated cells: the bias term is X beta.

    One 0/1 column per non-reference level of a categorical covariate, the centred value of a
    numeric one, no column without a covariate.
    """
    bias = data.bias
    if bias is None:
        return np.zeros((tabulated.n_cells, 0))
    if bias.kind == "numeric":
        return tabulated.cell_code.astype(float)[:, None]
    levels = np.arange(1, len(bias.levels))
    return (tabulated.cell_code.astype(np.int64)[:, None] == levels[None, :]).astype(float)


def selection_classes(data: ModelData) -> np.ndarray:
    """Each row's publication-selection class, an index into
    :data:`bayesreview.spec.SELECTION_CLASSES`: 0 for a case report (one patient in the
    first stage's denominator), 1 for a case series (more than one)."""
    trials = data.stage_counts()[0][2]
    return np.where(trials == 1, 0, 1).astype(np.int64)


def tabulated_counts(data: ModelData, spec: ModelSpec) -> Tabulated | None:
    """The beta-binomial likelihood's sufficient counts, where they apply; else None.

    They apply to the beta-binomial without publication selection, with no missing bias level
    and no n above 1024 (:func:`bayesreview.model_data.can_tabulate`).
    """
    if spec.likelihood == "beta_binomial" and spec.selection is None and can_tabulate(data):
        return tabulate(data)
    return None


# ---------------------------------------------------------------------------------------------
# Which group anchors the beta-binomial's pooled log concentration
# ---------------------------------------------------------------------------------------------

#: Grid of log phi on which a group's profile likelihood is evaluated (phi from 0.02 to 1.6e5).
LOG_PHI_GRID = np.linspace(-4.0, 12.0, 321)
#: A group's pooled log phi anchors the location when the half-width of its likelihood interval
#: for log phi is below this multiple of the prior median of the spread across groups.
ANCHOR_MAX_SE_RATIO = 1.0


def log_phi_interval_half_width(
    events: np.ndarray, trials: np.ndarray, weights: np.ndarray, rate: np.ndarray
) -> float:
    """Half-width of the likelihood interval for log phi of one group's studies (about one SE).

    The beta-binomial log-likelihood of the studies with mean rate ``rate`` (per study) is
    evaluated on :data:`LOG_PHI_GRID`; the interval is where it lies within 0.5 of its maximum.
    ``inf`` where the interval is open on either side: homogeneous studies (phi unbounded
    above), case reports (no information), or extreme overdispersion.
    """
    from scipy.special import betaln

    keep = (trials > 0) & (weights > 0)
    rows = np.column_stack([events[keep], trials[keep], rate[keep]])
    if not len(rows):
        return np.inf
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights[keep], minlength=len(unique))
    y, n, mu = unique.T
    phi = np.exp(LOG_PHI_GRID)[:, None]
    loglik = (betaln(y + mu * phi, n - y + (1 - mu) * phi) - betaln(mu * phi, (1 - mu) * phi)) @ (
        weight
    )
    top = int(np.argmax(loglik))
    inside = loglik >= loglik[top] - 0.5
    if inside[0] or inside[-1]:
        return np.inf
    below = np.flatnonzero(~inside[:top])[-1]
    above = top + np.flatnonzero(~inside[top:])[0]
    return float(LOG_PHI_GRID[above] - LOG_PHI_GRID[below]) / 2


def _cell_rates(data: ModelData, events: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Per row, the crude rate of its group x known bias level, clipped to [0.02, 0.98]."""
    bias = data.bias
    level = bias.codes if bias is not None and bias.kind == "categorical" else np.zeros(data.n_rows)
    cell = data.group_idx * (int(level.max()) + 2) + (level.astype(int) + 1)
    weighted_events = np.bincount(cell, events * data.weights)
    weighted_trials = np.bincount(cell, trials * data.weights)
    rate = weighted_events[cell] / np.maximum(weighted_trials[cell], 1e-12)
    return np.clip(rate, 0.02, 0.98)


def anchor_groups(data: ModelData, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per stage (suffix), a one-hot array over groups marking the group that anchors log phi.

    Under partial pooling of the beta-binomial's log concentrations over two groups or more,
    each group's log phi_m is non-centred, log phi_m = log_phi + log_phi_sd z_m, which suits
    groups whose studies say little about their heterogeneity (case reports, small series). A
    group whose likelihood pins its log phi down more sharply than the prior spread across
    groups (:func:`log_phi_interval_half_width` below :data:`ANCHOR_MAX_SE_RATIO` times the
    prior median of ``log_concentration_sd``) would bend that form into a funnel; the most
    sharply identified such group then anchors the location instead: its log phi_a is sampled
    directly and log_phi = log phi_a - log_phi_sd w (:mod:`bayesreview.backend.models`). All zeros
    (no anchor) otherwise, and for the logit-normal, whose log tau is always non-centred.
    """
    out = {}
    for suffix, events, trials in data.stage_counts():
        stage = "conditional" if suffix else "marginal"
        anchor = np.zeros(data.n_groups)
        if spec.likelihood == "beta_binomial" and spec.pools_heterogeneity(data.n_data_groups):
            rate = _cell_rates(data, events, trials)
            half_width = np.array(
                [
                    log_phi_interval_half_width(
                        events[rows], trials[rows], data.weights[rows], rate[rows]
                    )
                    for rows in (data.group_idx == m for m in range(data.n_groups))
                ]
            )
            spread = float(spec.prior("log_concentration_sd", stage).quantile(0.5))
            if half_width.min() < ANCHOR_MAX_SE_RATIO * spread:
                anchor[int(np.argmin(half_width))] = 1.0
        out[suffix] = anchor
    return out


#: The level probabilities of a categorical bias covariate with missing levels (the model's
#: variable; the sampler draws them on the simplex scale, as ``{LEVEL_PROBABILITY}_simplex``).
LEVEL_PROBABILITY = "bias_level_prob"

#: The log heterogeneity parameter that partial pooling pools, per likelihood.
POOLED_LOG_SCALE = {"beta_binomial": "log_phi", "logit_normal": "log_tau"}


def pooling_arrays(data: ModelData, spec: ModelSpec) -> dict[str, dict[str, np.ndarray]]:
    """Per stage (suffix), the data of partial pooling: ``anchor_group`` (:func:`anchor_groups`)
    and ``pooled``, 1.0 when there are two data groups or more (else 0.0: one log scale, see
    :meth:`bayesreview.spec.ModelSpec.pools_heterogeneity`). Empty without partial pooling."""
    if spec.heterogeneity != "partial_pooling":
        return {}
    pooled = np.asarray(float(spec.pools_heterogeneity(data.n_data_groups)))
    return {
        suffix: {"anchor_group": anchor, "pooled": pooled}
        for suffix, anchor in anchor_groups(data, spec).items()
    }
