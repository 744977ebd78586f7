"""The replicate runner and simulation-based calibration (SBC)."""

from __future__ import annotations

import functools
import json
import os
import sys
import uuid
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import bayesreview as br
from bayesreview.backend import compiled_for
from bayesreview.evidence import job_settings, loaded_fingerprint, replicates_dir, settings_hash
from bayesreview.validation import (
    RANK_PREFIX,
    SBC_CONFIGURATIONS,
    ReplicateError,
    _call,
    large_study_design,
    read_replicates,
    run_replicates,
    sbc_design,
    sbc_ecdf_band,
    sbc_job,
    sbc_plot,
    sbc_replicate,
    sbc_uniformity,
    simulate_from_prior,
)

matplotlib.use("Agg")

# ---------------------------------------------------------------------------------------------
# Jobs for the runner: module-level, so that worker processes can unpickle them
# ---------------------------------------------------------------------------------------------


def square_job(seed: int, calls: str | None = None, fail_on: int | None = None) -> dict:
    """seed -> seed squared; records each call as a file in ``calls``; raises for ``fail_on``."""
    if calls is not None:
        with open(os.path.join(calls, f"{seed}-{uuid.uuid4().hex}"), "w"):
            pass
    if seed == fail_on:
        raise RuntimeError(f"boom for seed {seed}")
    return {"square": np.int64(seed) ** 2, "half": np.float64(seed / 2), "tag": f"s{seed}"}


def _calls(folder) -> list[int]:
    return sorted(int(p.name.split("-")[0]) for p in folder.iterdir())


def _check_squares(table: pd.DataFrame, seeds) -> None:
    assert table["seed"].tolist() == sorted(seeds)
    assert table["square"].tolist() == [s * s for s in sorted(seeds)]
    assert table["half"].tolist() == [s / 2 for s in sorted(seeds)]


# ---------------------------------------------------------------------------------------------
# run_replicates
# ---------------------------------------------------------------------------------------------

SETTINGS = {"job": "square"}  # fixed, so that runs with other ``calls`` folders resume


def run(job, seeds, cache, n_jobs=None, **kwargs):
    """run_replicates of the test experiment, with a fixed fingerprint and settings."""
    kwargs.setdefault("fingerprint", "f1")
    kwargs.setdefault("settings", SETTINGS)
    return run_replicates(job, seeds, "test", cache=cache, n_jobs=n_jobs, **kwargs)


def folder(cache, fingerprint="f1", settings=SETTINGS):
    return replicates_dir("test", fingerprint, settings_hash(settings), cache)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_rerun_runs_only_the_missing_seed(tmp_path, n_jobs):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    seeds = list(range(6))
    table = run(functools.partial(square_job, calls=str(first)), seeds, tmp_path, n_jobs)
    _check_squares(table, seeds)
    assert _calls(first) == seeds
    out = folder(tmp_path)
    assert table.attrs["folder"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"seed-{s}.json" for s in seeds)

    (out / "seed-3.json").unlink()
    table = run(functools.partial(square_job, calls=str(second)), seeds, tmp_path, n_jobs)
    assert _calls(second) == [3]  # only the missing seed ran
    assert table.attrs["ran"] == [3] and table.attrs["skipped"] == [0, 1, 2, 4, 5]
    _check_squares(table, seeds)

    # extending the run with more seeds runs only the new ones
    table = run(functools.partial(square_job, calls=str(second)), range(8), tmp_path, n_jobs)
    assert _calls(second) == [3, 6, 7]
    _check_squares(table, range(8))


#: What a worker process sees of this module's state: the import-time value unless the
#: worker was forked from a process that changed it
STATE_SEEN_BY_WORKERS = "as imported"


def state_job(seed: int) -> dict:
    return {"state": STATE_SEEN_BY_WORKERS, "pid": os.getpid()}


def test_worker_processes_are_spawned_not_forked(tmp_path, monkeypatch):
    # a forked worker inherits this process's memory (and any lock another thread holds);
    # a spawned one starts a fresh interpreter and imports the module again
    monkeypatch.setattr(sys.modules[__name__], "STATE_SEEN_BY_WORKERS", "changed by the parent")
    table = run(state_job, [1, 2, 3], tmp_path, n_jobs=2)
    assert set(table["state"]) == {"as imported"}
    assert os.getpid() not in set(table["pid"])


