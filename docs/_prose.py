"""Sentences that interpret numbers on the generated docs pages, each computed from the numbers.

The scripts ``docs/make_tutorial.py``, ``docs/make_sensitivity.py`` and ``docs/make_figures.py``
print no hand-written reading of a number: every sentence that says what a number means ("the
intervals are wider", "X is likely better than Y", "no sign of misfit", "the leave-one-out
shifts are small") comes from a function here, which takes the number(s) and returns the
sentence. The thresholds are module constants, and :func:`legend` states them on the pages.

Thresholds
----------
- Posterior probabilities of a statement (P(A better than B), P(best)), classified as printed
  (rounded to two decimals, :data:`PROBABILITY_DIGITS`): above 0.95 "very likely"; 0.80 to
  0.95 "likely"; between 0.20 and 0.80 "uncertain"; 0.05 to 0.20 "unlikely"; below 0.05 "very
  unlikely" (:data:`VERY_LIKELY`, :data:`LIKELY`, :func:`probability_word`).
- Posterior predictive checks: a two-sided mid-p value below :data:`PPC_ALPHA` (0.05) reads as
  misfit, otherwise "no sign of misfit" (:func:`ppc_sentence`).
- Changes of a rate (a refit, an adjustment), in percentage points: below
  :data:`SMALL_CHANGE` (2 points) "barely"; from 2 to :data:`LARGE_CHANGE` (5 points) "a
  little"; 5 points or more "substantially" (:func:`change_word`). The size is always printed
  next to the word.
- Two estimands (mean rate, median-study rate) "agree" when they differ by less than
  :data:`ESTIMAND_TOLERANCE` (1 point) everywhere (:func:`estimand_sentence`).

Rates and differences are on the 0-1 scale; sentences print them in percent or percentage
points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: A posterior probability above this reads "very likely" (below 1 - this: "very unlikely").
VERY_LIKELY = 0.95
#: A posterior probability from this to :data:`VERY_LIKELY` reads "likely" (mirrored: "unlikely").
LIKELY = 0.80
#: Probabilities are classified as printed: rounded to this many decimals.
PROBABILITY_DIGITS = 2
#: A two-sided posterior predictive (mid-)p value below this reads as misfit.
PPC_ALPHA = 0.05
#: A change of a rate below this (0-1 scale: 2 percentage points) is "barely" a change.
SMALL_CHANGE = 0.02
#: A change of a rate of at least this (5 percentage points) is a "substantial" change.
LARGE_CHANGE = 0.05
#: Mean rate and median-study rate "agree" when every difference is below this (1 point).
ESTIMAND_TOLERANCE = 0.01

#: Words for the posterior predictive statistics of :func:`bayesreview.checks.ppc`:
#: (what it counts, word for "more", word for "fewer").
PPC_STATISTICS = {
    "zero_event_studies": ("zero-event studies", "more", "fewer"),
    "all_event_studies": ("all-event studies", "more", "fewer"),
    "rate_sd": ("spread of the study rates (SD)", "a larger", "a smaller"),
}
#: Words for the likelihood stages of :func:`bayesreview.checks.ppc`.
PPC_STAGES = {"complete|any": "complete response among responders"}


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in values)


def pct(rate: float) -> str:
    """``"74%"``: a 0-1 rate in whole percent (rounded half up, as :func:`percent` prints)."""
    return f"{math.floor(100 * float(rate) + 0.5 + 1e-9):.0f}%"


def points(change: float, digits: int = 1, signed: bool = False) -> str:
    """``"10.3 points"`` (or ``"+10.3 points"`` with ``signed``): a 0-1 change in points."""
    value = 100 * float(change)
    text = f"{value:+.{digits}f}" if signed else f"{abs(value):.{digits}f}"
    return f"{text} points"


def legend() -> str:
    """The thresholds behind the words, in one paragraph for a page's reader."""
    lo, hi = 1 - VERY_LIKELY, VERY_LIKELY
    return (
        "*How the words are chosen* (`docs/_prose.py`): a posterior probability, as printed to "
        f'{PROBABILITY_DIGITS} decimals, reads "very likely" above {hi:.2f}, "likely" from '
        f'{LIKELY:.2f} to {hi:.2f}, "uncertain" between {1 - LIKELY:.2f} and {LIKELY:.2f}, '
        f'"unlikely" from {lo:.2f} to {1 - LIKELY:.2f} and "very unlikely" below {lo:.2f}; a '
        f"two-sided posterior predictive p-value below {PPC_ALPHA:g} reads as misfit; a change "
        f'of a rate is "barely" one below {100 * SMALL_CHANGE:g} percentage points, "a little" '
        f'one from {100 * SMALL_CHANGE:g} to {100 * LARGE_CHANGE:g} points and "substantial" '
        f"from {100 * LARGE_CHANGE:g} points on, and its size is always given."
    )


