"""Tests of bayesreview.checks: PSIS-LOO, model comparison and posterior predictive checks."""

import itertools
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesreview as br
from bayesreview.checks import (
    InfluentialStudyWarning,
    compare_models,
    influential_studies,
    loo,
    ppc,
    ppc_p_value,
)
from bayesreview.errors import BayesReviewError

FEW = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}


def _quiet_fit(studies, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return br.fit(studies, **{**FEW, **kwargs})


@pytest.fixture(scope="module")
def calcinosis():
    return br.load_dataset("calcinosis_cutis")


@pytest.fixture(scope="module")
def fits(calcinosis, modality_fit, response_fit):
    """One fit of each shipped model (the response model with outcome='response').

    The beta-binomial and response fits are the shared ones of tests/conftest.py.
    """
    return {
        "beta_binomial": modality_fit,
        "logit_normal": _quiet_fit(calcinosis, model="logit_normal", seed=1),
        "response": response_fit,
    }


# --------------------------------------------------------------------------------------------
# Posterior predictive p-values on hand-built InferenceData (answers known exactly)
# --------------------------------------------------------------------------------------------


def _idata(events, trials, replicates, events_cond=None, replicates_cond=None):
    """InferenceData with one chain of replicated events (draws x studies)."""
    study = [f"s{j}" for j in range(len(events))]
    coords = {"chain": [0], "draw": np.arange(len(replicates)), "study": study}
    pp = {"events": (("chain", "draw", "study"), np.asarray(replicates)[None])}
    obs = {"events": ("study", np.asarray(events))}
    if events_cond is not None:
        pp["events_cond"] = (("chain", "draw", "study"), np.asarray(replicates_cond)[None])
        obs["events_cond"] = ("study", np.asarray(events_cond))
    return az.InferenceData(
        posterior_predictive=xr.Dataset(pp, coords=coords),
        observed_data=xr.Dataset(obs, coords={"study": study}),
        constant_data=xr.Dataset(
            {"trials": ("study", np.asarray(trials))}, coords={"study": study}
        ),
    )


def test_ppc_p_values_exact_on_constructed_replicates():
    # 4 studies of 5 patients; observed: one zero-event study, one all-event study.
    trials = [5, 5, 5, 5]
    observed = [0, 5, 2, 3]
    # 10 replicates: zero-event counts 2,1,1,0,0,0,0,0,0,0 -> 1 of 10 has T > 1 and 2 have
    # T = 1: mid-p = 1/10 + 0.5 * 2/10 = 0.2, two-sided 0.4; all-event counts
    # 0,0,0,0,0,0,0,1,1,2 -> the same: 1 above, 2 tied, mid-p 0.2.
    replicates = [
        [0, 0, 2, 3],
        [0, 1, 2, 3],
        [0, 4, 2, 3],
        [1, 1, 2, 3],
        [1, 2, 2, 3],
        [1, 2, 3, 3],
        [2, 2, 2, 2],
        [5, 1, 2, 3],
        [5, 1, 1, 1],
        [5, 5, 2, 3],
    ]
    table = ppc(_idata(observed, trials, replicates)).set_index("statistic")
    assert table.loc["zero_event_studies", "observed"] == 1
    assert table.loc["zero_event_studies", "p_value"] == pytest.approx(0.2)
    assert table.loc["zero_event_studies", "p_two_sided"] == pytest.approx(0.4)
    assert table.loc["all_event_studies", "observed"] == 1
    assert table.loc["all_event_studies", "p_value"] == pytest.approx(0.2)
    assert table.loc["all_event_studies", "p_two_sided"] == pytest.approx(0.4)
    assert table.loc["zero_event_studies", "replicated_mean"] == pytest.approx(0.4)
    # spread: observed rates 0, 1, .4, .6 -> population SD sqrt(0.13)
    assert table.loc["rate_sd", "observed"] == pytest.approx(np.sqrt(0.13))
    sds = np.array([np.std(np.asarray(r) / 5) for r in replicates])
    # no replicate is a permutation of the observed rates: no ties, p = P(T_rep > T_obs)
    assert not np.isclose(sds, np.sqrt(0.13)).any()
    assert table.loc["rate_sd", "p_value"] == pytest.approx(np.mean(sds > np.sqrt(0.13)))


def test_ppc_second_stage_uses_replicated_denominators():
    trials = [4, 4, 4]
    observed_any = [4, 2, 0]  # complete among responders: 4 of 4, 1 of 2, (none of 0: skipped)
    observed_complete = [4, 1, 0]
    # draw 1: responders 4, 0, 2 -> second stage over studies 1 and 3 only: rates 1/4? see below
    replicates_any = [[4, 0, 2], [2, 2, 2]]
    replicates_complete = [[1, 0, 2], [0, 2, 1]]
    table = ppc(
        _idata(observed_any, trials, replicates_any, observed_complete, replicates_complete)
    )
    cond = table[table.stage == "complete|any"].set_index("statistic")
    # observed second stage: studies with responders: rates 4/4, 1/2 -> SD 0.25; zero: 0; all: 1
    assert cond.loc["rate_sd", "observed"] == pytest.approx(0.25)
    assert cond.loc["all_event_studies", "observed"] == 1
    assert cond.loc["zero_event_studies", "observed"] == 0
    # draw 1: denominators 4, 0, 2 -> study 2 skipped; rates 1/4 and 2/2: zero 0, all 1
    # draw 2: denominators 2, 2, 2 -> rates 0, 1, 1/2: zero 1, all 1
    assert cond.loc["zero_event_studies", "replicated_mean"] == pytest.approx(0.5)
    # both replicates have 1 all-event study, as observed: a perfect tie
    assert cond.loc["all_event_studies", "p_value"] == pytest.approx(0.5)
    assert cond.loc["all_event_studies", "p_two_sided"] == pytest.approx(1.0)
    sd1 = np.std([0.25, 1.0])
    sd2 = np.std([0.0, 1.0, 0.5])
    assert cond.loc["rate_sd", "replicated_mean"] == pytest.approx((sd1 + sd2) / 2)
    assert cond.loc["rate_sd", "p_value"] == pytest.approx(np.mean(np.array([sd1, sd2]) >= 0.25))


def test_ppc_perfect_fit_of_a_count_is_not_a_misfit():
    # no zero-event study observed, none in any replicate: the model reproduces it exactly.
    # The old definition (p = P(T_rep >= T_obs) = 1, two-sided min(1, 2p, 2(1 - p)) = 0)
    # called this a misfit.
    trials = [5, 5, 5]
    observed = [1, 2, 3]
    replicates = [[1, 2, 3], [2, 2, 4], [3, 1, 1], [4, 4, 2]]
    table = ppc(_idata(observed, trials, replicates)).set_index("statistic")
    assert table.loc["zero_event_studies", "observed"] == 0
    assert table.loc["zero_event_studies", "p_value"] == 0.5
    assert table.loc["zero_event_studies", "p_two_sided"] == 1.0
    assert table.loc["all_event_studies", "p_two_sided"] == 1.0


def test_ppc_p_value_perfect_tie():
    assert ppc_p_value(np.zeros(400), 0) == (0.5, 1.0)
    assert ppc_p_value([3.0, 3.0, 3.0], 3.0) == (0.5, 1.0)


def test_ppc_p_value_against_an_enumeration_of_two_dice():
    # T_rep = sum of two fair dice, every one of the 36 outcomes once: P(T = t) = (6 - |t - 7|)/36
    t_rep = np.array([a + b for a, b in itertools.product(range(1, 7), repeat=2)])
    # t = 7: 15 outcomes above (8..12: 5+4+3+2+1), 6 tied -> (15 + 3) / 36 = 1/2
    assert ppc_p_value(t_rep, 7) == pytest.approx((0.5, 1.0))
    # t = 10: above 11 (2) and 12 (1) = 3, tied 3 -> (3 + 1.5) / 36 = 0.125, two-sided 0.25
    assert ppc_p_value(t_rep, 10) == pytest.approx((0.125, 0.25))
    # t = 2: 35 above, 1 tied -> 35.5 / 36; two-sided 2 * 0.5 / 36 = 1/36
    assert ppc_p_value(t_rep, 2) == pytest.approx((35.5 / 36, 1 / 36))
    # t = 13: nothing above or tied -> 0; t = 1: everything above -> 1; both two-sided 0
    assert ppc_p_value(t_rep, 13) == (0.0, 0.0)
    assert ppc_p_value(t_rep, 1) == (1.0, 0.0)
    # the mid-p values of t and 14 - t (the distribution is symmetric about 7) sum to 1
    for t in range(2, 13):
        assert ppc_p_value(t_rep, t)[0] + ppc_p_value(t_rep, 14 - t)[0] == pytest.approx(1.0)


def test_ppc_p_value_leaves_out_undefined_replicates():
    # NaN = statistic undefined in that replicate; of the 4 left, 1 above 2 and 2 tied
    assert ppc_p_value([np.nan, 1.0, 2.0, 2.0, 3.0, np.inf], 2.0) == pytest.approx((0.5, 1.0))
    assert ppc_p_value([1.0, 2.0, 2.0, 3.0, 3.0], 2.0) == pytest.approx((0.6, 0.8))
    p, two = ppc_p_value([np.nan, np.nan], 1.0)
    assert np.isnan(p) and np.isnan(two)
    p, two = ppc_p_value([1.0, 2.0], np.nan)
    assert np.isnan(p) and np.isnan(two)


def test_ppc_p_value_treats_rounding_as_a_tie():
    # 0.1 + 0.2 != 0.3 in floating point; the statistic is the same number
    assert ppc_p_value([0.1 + 0.2] * 4, 0.3) == (0.5, 1.0)


def test_ppc_leaves_out_studies_of_weight_zero():
    # study s0 (a zero-event study) has weight 0: it is neither an observed nor a replicated
    # zero-event study, and its rate is not in the spread
    trials = [5, 5, 5, 5]
    observed = [0, 5, 2, 3]
    replicates = [[0, 5, 0, 3], [0, 1, 2, 3], [5, 0, 0, 0], [1, 5, 2, 3]]
    idata = _idata(observed, trials, replicates)
    idata.constant_data["weights"] = ("study", np.array([0, 1, 1, 1]))
    table = ppc(idata).set_index("statistic")
    # in-sample observed: rates 1, .4, .6 -> no zero-event study, one all-event study
    assert table.loc["zero_event_studies", "observed"] == 0
    assert table.loc["all_event_studies", "observed"] == 1
    assert table.loc["rate_sd", "observed"] == pytest.approx(np.std([1.0, 0.4, 0.6]))
    # in-sample replicated zero-event counts 1, 0, 3, 0 (s0 ignored): mean 1; above 0: 2 of 4,
    # tied: 2 -> mid-p (2 + 1) / 4 = 0.75, two-sided 0.5
    assert table.loc["zero_event_studies", "replicated_mean"] == pytest.approx(1.0)
    assert table.loc["zero_event_studies", "p_value"] == pytest.approx(0.75)
    assert table.loc["zero_event_studies", "p_two_sided"] == pytest.approx(0.5)
    # all-event counts 1, 0, 0, 1: above 1: none, tied 2 -> 0.25
    assert table.loc["all_event_studies", "p_value"] == pytest.approx(0.25)


def test_ppc_rejects_bad_level():
    idata = _idata([0, 1], [1, 1], [[0, 1]])
    with pytest.raises(BayesReviewError, match="level"):
        ppc(idata, level=1.5)


# --------------------------------------------------------------------------------------------
# Posterior predictive checks on fits
# --------------------------------------------------------------------------------------------


def _simulate_beta_binomial(rng, n_studies, mu, phi, sizes):
    rates = rng.beta(mu * phi, (1 - mu) * phi, size=n_studies)
    n = rng.choice(sizes, size=n_studies)
    return n, rng.binomial(n, rates)


def _table(modality, n, events):
    n = np.asarray(n)
    events = np.asarray(events)
    return br.read_studies(
        pd.DataFrame(
            {
                "study": [f"{modality} {j}" for j in range(len(n))],
                "modality": modality,
                "events": events,
                "n": n,
            }
        )
    )


@pytest.mark.slow
def test_ppc_not_extreme_on_data_from_the_model():
    rng = np.random.default_rng(20240601)
    frames = []
    for modality, mu in (("a", 0.3), ("b", 0.6)):
        n, events = _simulate_beta_binomial(rng, 15, mu, 8.0, [1, 2, 5, 10, 20])
        frames.append(_table(modality, n, events))
    studies = br.read_studies(pd.concat(frames, ignore_index=True))
    fit = _quiet_fit(studies, outcome="events", seed=3, draws=500, tune=500)
    table = ppc(fit)
    assert list(table.statistic) == ["zero_event_studies", "all_event_studies", "rate_sd"]
    assert ((table.p_value > 0.01) & (table.p_value < 0.99)).all(), table


@pytest.mark.slow
def test_ppc_flags_all_or_nothing_studies_under_forced_homogeneity():
    # every study is all-or-nothing: extreme over-dispersion; a prior forcing phi ~ e^9 (the
    # study rates all equal the mean) cannot reproduce that many zero- and all-event studies.
    n = np.array([4, 6, 5, 8, 3, 10, 4, 6, 5, 7, 9, 4])
    events = np.where(np.arange(12) % 2 == 0, n, 0)
    studies = _table("a", n, events)
    # one concentration shared by all modalities, so the prior really pins it (with partial
    # pooling, log_phi_sd * z could pull the modality's phi back down towards the data)
    default = br.load_spec("beta_binomial").to_dict()
    priors = {k: v for k, v in default["priors"].items() if k != "log_concentration_sd"}
    priors["log_concentration"] = {"dist": "normal", "mu": 9.0, "sigma": 0.1}
    spec = br.ModelSpec.from_dict(
        {**default, "name": "forced_homogeneity", "heterogeneity": "shared", "priors": priors}
    )
    fit = _quiet_fit(studies, outcome="events", model=spec, seed=5)
    table = ppc(fit).set_index("statistic")
    # binomial(n, ~0.5) with n >= 3 rarely gives 0 or n: far fewer than 6 + 6 observed
    for stat in ("zero_event_studies", "all_event_studies"):
        assert table.loc[stat, "observed"] == 6
        assert table.loc[stat, "p_value"] < 0.05
    assert table.loc["rate_sd", "p_value"] < 0.05


def test_ppc_of_response_fit_has_both_stages(fits):
    table = ppc(fits["response"])
    assert list(table.stage.unique()) == ["any", "complete|any"]
    # observed complete-among-responders: counts from the data
    studies = fits["response"].studies
    responders = studies["complete"] + studies["partial"]
    has = responders > 0
    zero = int(((studies["complete"] == 0) & has).sum())
    row = table[(table.stage == "complete|any") & (table.statistic == "zero_event_studies")]
    assert row.observed.item() == zero
    assert table[["replicated_lower", "replicated_upper"]].notna().all().all()


# --------------------------------------------------------------------------------------------
# LOO and model comparison
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["beta_binomial", "logit_normal", "response"])
def test_loo_one_pointwise_value_per_study(fits, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfluentialStudyWarning)
        elpd = loo(fits[name], pointwise=True)
        short = loo(fits[name])
    assert elpd.loo_i.sizes["study"] == 40
    assert elpd.n_data_points == 40
    assert np.isfinite(elpd.elpd_loo)
    # elpd_loo is the sum of the pointwise values
    assert float(elpd.loo_i.sum()) == pytest.approx(elpd.elpd_loo)
    assert isinstance(short, az.ELPDData) and "loo_i" not in short
    assert short.elpd_loo == pytest.approx(elpd.elpd_loo)


