"""Known risk-of-bias totals (issue 14): the recursion against brute-force enumeration, and the
model that uses it: its log-density against scipy over every consistent assignment, and its
posterior ratings against the review's published totals."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from scipy.special import logsumexp

from bayesreview.errors import DataError
from bayesreview.known_totals import (
    assignment_count,
    check_totals,
    count_states,
    level_probabilities_given_totals,
    log_likelihood_given_totals,
)

TOTALS = (3, 3, 2)


def _enumerate(loglik: np.ndarray, totals) -> tuple[float, np.ndarray]:
    """log p(y) and P(b_j = k | y) over every assignment of levels with the given counts."""
    n_studies, n_levels = loglik.shape
    weights, assignments = [], []
    for levels in itertools.product(range(n_levels), repeat=n_studies):
        if tuple(np.bincount(levels, minlength=n_levels)) == tuple(totals):
            weights.append(loglik[np.arange(n_studies), levels].sum())
            assignments.append(levels)
    weights = np.asarray(weights)
    log_z = logsumexp(weights)
    marginals = np.zeros(loglik.shape)
    for w, levels in zip(weights, assignments, strict=True):
        marginals[np.arange(n_studies), levels] += np.exp(w - log_z)
    return float(log_z - np.log(len(assignments))), marginals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recursion_equals_enumeration_of_all_assignments(seed):
    loglik = np.random.default_rng(seed).normal(-2.0, 1.5, (8, 3))
    expected, marginals = _enumerate(loglik, TOTALS)
    assert log_likelihood_given_totals(loglik, TOTALS) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(level_probabilities_given_totals(loglik, TOTALS), marginals)


@pytest.mark.parametrize("totals", [(3, 3, 2), (0, 4), (2, 0, 1, 3), (5,)])
def test_states_are_every_count_vector_by_sum_with_their_successors(totals):
    # every vector c with 0 <= c_k <= T_k, listed here with itertools, independently of numpy
    vectors = list(itertools.product(*(range(t + 1) for t in totals)))
    offsets, successor = count_states(np.asarray(totals, dtype=np.int64))
    assert successor.shape == (len(vectors), len(totals))
    sums = [sum(c) for c in vectors]
    assert offsets.tolist() == [0, *np.cumsum(np.bincount(sums, minlength=sum(totals) + 1))]
    # recover each position's vector by walking from the all-zero state (position 0)
    state_of = {0: (0,) * len(totals)}
    for j in range(sum(totals)):
        for i in range(offsets[j], offsets[j + 1]):
            for k, following in enumerate(successor[i]):
                c = list(state_of[i])
                c[k] += 1
                if c[k] > totals[k]:
                    assert following == -1
                    continue
                assert offsets[j + 1] <= following < offsets[j + 2]  # one study later
                assert state_of.setdefault(int(following), tuple(c)) == tuple(c)
    assert sorted(state_of.values()) == sorted(vectors)  # each vector once
    assert state_of[len(vectors) - 1] == tuple(totals)  # the last state: the totals


def test_rated_studies_fix_their_level():
    loglik = np.random.default_rng(5).normal(-2.0, 1.0, (8, 3))
    rated = loglik.copy()
    rated[0, 1:] = -np.inf  # study 0 rated level 0
    rated[4, [0, 2]] = -np.inf  # study 4 rated level 1
    expected, marginals = _enumerate(rated, TOTALS)
    assert log_likelihood_given_totals(rated, TOTALS) == pytest.approx(expected, abs=1e-12)
    got = level_probabilities_given_totals(rated, TOTALS)
    np.testing.assert_allclose(got, marginals, atol=1e-12)
    assert got[0, 0] == 1.0 and got[4, 1] == 1.0


def test_expected_numbers_per_level_equal_the_totals():
    loglik = np.random.default_rng(9).normal(-3.0, 2.0, (40, 3))
    totals = (10, 19, 11)  # the review's text: low 10, moderate 19, high 11
    probabilities = level_probabilities_given_totals(loglik, totals)
    np.testing.assert_allclose(probabilities.sum(axis=0), totals, rtol=0, atol=1e-9)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)


def test_the_probabilities_are_the_gradient():
    loglik = np.random.default_rng(3).normal(-2.0, 1.0, (8, 3))
    gradient = np.zeros(loglik.shape)
    step = 1e-6
    for index in np.ndindex(loglik.shape):
        up, down = loglik.copy(), loglik.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (
            log_likelihood_given_totals(up, TOTALS) - log_likelihood_given_totals(down, TOTALS)
        ) / (2 * step)
    np.testing.assert_allclose(
        level_probabilities_given_totals(loglik, TOTALS), gradient, atol=1e-7
    )


def test_with_no_information_every_consistent_assignment_is_equally_likely():
    # flat likelihoods: p(y) = 1 (log 0), and each study is at level k with probability T_k/J
    flat = np.zeros((8, 3))
    assert log_likelihood_given_totals(flat, TOTALS) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(
        level_probabilities_given_totals(flat, TOTALS), np.tile(np.array(TOTALS) / 8, (8, 1))
    )
    assert assignment_count(TOTALS) == pytest.approx(np.log(560))  # 8! / (3! 3! 2!)


LEVELS = ("low", "moderate", "high")


def test_totals_are_checked_against_the_table():
    observed = [None] * 7 + ["high"]
    np.testing.assert_array_equal(
        check_totals(LEVELS, {"low": 3, "moderate": 3, "high": 2}, observed), TOTALS
    )
    with pytest.raises(DataError, match=r"low 3 \+ moderate 3 \+ high 3 = 9 studies.*has 8"):
        check_totals(LEVELS, {"low": 3, "moderate": 3, "high": 3}, observed)
    with pytest.raises(DataError, match="'serious' is not a level"):
        check_totals(LEVELS, {"low": 3, "moderate": 3, "serious": 2}, observed)
    with pytest.raises(DataError, match=r"bias_totals\['high'\] = 0, but 1 studies are already"):
        check_totals(LEVELS, {"low": 4, "moderate": 4, "high": 0}, observed)
    with pytest.raises(DataError, match="no total for level"):
        check_totals(LEVELS, {"low": 5, "moderate": 3}, observed)


# ---- the model that uses it --------------------------------------------------------------


def _small_table() -> pd.DataFrame:
    """Seven studies in two modalities; two rated, five not; totals low 3, moderate 2, high 2."""
    return pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(7)],
            "modality": ["a", "a", "a", "a", "b", "b", "b"],
            "n": [1, 5, 3, 8, 2, 6, 4],
            "events": [1, 4, 1, 7, 0, 2, 4],
            "risk_of_bias": pd.Categorical(
                ["low", None, None, "high", None, None, None],
                categories=["low", "moderate", "high"],
                ordered=True,
            ),
        }
    )


SMALL_TOTALS = {"low": 3, "moderate": 2, "high": 2}


def test_model_log_density_is_the_average_over_consistent_assignments():
    """PyMC's log-density against scipy: priors, plus log of (1 / N) sum over every
    assignment of levels with these totals (the rated studies' fixed) of prod_j BB(y_j)."""
    import bayesreview as br
    from bayesreview.backend.models import build_model
    from bayesreview.model_data import model_data

    studies = br.read_studies(_small_table())
    data = model_data(studies, "events", bias="risk_of_bias", bias_totals=SMALL_TOTALS)
    spec = br.load_spec("beta_binomial")
    model = build_model(data, spec)
    assert "bias_level_prob" not in {rv.name for rv in model.free_RVs}
    rng = np.random.default_rng(4)
    logp = model.compile_logp(jacobian=False)
    for _ in range(3):
        point = {
            "alpha": rng.normal(0, 1, 2),
            "beta": rng.normal(0, 0.7, 2),
            "log_phi_anchor": np.array(rng.normal(2, 0.5)),  # no anchor group: the location
            "log_phi_sd_log__": np.array(rng.normal(-1, 0.3)),
            "log_phi_raw": rng.normal(0, 1, 2),
        }
        sd = np.exp(point["log_phi_sd_log__"])
        log_phi = point["log_phi_anchor"] + sd * point["log_phi_raw"]
        shifts = np.concatenate([[0.0], point["beta"]])
        group = np.array([0, 0, 0, 0, 1, 1, 1])
        n, y = studies["n"].to_numpy(), studies["events"].to_numpy()
        loglik = np.empty((7, 3))
        for k in range(3):
            mu = special.expit(point["alpha"][group] + shifts[k])
            phi = np.exp(log_phi[group])
            loglik[:, k] = stats.betabinom(n, mu * phi, (1 - mu) * phi).logpmf(y)
        loglik[0, [1, 2]] = -np.inf  # rated low
        loglik[3, [0, 1]] = -np.inf  # rated high
        marginal, _ = _enumerate(loglik, (3, 2, 2))
        priors = (
            stats.norm(0, 1.5).logpdf(point["alpha"]).sum()
            + stats.norm(0, 1).logpdf(point["beta"]).sum()
            + spec.prior("log_concentration", "marginal").logpdf(point["log_phi_anchor"])
            + stats.halfnorm(scale=0.5).logpdf(sd)
            + stats.norm(0, 1).logpdf(point["log_phi_raw"]).sum()
        )
        assert logp(point) == pytest.approx(priors + marginal, abs=1e-6)


@pytest.fixture(scope="module")
def totals_fit():
    import bayesreview as br

    return br.fit(
        br.load_dataset("calcinosis_cutis"),
        outcome="any",
        by="group",
        bias="risk_of_bias",
        bias_totals="dataset",
        draws=300,
        tune=300,
        chains=2,
        seed=3,
        progressbar=False,
    )


def test_posterior_ratings_add_up_to_the_published_totals(totals_fit):
    levels = totals_fit.bias_levels()
    per_level = levels.groupby("level")["probability"].sum()
    # the review's text: 10 low, 19 moderate, 11 high of the 40 studies
    assert per_level.to_dict() == pytest.approx({"low": 10, "moderate": 19, "high": 11}, abs=1e-9)
    per_study = levels.groupby("study")["probability"].sum()
    np.testing.assert_allclose(per_study, 1.0, atol=1e-12)
    assert totals_fit.settings["bias_totals"] == {"low": 10, "moderate": 19, "high": 11}
    assert totals_fit.settings["bias_prior_counts"] is None


def test_a_saved_known_totals_fit_loads(totals_fit, tmp_path):
    import bayesreview as br

    loaded = br.load_fit(totals_fit.save(tmp_path / "fit.nc"))
    assert loaded.data.bias.totals == (10, 19, 11)
    assert loaded.data.bias.known_totals


def test_bad_totals_name_the_level_and_the_numbers():
    import bayesreview as br

    table = _small_table()
    for totals, message in [
        ({"low": 3, "moderate": 2, "high": 3}, "= 8 studies, but the table has 7"),
        ({"low": 3, "moderate": 2, "severe": 2}, "'severe' is not a level"),
        ({"low": 0, "moderate": 5, "high": 2}, "but 1 studies are already rated 'low'"),
    ]:
        with pytest.raises(DataError, match=message):
            br.fit(table, outcome="events", bias="risk_of_bias", bias_totals=totals, draws=10)
    with pytest.raises(DataError, match="not both"):
        br.fit(
            table,
            outcome="events",
            bias="risk_of_bias",
            bias_totals=SMALL_TOTALS,
            bias_prior_counts={"low": 1, "moderate": 1, "high": 1},
            draws=10,
        )
    with pytest.raises(br.BayesReviewError, match="gives no risk_of_bias_totals"):
        br.fit(table, outcome="events", bias="risk_of_bias", bias_totals="dataset", draws=10)


def test_weakly_identified_headline_is_the_own_mix_where_the_unadjusted_analysis_is(totals_fit):
    """No study's rating is known: the bias effects rest on their prior, the warning says so,
    and the headline rate is each modality's own mix of studies, which stays where the
    analysis without the covariate put it (the reference-level rate does not)."""
    import bayesreview as br

    assert totals_fit.weak_identification() is not None
    assert not totals_fit.headline_adjusted()
    headline = totals_fit.summary().set_index("modality")
    own = totals_fit.summary(adjusted=False).set_index("modality")
    pd.testing.assert_frame_equal(headline, own)
    assert (headline["adjusted_to"] == totals_fit.adjusted_to(False)).all()
    plain = (
        br.fit(
            br.load_dataset("calcinosis_cutis"),
            outcome="any",
            by="group",
            draws=300,
            tune=300,
            chains=2,
            seed=3,
            progressbar=False,
        )
        .summary()
        .set_index("modality")
    )
    many = plain.index[plain["studies"] >= 9]  # topical and intralesional STS, CO2 laser
    difference = (headline.loc[many, "mean_rate"] - plain.loc[many, "mean_rate"]).abs()
    assert (difference < 0.04).all(), difference
    reference = totals_fit.summary(adjusted=True).set_index("modality")
    moved = (reference.loc[many, "mean_rate"] - plain.loc[many, "mean_rate"]).abs()
    # in runs of 4 x 1000 draws topical STS (near 0.9, where rates are compressed) moves 0.05,
    # the others more; 0.025 leaves room for the Monte Carlo error of these short runs
    assert (moved > 0.025).all(), moved