# --------------------------------------------------------------------------------------------
# Posterior probabilities
# --------------------------------------------------------------------------------------------


def probability_word(p: float) -> str:
    """The word for a posterior probability ``p`` of a statement, on the scale of the module.

    ``p`` is rounded to :data:`PROBABILITY_DIGITS` decimals first, so the word agrees with the
    printed number: "very likely" (> 0.95), "likely" ([0.80, 0.95]), "uncertain" ((0.20,
    0.80)), "unlikely" ([0.05, 0.20]), "very unlikely" (< 0.05); NaN gives "unknown".

    Raises
    ------
    ValueError
        For a probability outside [0, 1].
    """
    if not _finite(p):
        return "unknown"
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"probability {p!r} is not between 0 and 1")
    digits = PROBABILITY_DIGITS
    shown = round(float(p), digits)
    # Thresholds rounded too: 1 - 0.95 is 0.05000000000000004 in floating point.
    if shown > round(VERY_LIKELY, digits):
        return "very likely"
    if shown >= round(LIKELY, digits):
        return "likely"
    if shown > round(1 - LIKELY, digits):
        return "uncertain"
    if shown >= round(1 - VERY_LIKELY, digits):
        return "unlikely"
    return "very unlikely"


def probability_sentence(subject: str, claim: str, p: float) -> str:
    """``"<subject> is very likely <claim> (P = 0.96)"``, worded by :func:`probability_word`.

    "very likely"/"likely": ``subject is <word> claim``; "unlikely"/"very unlikely":
    ``subject is <word> to be claim``; "uncertain": ``whether subject is claim is uncertain``.
    """
    word = probability_word(p)
    if word == "unknown":
        return f"whether {subject} is {claim} is unknown (no probability)"
    shown = f"(P = {p:.{PROBABILITY_DIGITS}f})"
    if word in ("very likely", "likely"):
        return f"{subject} is {word} {claim} {shown}"
    if word in ("unlikely", "very unlikely"):
        return f"{subject} is {word} to be {claim} {shown}"
    return f"whether {subject} is {claim} is uncertain {shown}"


def better_sentence(a: str, b: str, p_better: float) -> str:
    """``"topical STS is very likely better than ESWL (P = 0.96)"``: :func:`probability_sentence`
    of ``p_better`` = P(a is better than b)."""
    return probability_sentence(a, f"better than {b}", p_better)


def decisive_sentence(probabilities: Sequence[float], what: str) -> str:
    """How many of ``what`` (e.g. "the 6 pairwise probabilities") are near 0 or 1.

    Counts the probabilities that read "very likely" or "very unlikely" (as printed: above
    0.95 or below 0.05) and gives the range of all of them.
    """
    values = [float(p) for p in probabilities if _finite(p)]
    if not values:
        return f"There are no {what} to read."
    decisive = [p for p in values if probability_word(p) in ("very likely", "very unlikely")]
    low, high = min(values), max(values)
    span = f"they range from {low:.2f} to {high:.2f}"
    cut = f"above {VERY_LIKELY:.2f} or below {1 - VERY_LIKELY:.2f}"
    if not decisive:
        return f"None of {what} is {cut}: {span}."
    if len(decisive) == len(values):
        return f"All of {what} are {cut}: {span}."
    return f"{len(decisive)} of {what} {'is' if len(decisive) == 1 else 'are'} {cut}; {span}."