def test_loo_warning_names_influential_studies(fits):
    fit = fits["beta_binomial"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfluentialStudyWarning)
        elpd = loo(fit, pointwise=True)
    k = pd.Series(elpd.pareto_k.values, index=[str(s) for s in elpd.pareto_k.study.values])
    table = influential_studies(fit, threshold=0.5)
    assert list(table.study) == list(k[k > 0.5].sort_values(ascending=False).index)
    lookup = fit.studies.set_index("study")["modality"]
    assert list(table.modality) == [lookup[s] for s in table.study]
    bad = k[k > 0.7]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loo(fit)
    ours = [w for w in caught if issubclass(w.category, InfluentialStudyWarning)]
    if len(bad):
        assert len(ours) == 1
        for study in bad.index:
            assert study in str(ours[0].message)
        assert "K-fold" in str(ours[0].message)
    else:
        assert not ours


def test_compare_models_ranks_both(fits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfluentialStudyWarning)
        table = compare_models({"bb": fits["beta_binomial"], "ln": fits["logit_normal"]})
        elpd = {k: loo(fits[k]).elpd_loo for k in ("beta_binomial", "logit_normal")}
    assert sorted(table.model) == ["bb", "ln"]
    assert list(table["rank"]) == [0, 1]
    best = "bb" if elpd["beta_binomial"] >= elpd["logit_normal"] else "ln"
    assert table.model.iloc[0] == best
    assert table.elpd_diff.iloc[1] == pytest.approx(
        abs(elpd["beta_binomial"] - elpd["logit_normal"])
    )


def test_compare_models_refuses_different_data(fits, calcinosis):
    with pytest.raises(BayesReviewError, match="different outcomes"):
        compare_models({"any": fits["beta_binomial"], "joint": fits["response"]})
    other = _quiet_fit(calcinosis, unknown="exclude", seed=2, draws=50, tune=50)
    with pytest.raises(BayesReviewError, match=r"denominators differ.*Bottomley 1996"):
        compare_models({"failure": fits["beta_binomial"], "exclude": other})
    with pytest.raises(BayesReviewError, match="at least two"):
        compare_models({"only": fits["beta_binomial"]})