def test_records_are_plain_json_with_fingerprint_and_settings(tmp_path):
    run(square_job, [5], tmp_path, n_jobs=1)
    path = folder(tmp_path) / "seed-5.json"
    record = json.loads(path.read_text())
    assert record.pop("seconds") >= 0
    # the processor the draws depend on: that of the worker which ran the replicate
    assert record.pop("compiled_for") == compiled_for()
    assert record == {
        "seed": 5,
        "experiment": "test",
        "fingerprint": "f1",
        "settings_hash": settings_hash(SETTINGS),
        "settings": SETTINGS,
        "result": {"square": 25, "half": 2.5, "tag": "s5"},
    }
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["seed-5.json"]  # no temporary files left
    assert path.parent.parent.parent == tmp_path / "replicates"


def test_an_unreadable_result_file_is_rerun(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    run(square_job, [1, 2], tmp_path, n_jobs=1)
    (folder(tmp_path) / "seed-2.json").write_text('{"seed": 2, "squ')  # a torn write
    table = run(functools.partial(square_job, calls=str(calls)), [1, 2], tmp_path)
    assert _calls(calls) == [2]
    _check_squares(table, [1, 2])


def test_other_settings_are_a_separate_run(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    run(square_job, [1, 2], tmp_path, n_jobs=1)
    other = {"job": "square", "draws": 10}
    table = run(functools.partial(square_job, calls=str(calls)), [1, 2], tmp_path, settings=other)
    assert _calls(calls) == [1, 2]
    assert folder(tmp_path, settings=other) != folder(tmp_path)
    _check_squares(table, [1, 2])
    # the default settings are the job's function and bound arguments
    table = run_replicates(square_job, [3], "test", fingerprint="f1", cache=tmp_path, n_jobs=1)
    assert Path(table.attrs["folder"]).name == f"f1-{settings_hash(job_settings(square_job))}"


def test_read_replicates_reads_only_this_code_and_settings(tmp_path):
    run(square_job, [1, 2, 3], tmp_path, n_jobs=1)
    _check_squares(read_replicates("test", SETTINGS, fingerprint="f1", cache=tmp_path), [1, 2, 3])
    _check_squares(read_replicates("test", SETTINGS, [2, 9], fingerprint="f1", cache=tmp_path), [2])
    assert len(read_replicates("test", SETTINGS, fingerprint="f2", cache=tmp_path)) == 0
    assert len(read_replicates("test", {"job": "x"}, fingerprint="f1", cache=tmp_path)) == 0


def test_the_default_fingerprint_is_that_of_the_code_running(tmp_path):
    table = run_replicates(square_job, [1], "sbc", SETTINGS, cache=tmp_path, n_jobs=1)
    fingerprint = loaded_fingerprint("sbc")
    assert table.attrs["fingerprint"] == fingerprint
    assert Path(table.attrs["folder"]).parent == tmp_path / "replicates" / "sbc"
    assert Path(table.attrs["folder"]).name.startswith(f"{fingerprint}-")
    # a worker whose code has another fingerprint refuses to run the replicate
    ok, message, *_ = _call(square_job, 1, ("sbc", "000000000000"))
    assert not ok and "fingerprint" in message and "000000000000" in message
    assert _call(square_job, 1, ("sbc", fingerprint))[:2] == (True, square_job(1))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_failing_seed_is_reported_and_the_others_are_saved(tmp_path, n_jobs):
    job = functools.partial(square_job, fail_on=2)
    out = folder(tmp_path)
    with pytest.raises(ReplicateError) as info:
        run(job, range(5), tmp_path, n_jobs)
    message = str(info.value)
    assert "seed 2" in message and "boom for seed 2" in message and str(out) in message
    assert list(info.value.failures) == [2]
    assert isinstance(info.value, br.BayesReviewError)
    assert sorted(p.name for p in out.iterdir()) == [f"seed-{s}.json" for s in (0, 1, 3, 4)]
    _check_squares(
        read_replicates("test", SETTINGS, fingerprint="f1", cache=tmp_path), [0, 1, 3, 4]
    )

    # errors="ignore" returns what finished; a rerun with a fixed job does only seed 2
    table = run(job, range(5), tmp_path, n_jobs, errors="ignore")
    _check_squares(table, [0, 1, 3, 4])
    assert list(table.attrs["failures"]) == [2]
    calls = tmp_path / "calls"
    calls.mkdir()
    table = run(functools.partial(square_job, calls=str(calls)), range(5), tmp_path, n_jobs)
    assert _calls(calls) == [2]
    _check_squares(table, range(5))


def test_a_job_that_does_not_return_a_dict_is_a_failure(tmp_path):
    with pytest.raises(ReplicateError, match=r"seed 0.*not a dict"):
        run(float, [0], tmp_path, n_jobs=1)
    assert not list(folder(tmp_path).iterdir())


@pytest.mark.parametrize(
    ("seeds", "fragment"), [([1, 1], "duplicated"), ([-1], ">= 0"), ([1.5], ">= 0")]
)
def test_bad_seeds(tmp_path, seeds, fragment):
    with pytest.raises(br.BayesReviewError, match=fragment):
        run(square_job, seeds, tmp_path)


def test_bad_arguments(tmp_path):
    with pytest.raises(br.BayesReviewError, match="n_jobs"):
        run(square_job, [1, 2], tmp_path, n_jobs=0)
    with pytest.raises(br.BayesReviewError, match="errors"):
        run(square_job, [1], tmp_path, errors="warn")
    with pytest.raises(br.BayesReviewError, match="experiment"):
        run_replicates(square_job, [1], "no such", cache=tmp_path)
    with pytest.raises(br.BayesReviewError, match="fingerprint"):
        run(square_job, [1], tmp_path, fingerprint="../up")


@pytest.mark.slow
def test_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        job = functools.partial(square_job, calls=str(first), fail_on=4)
        with pytest.raises(ReplicateError, match="seed 4"):
            run(job, range(6), tmp_path, client=client)
        job = functools.partial(square_job, calls=str(second))
        table = run(job, range(6), tmp_path, client=client)
        # the default fingerprint is checked on the worker, which runs the same code
        checked = run_replicates(square_job, [7], "sbc", SETTINGS, cache=tmp_path, client=client)
    assert _calls(first) == list(range(6)) and _calls(second) == [4]
    assert table.attrs["ran"] == [4]
    _check_squares(table, range(6))
    _check_squares(checked, [7])


# ---------------------------------------------------------------------------------------------
# SBC: rank statistics
# ---------------------------------------------------------------------------------------------


def _ranks(**columns) -> pd.DataFrame:
    return pd.DataFrame({f"{RANK_PREFIX}{k}": v for k, v in columns.items()})


def test_uniformity_chi_square_by_hand():
    # L = 9: ranks 0..9, two bins {0..4} and {5..9}, each expected 5 of 10.
    table = sbc_uniformity(_ranks(a=[0] * 6 + [9] * 4), L=9, bins=2)
    row = table.iloc[0]
    assert row["quantity"] == "a" and row["replicates"] == 10 and row["df"] == 1
    assert row["chi2"] == pytest.approx((6 - 5) ** 2 / 5 + (4 - 5) ** 2 / 5)
    assert row["p_value"] == pytest.approx(0.5270892568655381)  # chi2.sf(0.4, 1), R: 0.5270893
    # L = 2: bins {0, 1} (probability 2/3) and {2} (1/3); 9 ranks all 2 -> expected 6 and 3
    row = sbc_uniformity(_ranks(b=[2] * 9), L=2, bins=2).iloc[0]
    assert row["chi2"] == pytest.approx(6**2 / 6 + 6**2 / 3)


def test_uniformity_default_bins_keep_expected_counts_at_least_5():
    rng = np.random.default_rng(1)
    for n in (10, 23, 60, 400):
        row = sbc_uniformity(_ranks(a=rng.integers(0, 100, n)), L=99).iloc[0]
        assert n / row["bins"] >= 5 and 2 <= row["bins"] <= 10


def test_uniformity_detects_non_uniform_ranks_and_passes_uniform_ones():
    rng = np.random.default_rng(2)
    uniform = rng.integers(0, 100, 200)
    too_narrow = np.clip(rng.normal(50, 15, 200).round(), 0, 99)  # overdispersed posterior
    table = sbc_uniformity(_ranks(u=uniform, narrow=too_narrow), L=99, level=0.05)
    assert table.set_index("quantity").loc["narrow", "fails"]
    assert not table.set_index("quantity").loc["u", "fails"]


def test_uniformity_rejects_ranks_out_of_range():
    with pytest.raises(br.BayesReviewError, match=r"0\.\.9"):
        sbc_uniformity(_ranks(a=[0, 10]), L=9)
    with pytest.raises(br.BayesReviewError, match="rank columns"):
        sbc_uniformity(pd.DataFrame({"seed": [1]}), L=9)


def test_ecdf_band_has_its_simultaneous_coverage():
    n, L = 40, 19
    x, lower, upper = sbc_ecdf_band(n, L, level=0.95, n_sim=2000, seed=0)
    assert np.allclose(x, np.arange(1, 20) / 20)
    # fresh uniform rank sets: the whole ECDF difference lies inside the band ~95% of the time
    rng = np.random.default_rng(12345)
    inside = 0
    trials = 2000
    for _ in range(trials):
        ranks = rng.integers(0, L + 1, n)
        diff = np.bincount(ranks, minlength=L + 1)[:L].cumsum() / n - x
        inside += np.all((diff >= lower - 1e-12) & (diff <= upper + 1e-12))
    assert 0.93 <= inside / trials <= 0.975


def test_sbc_plot_returns_a_figure_and_uses_the_given_axes():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    ranks = _ranks(a=rng.integers(0, 50, 30), b=np.zeros(30, dtype=int))
    fig, ax = plt.subplots()
    assert sbc_plot(ranks, L=49, ax=ax) is fig
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "b" in labels and "a" not in labels  # only the line leaving the band is named
    plt.close(fig)
    fig = sbc_plot(ranks, L=49, quantities=["a"], title="t")
    assert fig.axes[0].get_title() == "t"
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# SBC: simulation from the prior
# ---------------------------------------------------------------------------------------------


def test_design_is_the_calcinosis_cutis_structure():
    design = sbc_design(bias="design")
    assert design.n_rows == 40 and design.trials.sum() == 136
    assert design.groups[:4] == ("topical_sts", "intralesional_sts", "laser", "eswl")
    assert design.bias.levels == ("case_report", "case_series", "rct")
    assert np.bincount(design.bias.codes).tolist() == [27, 12, 1]


def test_simulated_parameters_follow_the_prior():
    spec = br.load_spec("beta_binomial")
    design = sbc_design(bias="design")
    rng = np.random.default_rng(4)
    sims = [simulate_from_prior(spec, design, rng) for _ in range(800)]
    alpha = np.stack([t["alpha"] for t, _ in sims])
    beta = np.stack([t["beta"] for t, _ in sims])
    log_phi = np.array([t["log_phi"] for t, _ in sims])
    sd = np.array([t["log_phi_sd"] for t, _ in sims])
    # models/beta_binomial.toml: Normal(0, 1.5), Normal(0, 1), Normal(log 10, 1), HalfNormal(0.5)
    assert stats.kstest(alpha.ravel() / 1.5, "norm").pvalue > 1e-3
    assert stats.kstest(beta.ravel(), "norm").pvalue > 1e-3
    assert stats.kstest(log_phi - np.log(10), "norm").pvalue > 1e-3
    assert stats.kstest(sd / 0.5, "halfnorm").pvalue > 1e-3
    log_phi_groups = np.log(np.stack([t["phi"] for t, _ in sims]))
    # log phi_g = log_phi + sd z_g: SD sqrt(E[sd^2]) = 0.5 for sd ~ HalfNormal(0.5)
    assert np.std(log_phi_groups - log_phi[:, None]) == pytest.approx(0.5, rel=0.05)
    events = np.stack([e for _, e in sims])
    assert np.all((events >= 0) & (events <= design.trials))
    # by symmetry of every prior around rate 1/2, the mean simulated response rate is 1/2
    share = events.sum(axis=1) / design.trials.sum()
    assert abs(share.mean() - 0.5) < 4 * share.std() / np.sqrt(len(share))
    # the true rate of a beta-binomial group is invlogit(alpha)
    assert np.allclose(np.stack([t["rate"] for t, _ in sims]), special.expit(alpha))


def test_simulated_logit_normal_truth_is_the_population_mean_rate():
    spec = br.load_spec("logit_normal")
    design = sbc_design()
    truth, events = simulate_from_prior(spec, design, np.random.default_rng(5))
    z = np.random.default_rng(6).standard_normal(400_000)
    for a, t, rate in zip(truth["alpha"], truth["tau"], truth["rate"], strict=True):
        assert rate == pytest.approx(special.expit(a + t * z).mean(), abs=3e-3)
    assert set(truth) == {"alpha", "tau", "rate"}
    assert events.shape == (40,)


def test_simulation_names_match_the_model_parameters():
    # partial pooling of tau for logit-normal, a shared phi for beta-binomial
    spec = br.load_spec("logit_normal")
    spec = br.ModelSpec.from_dict(
        {
            **spec.to_dict(),
            "heterogeneity": "partial_pooling",
            "priors": {
                "intercept": spec.prior("intercept").to_dict(),
                "bias": spec.prior("bias").to_dict(),
                "log_tau": {"dist": "normal", "mu": -0.5, "sigma": 0.5},
                "log_tau_sd": {"dist": "halfnormal", "sigma": 0.3},
            },
        }
    )
    truth, _ = simulate_from_prior(spec, sbc_design(), np.random.default_rng(7))
    assert set(truth) == {"alpha", "log_tau", "log_tau_sd", "tau", "rate"}
    shared = br.load_spec("beta_binomial").to_dict()
    shared["heterogeneity"] = "shared"
    del shared["priors"]["log_concentration_sd"]
    truth, _ = simulate_from_prior(
        br.ModelSpec.from_dict(shared), sbc_design(), np.random.default_rng(8)
    )
    assert np.ndim(truth["log_phi"]) == 0 and np.allclose(truth["phi"], np.exp(truth["log_phi"]))


def test_joint_response_simulation_has_both_stages():
    spec = br.load_spec("response")
    design = sbc_design(outcome="response")
    rng = np.random.default_rng(9)
    sims = [simulate_from_prior(spec, design, rng) for _ in range(600)]
    truth, events = sims[0]
    assert events.shape == (2, 40)
    assert {"alpha_cond", "log_phi_cond", "log_phi_sd_cond", "phi_cond"} <= set(truth)
    responders = np.stack([e[0] for _, e in sims])
    complete = np.stack([e[1] for _, e in sims])
    assert np.all((complete >= 0) & (complete <= responders) & (responders <= design.trials))
    # the second stage's priors: [conditional_priors] intercept Normal(0, 1.5); the others are
    # taken from [priors] (log_concentration Normal(log 10, 1))
    alpha_cond = np.stack([t["alpha_cond"] for t, _ in sims])
    assert stats.kstest(alpha_cond.ravel() / 1.5, "norm").pvalue > 1e-3
    log_phi_cond = np.array([t["log_phi_cond"] for t, _ in sims])
    assert stats.kstest(log_phi_cond - np.log(10), "norm").pvalue > 1e-3
    # rates: complete = invlogit(alpha) invlogit(alpha_cond), partial = any - complete
    alpha = np.stack([t["alpha"] for t, _ in sims])
    rate = np.stack([t["rate"] for t, _ in sims])
    assert rate.shape == (600, 3, 6)
    assert np.allclose(rate[:, 2], special.expit(alpha))
    assert np.allclose(rate[:, 0], special.expit(alpha) * special.expit(alpha_cond))
    assert np.allclose(rate[:, 1], rate[:, 2] - rate[:, 0])
    # given the parameters, E[events] = n x rate in each stage: the simulated counts use the
    # parameters they report (a z-test over all studies and simulations)
    g = design.group_idx
    for counts, column in ((responders, 2), (complete, 0)):
        expected = design.trials * rate[:, column, g]
        diff = counts - expected
        assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(diff.size)


def test_known_totals_levels_are_a_uniform_assignment_with_those_totals():
    spec = br.load_spec("beta_binomial")
    design = sbc_design(bias="risk_of_bias")
    totals = (10, 19, 11)  # the review's text: low 10, moderate 19, high 11 of 40 studies
    rng = np.random.default_rng(11)
    sims = [
        simulate_from_prior(spec, design, rng, levels="totals", hidden=20, totals=totals)[0]
        for _ in range(600)
    ]
    levels = np.stack([t["level"] for t in sims])
    for row in levels:
        assert tuple(np.bincount(row, minlength=3)) == totals
    # uniform over assignments: every study has level k with probability T_k / 40
    for k, total in enumerate(totals):
        share = (levels == k).mean(axis=0)
        p = total / 40
        assert np.all(np.abs(share - p) < 5 * np.sqrt(p * (1 - p) / len(sims)))
    assert all(t["hidden"].sum() == 20 for t in sims)
    with pytest.raises(br.BayesReviewError, match="need 3 totals summing to 40"):
        simulate_from_prior(spec, design, rng, levels="totals", totals=(10, 10, 10))


def test_missing_levels_are_drawn_from_pi_and_half_hidden():
    spec = br.load_spec("beta_binomial")
    design = sbc_design(bias="risk_of_bias")
    assert design.bias.levels == ("low", "moderate", "high")
    assert design.bias.n_missing == 40  # the bundled data have no per-study rating
    with pytest.raises(br.BayesReviewError, match="levels='prior'"):
        simulate_from_prior(spec, design, np.random.default_rng(0))
    rng = np.random.default_rng(10)
    sims = [
        simulate_from_prior(spec, design, rng, levels="prior", hidden=20)[0] for _ in range(800)
    ]
    pi = np.stack([t["bias_level_prob"] for t in sims])
    # pi ~ Dirichlet(1, 1, 1): each component is Beta(1, 2)
    for k in range(3):
        assert stats.kstest(pi[:, k], stats.beta(1, 2).cdf).pvalue > 1e-3
    levels = np.stack([t["level"] for t in sims])
    # each study's level is drawn from its replicate's pi: E[1{level = k} - pi_k] = 0
    for k in range(3):
        diff = (levels == k) - pi[:, [k]]
        assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(diff.size)
    hidden = np.stack([t["hidden"] for t in sims])
    assert (hidden.sum(axis=1) == 20).all()
    assert np.allclose(hidden.mean(axis=0), 0.5, atol=0.08)  # every study may be hidden
    assert stats.kstest(np.stack([t["beta"] for t in sims]).ravel(), "norm").pvalue > 1e-3


def test_large_study_design():
    design = large_study_design()
    n = design.trials
    assert design.n_rows == 12 and design.groups == ("A", "B")
    assert 100 <= n.min() and n.max() <= 5000 and np.all(np.diff(n) > 0)
    # log-uniform quantiles on [100, 5000]: equally spaced logs, half a step from each end
    step = np.log(5000 / 100) / 12
    assert np.allclose(np.diff(np.log(n)), step, atol=0.01)
    assert np.log(n[0] / 100) == pytest.approx(step / 2, abs=0.01)
    assert design.group_idx.tolist() == [0, 1] * 6
    truth, events = simulate_from_prior(
        br.load_spec("logit_normal"), design, np.random.default_rng(11)
    )
    assert events.shape == (12,) and np.all(events <= n)
    assert set(truth) == {"alpha", "tau", "rate"}


def test_every_configuration_simulates():
    from bayesreview.validation import (
        SBC_LEVEL_TOTALS,
        _replicate_design,
        network_sbc_design,
        simulate_network,
    )

    for name, config in SBC_CONFIGURATIONS.items():
        spec = br.load_spec(config["model"])
        if spec.structure == "network":
            arms = network_sbc_design()
            truth, events = simulate_network(spec, arms, np.random.default_rng(12))
            assert len(truth["rate"]) == arms["modality"].nunique(), name
            assert len(events) == len(arms) and (events <= arms["n"]).all(), name
            continue
        data, levels, hidden = _replicate_design(
            config.get("design", "calcinosis"), config.get("bias"), spec.outcome == "response"
        )
        truth, events = simulate_from_prior(
            spec,
            data,
            np.random.default_rng(12),
            levels=levels,
            hidden=hidden,
            totals=SBC_LEVEL_TOTALS,
        )
        assert np.asarray(truth["rate"]).shape[-1] == data.n_groups, name
        assert np.shape(events)[-1] == data.n_rows, name
    with pytest.raises(br.BayesReviewError, match="design"):
        sbc_replicate(0, design="nowhere")
    with pytest.raises(br.BayesReviewError, match="bias"):
        sbc_replicate(0, bias=True)
    with pytest.raises(br.BayesReviewError, match="unknown SBC configuration"):
        sbc_job("nowhere")


# ---------------------------------------------------------------------------------------------
# SBC of the fitted model (slow): calibrated, and a miscalibrated fit that must be caught
# ---------------------------------------------------------------------------------------------

SBC_SETTINGS = {"draws": 200, "tune": 300, "thin": 4}  # L = 2 chains x 50 = 100


def sbc_run(job, seeds, cache):
    return run_replicates(job, seeds, "sbc", cache=cache, n_jobs=1)


@pytest.mark.slow
def test_sbc_of_the_default_beta_binomial_model(tmp_path):
    ranks = sbc_run(sbc_job("beta_binomial", **SBC_SETTINGS), range(20), tmp_path)
    L = 100
    assert (ranks["L"] == L).all()
    columns = [c for c in ranks if c.startswith(RANK_PREFIX)]
    assert len(columns) == 6 + 2 + 6 + 6  # alpha, log_phi & log_phi_sd, phi, rate per group
    assert ranks[columns].to_numpy().min() >= 0 and ranks[columns].to_numpy().max() <= L
    # beta-binomial: the mean rate is invlogit(alpha), so both have the same rank
    for group in sbc_design().groups:
        assert (ranks[f"{RANK_PREFIX}rate[{group}]"] == ranks[f"{RANK_PREFIX}alpha[{group}]"]).all()
    table = sbc_uniformity(ranks, L, level=0.05)
    assert not table["fails"].any(), table.sort_values("p_value").head().to_string()


@pytest.mark.slow
def test_sbc_of_the_joint_response_model_and_the_missing_level_mixture(tmp_path):
    groups = sbc_design().groups
    ranks = sbc_run(sbc_job("response", **SBC_SETTINGS), range(20), tmp_path)
    columns = {c.removeprefix(RANK_PREFIX) for c in ranks if c.startswith(RANK_PREFIX)}
    expected = {"log_phi", "log_phi_sd", "log_phi_cond", "log_phi_sd_cond"}
    for g in groups:
        expected |= {f"alpha[{g}]", f"alpha_cond[{g}]", f"phi[{g}]", f"phi_cond[{g}]"}
        expected |= {f"rate[complete, {g}]", f"rate[any, {g}]"}
    assert columns == expected
    for g in groups:  # any response = invlogit(alpha): the same ranks
        assert (ranks[f"{RANK_PREFIX}rate[any, {g}]"] == ranks[f"{RANK_PREFIX}alpha[{g}]"]).all()
    assert not sbc_uniformity(ranks, 100)["fails"].any()

    ranks = sbc_run(sbc_job("missing_levels", **SBC_SETTINGS), range(20), tmp_path)
    columns = {c.removeprefix(RANK_PREFIX) for c in ranks if c.startswith(RANK_PREFIX)}
    levels = {f"bias_level_prob[{lv}]" for lv in ("low", "moderate", "high")}
    assert levels | {"beta[moderate]", "beta[high]"} <= columns
    assert not sbc_uniformity(ranks, 100)["fails"].any()


@pytest.mark.slow
def test_sbc_detects_a_prior_ten_times_too_narrow(tmp_path):
    # Simulate with intercept ~ Normal(0, 15) and fit the default Normal(0, 1.5): the fitted
    # prior's sigma is 10x too small for the simulation. The same compiled model as above.
    wide = br.load_spec("beta_binomial").with_prior(
        "intercept", {"dist": "normal", "mu": 0.0, "sigma": 15.0}
    )
    job = functools.partial(sbc_replicate, model=wide, fit_model="beta_binomial", **SBC_SETTINGS)
    ranks = sbc_run(job, range(30), tmp_path)
    table = sbc_uniformity(ranks, 100, level=0.05).set_index("quantity")
    # the truth sits beyond the shrunken posterior: ranks pile up at 0 and L. (With 20
    # replicates, 4 bins cap the chi-square near 20: too little power at a Bonferroni level.)
    assert table.loc["alpha[topical_sts]", "fails"]
    assert table.filter(like="alpha[", axis=0)["fails"].sum() >= 5