# --------------------------------------------------------------------------------------------
# Posterior predictive checks
# --------------------------------------------------------------------------------------------


def ppc_misfit(p_two_sided: float) -> bool:
    """Whether a two-sided posterior predictive p-value reads as misfit (< :data:`PPC_ALPHA`)."""
    return _finite(p_two_sided) and float(p_two_sided) < PPC_ALPHA


def ppc_sentence(
    stage: str,
    statistic: str,
    observed: float,
    replicated_mean: float,
    p_value: float,
    p_two_sided: float,
) -> str:
    """One posterior predictive check in words, from a row of :func:`bayesreview.checks.ppc`.

    A two-sided mid-p value below :data:`PPC_ALPHA` reads as misfit, with its direction from
    the one-sided ``p_value`` = P(T_rep > T_obs) + P(T_rep = T_obs) / 2 (below 0.5: the data
    have more of the statistic than the replicates); otherwise "no sign of misfit". A check
    whose p-value is NaN (the statistic is undefined) cannot be read.
    """
    name, more, fewer = PPC_STATISTICS.get(statistic, (statistic.replace("_", " "), "more", "less"))
    where = PPC_STAGES.get(stage, f"{stage} response" if stage in ("any", "complete") else stage)
    if not _finite(p_two_sided, p_value):
        return f"{where}, {name}: the check is undefined (no replicate or observed value)."
    numbers = (
        f"{observed:.3g} observed, {replicated_mean:.3g} in the replicates on average; "
        f"two-sided p = {p_two_sided:.2f}"
    )
    if ppc_misfit(p_two_sided):
        direction = more if p_value < 0.5 else fewer
        return (
            f"{where}, {name}: misfit, the data have {direction} {name} than the model "
            f"reproduces ({numbers})."
        )
    return f"{where}, {name}: no sign of misfit ({numbers})."


def ppc_overall_sentence(p_two_sided: Sequence[float]) -> str:
    """``"No check shows misfit ..."`` or ``"2 of 6 checks show misfit ..."``, by
    :func:`ppc_misfit` of each two-sided p-value; undefined checks are not counted."""
    values = [float(p) for p in p_two_sided if _finite(p)]
    if not values:
        return "No posterior predictive check could be computed."
    bad = sum(ppc_misfit(p) for p in values)
    cut = f"two-sided p < {PPC_ALPHA:g}"
    if bad == 0:
        return (
            f"None of the {len(values)} posterior predictive checks shows misfit ({cut}); the "
            f"smallest two-sided p is {min(values):.2f}."
        )
    verb = "shows" if bad == 1 else "show"
    return f"{bad} of the {len(values)} posterior predictive checks {verb} misfit ({cut})."


# --------------------------------------------------------------------------------------------
# Changes, shifts and widths
# --------------------------------------------------------------------------------------------


def change_word(change: float) -> str:
    """``"barely"`` (|change| < 2 points), ``"a little"`` (< 5 points) or ``"substantially"``."""
    size = abs(float(change))
    if size < SMALL_CHANGE:
        return "barely"
    if size < LARGE_CHANGE:
        return "a little"
    return "substantially"


def change_sentence(
    subject: str, before: Sequence[float], after: Sequence[float], labels: Sequence[str]
) -> str:
    """``"<subject> barely moves the rates: by up to 1.2 points (eswl, 60% to 61%)"``.

    ``before`` and ``after`` are the same rates under two analyses, one per label; the word
    is :func:`change_word` of the largest absolute change, which is printed with its label.
    """
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.shape != after.shape or before.size != len(labels) or before.size == 0:
        raise ValueError("before, after and labels must be equally long and not empty")
    change = after - before
    i = int(np.nanargmax(np.abs(change)))
    word = change_word(change[i])
    return (
        f"{subject} {word} moves the rates: by up to {points(change[i])} "
        f"({labels[i]}, {pct(before[i])} to {pct(after[i])})"
    )


def shift_sentence(
    shifts: Sequence[float], labels: Sequence[str], what: str = "leave-one-out refits"
) -> str:
    """How many of ``shifts`` (signed, 0-1) reach :data:`LARGE_CHANGE`, and the largest one.

    ``"8 of the 355 leave-one-out refits move a mean rate by 5 points or more; the largest
    shift is +10.3 points (eswl without Chan 2005)."``
    """
    values = np.asarray(shifts, dtype=float)
    if values.size == 0 or values.size != len(labels):
        raise ValueError("shifts and labels must be equally long and not empty")
    i = int(np.nanargmax(np.abs(values)))
    big = int(np.sum(np.abs(values) >= LARGE_CHANGE))
    cut = f"by {points(LARGE_CHANGE, digits=0)} or more"
    largest = f"the largest shift is {points(values[i], signed=True)} ({labels[i]})"
    if big == 0:
        return f"None of the {values.size} {what} moves a mean rate {cut}; {largest}."
    verb = "moves" if big == 1 else "move"
    return f"{big} of the {values.size} {what} {verb} a mean rate {cut}; {largest}."


def width_sentence(
    name_a: str, widths_a: Sequence[float], name_b: str, widths_b: Sequence[float]
) -> str:
    """Compare the widths of two sets of intervals over the same rows.

    ``"The prediction intervals (78 to 100 points wide) are wider than the credible intervals
    of the mean rate (24 to 82 points) in all 6 rows, 1.9 times as wide at the median."``
    """
    a, b = np.asarray(widths_a, dtype=float), np.asarray(widths_b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("widths_a and widths_b must be equally long and not empty")
    wider = int(np.sum(a > b))
    ratio = float(np.median(a / b))
    span_a = f"{100 * a.min():.0f} to {100 * a.max():.0f} points wide"
    span_b = f"{100 * b.min():.0f} to {100 * b.max():.0f} points"
    rows = f"{a.size} row" + ("s" if a.size != 1 else "")
    if wider == a.size:
        where = f"in {'all ' if a.size > 1 else 'the '}{rows}"
        compared = "wider than"
    elif wider == 0 and np.all(a < b):
        where = f"in {'all ' if a.size > 1 else 'the '}{rows}"
        compared = "narrower than"
    else:
        where = f"in {wider} of {rows}"
        compared = "wider than"
    return (
        f"The {name_a} ({span_a}) are {compared} the {name_b} ({span_b}) {where}, "
        f"{ratio:.1f} times as wide at the median"
    )


def size_comparison(a: float, b: float) -> str:
    """``"more than"``, ``"less than"`` or ``"as much as"`` (within half a point) for two
    changes on the 0-1 scale."""
    if abs(float(a) - float(b)) < 0.005:
        return "as much as"
    return "more than" if a > b else "less than"


# --------------------------------------------------------------------------------------------
# Estimands, pooling, data reconciliation
# --------------------------------------------------------------------------------------------


def estimand_sentence(
    mean_rates: Sequence[float], median_rates: Sequence[float], labels: Sequence[str]
) -> str:
    """Where the median-study rate and the mean rate differ, and by how much at most.

    Pairs with a NaN are skipped. Below :data:`ESTIMAND_TOLERANCE` everywhere: they agree;
    otherwise the count of rows where the median-study rate is the higher and the largest gap.
    """
    mean, median = np.asarray(mean_rates, dtype=float), np.asarray(median_rates, dtype=float)
    if mean.shape != median.shape or mean.size != len(labels):
        raise ValueError("mean_rates, median_rates and labels must be equally long")
    ok = np.isfinite(mean) & np.isfinite(median)
    if not ok.any():
        return "The median-study rate is not available for these rows."
    gap = np.where(ok, median - mean, np.nan)
    i = int(np.nanargmax(np.abs(gap)))
    if abs(gap[i]) < ESTIMAND_TOLERANCE:
        return (
            "The median-study rate and the mean rate agree to within "
            f"{points(ESTIMAND_TOLERANCE, digits=0)} in every row."
        )
    higher = int(np.sum(gap[ok] > 0))
    return (
        f"The median-study rate is above the mean rate in {higher} of {int(ok.sum())} rows; the "
        f"largest gap is {points(gap[i], digits=0, signed=True)} ({labels[i]}: mean rate "
        f"{pct(mean[i])}, median-study rate {pct(median[i])})."
    )


def pull_sentence(label: str, crude: float, posterior: float, reference: float) -> str:
    """Whether a group's posterior rate lies closer than its crude rate to ``reference`` (the
    average of the other groups' posterior rates): "pulled toward" or "not pulled toward"."""
    if not _finite(crude, posterior, reference):
        return f"{label}: no crude or posterior rate to compare."
    before, after = abs(crude - reference), abs(posterior - reference)
    moved = points(posterior - crude, digits=0, signed=True)
    head = (
        f"{label} (crude {pct(crude)}, posterior mean rate {pct(posterior)}, {moved}; the other "
        f"groups' mean rates average {pct(reference)})"
    )
    if after < before:
        return f"{head} is pulled toward the other groups"
    return f"{head} is not pulled toward the other groups"


def agreement_sentence(
    disagreeing: Sequence[tuple[str, str]],
    response_outcomes: Sequence[str] = ("complete", "partial"),
) -> str:
    """Which cells of a reproduced table disagree with the published one.

    ``disagreeing`` lists (group, outcome) cells that differ. Says whether every response
    cell (``response_outcomes``) agrees and names the cells that do not.
    """
    cells = list(disagreeing)
    response = [c for c in cells if c[1] in response_outcomes]
    kinds = ", ".join(response_outcomes)
    if not cells:
        return "Every cell agrees with the paper."
    names = "; ".join(f"{g} {o}" for g, o in cells)
    count = f"{len(cells)} cell{'s' if len(cells) != 1 else ''} marked **no**"
    if not response:
        return f"Every response cell ({kinds}) agrees with the paper; the {count}: {names}."
    return f"{len(response)} response cell(s) disagree with the paper; the {count}: {names}."


def same_cells_sentence(
    table_cells: Sequence[tuple[str, str]], found: Sequence[tuple[str, str]]
) -> str:
    """Whether ``reconcile`` found exactly the cells that the comparison table marks."""
    a, b = set(table_cells), set(found)
    if a == b:
        return "`reconcile` finds exactly those cells"
    missing, extra = sorted(a - b), sorted(b - a)
    parts = []
    if missing:
        parts.append("misses " + "; ".join(f"{g} {o}" for g, o in missing))
    if extra:
        parts.append("also finds " + "; ".join(f"{g} {o}" for g, o in extra))
    return "`reconcile` " + " and ".join(parts)


def split_sentence(
    quantities: Sequence[str],
    from_studies: Sequence[int],
    published: Sequence[int],
    non_response: Sequence[str] = ("none", "unknown"),
) -> str:
    """Whether two versions of some cells (``quantities``, e.g. none and unknown) change a
    response rate: they do not when every differing cell is a non-response one (unknown
    responses count as failures) and both versions put the same number of patients there."""
    a, b = int(np.sum(from_studies)), int(np.sum(published))
    if a == b and all(q in non_response for q in quantities):
        return (
            f"Both versions put {a} patients in these cells, none of them a responder, so "
            "neither changes a response rate (unknown responses count as failures)."
        )
    return (
        f"The two versions put {a} and {b} patients in these cells, or move responders, so "
        "the response rates differ between them."
    )
