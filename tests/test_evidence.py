"""Validation evidence that stays true: fingerprints, the replicate cache, the committed tables."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import bayesreview as br
from bayesreview import evidence
from bayesreview.bias_simulation import BIAS_MIN_REPLICATES, bias_settings
from bayesreview.coverage import (
    COVERAGE_GRID,
    COVERAGE_MIN_REPLICATES,
    COVERAGE_MODELS,
    coverage_settings,
)
from bayesreview.evidence import (
    MODEL_MODULES,
    REGENERATE,
    cache_root,
    check_evidence,
    code_fingerprint,
    fingerprint_parts,
    job_settings,
    read_evidence,
    replicates_dir,
    settings_hash,
    write_evidence,
)
from bayesreview.validation import (
    RANK_PREFIX,
    SBC_CONFIGURATIONS,
    SBC_MIN_REPLICATES,
    run_replicates,
    sbc_settings,
    sbc_uniformity,
)

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / "docs" / "evidence"
PACKAGE = Path(evidence.__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# The committed evidence was made by today's code
# ---------------------------------------------------------------------------------------------


def _fail(problems: list[str]) -> None:
    if problems:
        pytest.fail("Stale or incomplete validation evidence:\n  " + "\n  ".join(problems))


def test_committed_sbc_evidence_is_from_todays_code():
    _fail(
        check_evidence(
            "sbc",
            EVIDENCE / "sbc.csv",
            {name: sbc_settings(name) for name in SBC_CONFIGURATIONS},
            SBC_MIN_REPLICATES,
        )
    )


def test_committed_bias_simulation_evidence_is_from_todays_code():
    _fail(
        check_evidence(
            "bias_simulations",
            EVIDENCE / "bias_simulations.csv",
            bias_settings(),
            BIAS_MIN_REPLICATES,
        )
    )


def test_committed_coverage_evidence_is_from_todays_code():
    path = EVIDENCE / "coverage.csv"
    per_cell = COVERAGE_MIN_REPLICATES
    problems = check_evidence(
        "coverage",
        path,
        {model: coverage_settings(model) for model in COVERAGE_MODELS},
        {model: n * len(COVERAGE_GRID) for model, n in per_cell.items()},
    )
    if not problems:  # every cell of every model, not only the total
        table, _ = read_evidence(path)
        counts = table.groupby(["configuration", "cell"]).size()
        for model in COVERAGE_MODELS:
            for cell in range(len(COVERAGE_GRID)):
                have = int(counts.get((model, cell), 0))
                if have < per_cell[model]:
                    problems.append(
                        f"{path}: {model!r} has {have} replicates in cell {cell}, fewer than "
                        f"{per_cell[model]}: regenerate with `{REGENERATE['coverage']}`"
                    )
    _fail(problems)


# ---------------------------------------------------------------------------------------------
# The fingerprint
# ---------------------------------------------------------------------------------------------


def test_fingerprint_covers_the_model_code_the_specs_and_the_experiment():
    shipped = {f"models/{name}.toml" for name in br.shipped_models()}
    modules = {f"bayesreview/{name}" for name in MODEL_MODULES}
    likelihoods = {"bayesreview/backend/models.py", "bayesreview/backend/ops.py"}
    assert likelihoods | {"bayesreview/integrals.py"} <= modules
    sbc = set(fingerprint_parts("sbc"))
    assert sbc == modules | shipped | {"bayesreview/validation.py"}
    coverage = set(fingerprint_parts("coverage"))
    assert coverage == modules | shipped | {"bayesreview/coverage.py"}
    assert len(code_fingerprint("sbc")) == 12
    with pytest.raises(br.BayesReviewError, match="experiments are sbc, coverage"):
        code_fingerprint("nowhere")


SOURCE = '''"""A module docstring."""

import math


class Rates:
    """A class docstring."""

    scale = 2.0

    def mean(self, values):
        """A method docstring."""
        return sum(values) / len(values) * self.scale


def logit(p):
    """The logit."""
    return math.log(p / (1 - p))
'''

SPEC = """# a comment
description = "A model"
likelihood = "beta_binomial"
heterogeneity = "partial_pooling"

[priors]
intercept = { dist = "normal", mu = 0.0, sigma = 1.5 }
bias = { dist = "normal", mu = 0.0, sigma = 1.0 }
"""


@pytest.fixture
def copies(tmp_path, monkeypatch):
    """A module and a specification; the fingerprint is taken of those alone."""
    module = tmp_path / "module.py"
    spec = tmp_path / "spec.toml"
    module.write_text(SOURCE)
    spec.write_text(SPEC)
    files = {"bayesreview/module.py": module, "models/spec.toml": spec}
    monkeypatch.setattr(evidence, "_source_files", lambda experiment: files)
    return module, spec


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_fingerprint_ignores_docstrings_comments_and_layout(copies):
    module, spec = copies
    before = code_fingerprint("sbc")
    _edit(module, "A module docstring.", "An edited module docstring.")
    _edit(module, '        """A method docstring."""\n', "")  # a docstring removed
    _edit(module, "def logit(p):", "# a comment\n\n\ndef logit(p):  # another")
    _edit(module, '    """The logit."""', '    """The logit,\n\n    over two lines."""')
    _edit(module, "return math.log(p / (1 - p))", "return math.log(\n        p / (1 - p)\n    )")
    _edit(module, "import math\n", 'import math\n\n"A bare string: a no-op."\n')
    _edit(spec, "# a comment", "# another comment\n# and one more")
    _edit(spec, 'description = "A model"', 'description = "An edited model"')
    _edit(spec, "mu = 0.0, sigma = 1.5", "sigma = 1.5, mu = 0.0")  # key order
    assert code_fingerprint("sbc") == before


@pytest.mark.parametrize(
    ("where", "old", "new"),
    [
        ("module", "scale = 2.0", "scale = 2.5"),  # a constant
        ("module", "/ len(values)", "* len(values)"),  # an operator
        ("module", "return math.log(p / (1 - p))", "return math.log(p / (1 + p))"),
        ("module", "def logit(p):", "def logit(q=1, p=0):"),  # a signature
        ("module", "import math", "import math as m\nmath = m"),
        ("spec", "sigma = 1.5", "sigma = 2.5"),  # a prior
        ("spec", '"partial_pooling"', '"per_modality"'),
    ],
)
def test_fingerprint_changes_with_the_code(copies, where, old, new):
    module, spec = copies
    before = code_fingerprint("sbc")
    _edit(module if where == "module" else spec, old, new)
    assert code_fingerprint("sbc") != before


def test_fingerprint_of_a_copy_of_a_real_module(tmp_path, monkeypatch):
    copy = tmp_path / "models.py"
    shutil.copy(PACKAGE / "backend" / "models.py", copy)
    monkeypatch.setattr(evidence, "_source_files", lambda experiment: {"models.py": copy})
    before = code_fingerprint("sbc")
    _edit(copy, '"""', '"""An edited first line of the docstring.\n\n')
    assert code_fingerprint("sbc") == before
    copy.write_text(copy.read_text() + "\nEXTRA = 1\n")
    assert code_fingerprint("sbc") != before
    copy.write_text("def broken(:\n")
    with pytest.raises(br.BayesReviewError, match="not valid Python"):
        code_fingerprint("sbc")


def test_settings_hash():
    assert settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": (1, 2), "a": 1})
    assert settings_hash({"a": 1}) != settings_hash({"a": 2})
    spec = br.load_spec("beta_binomial")
    wider = spec.with_prior("intercept", {"dist": "normal", "mu": 0.0, "sigma": 3.0})
    assert settings_hash({"model": spec}) != settings_hash({"model": wider})
    settings = job_settings(functools.partial(functools.partial(max, 1), 2, key=abs))
    assert settings == {"job": "builtins.max", "args": [1, 2], "kwargs": {"key": "builtins.abs"}}
    with pytest.raises(br.BayesReviewError, match="no JSON form"):
        settings_hash({"a": object()})


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESREVIEW_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("BAYESREVIEW_CACHE")
    assert cache_root() == tmp_path / "xdg" / "bayesreview"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "bayesreview"
    assert replicates_dir("sbc", "abc", "def") == cache_root() / "replicates" / "sbc" / "abc-def"


# ---------------------------------------------------------------------------------------------
# The runner never reuses a record of another fingerprint
# ---------------------------------------------------------------------------------------------


def counting_job(seed: int, calls: str) -> dict:
    (Path(calls) / f"{seed}-{len(list(Path(calls).iterdir()))}").touch()
    return {"value": seed * 10}


def _runs(calls: Path) -> list[int]:
    return sorted(int(p.name.split("-")[0]) for p in calls.iterdir())


def test_runner_never_reuses_a_record_of_another_fingerprint(tmp_path):
    settings = {"job": "counting"}
    calls = tmp_path / "calls"
    calls.mkdir()
    job = functools.partial(counting_job, calls=str(calls))

    def run(fingerprint, seeds=range(3)):
        return run_replicates(
            job, seeds, "test", settings, fingerprint=fingerprint, cache=tmp_path, n_jobs=1
        )

    run("aaa")
    assert _runs(calls) == [0, 1, 2]
    run("aaa")
    assert _runs(calls) == [0, 1, 2]  # same code: resumed, nothing rerun
    table = run("bbb")
    assert _runs(calls) == [0, 0, 1, 1, 2, 2]  # other code: every seed again
    assert table["value"].tolist() == [0, 10, 20]

    # a record of fingerprint bbb copied into the folder of aaa is not taken for aaa's
    old = replicates_dir("test", "aaa", settings_hash(settings), tmp_path)
    new = replicates_dir("test", "bbb", settings_hash(settings), tmp_path)
    shutil.copy(new / "seed-1.json", old / "seed-1.json")
    run("aaa")
    assert _runs(calls) == [0, 0, 1, 1, 1, 2, 2]
    assert json.loads((old / "seed-1.json").read_text())["fingerprint"] == "aaa"

    # nor a record whose settings differ from the run's
    record = json.loads((old / "seed-2.json").read_text())
    record["settings_hash"] = "000000000000"
    (old / "seed-2.json").write_text(json.dumps(record))
    run("aaa")
    assert _runs(calls) == [0, 0, 1, 1, 1, 2, 2, 2]


# ---------------------------------------------------------------------------------------------
# The evidence tables and their check
# ---------------------------------------------------------------------------------------------


def test_write_and_check_evidence(copies, tmp_path):
    module, _ = copies
    path = tmp_path / "evidence" / "sbc.csv"
    configurations = {"one": {"draws": 10}, "two": {"draws": 20}}
    table = pd.DataFrame(
        {"configuration": ["one"] * 3 + ["two"] * 2, "seed": [0, 1, 2, 0, 1], "x": range(5)}
    )
    write_evidence(table, "sbc", path, configurations)
    saved, meta = read_evidence(path)
    assert meta["fingerprint"] == code_fingerprint("sbc")
    assert set(saved["fingerprint"]) == {code_fingerprint("sbc")}
    assert saved.drop(columns="fingerprint").equals(table)
    assert meta["configurations"]["two"]["replicates"] == 2
    assert meta["compiled_for"] == []  # records that do not say which processor
    assert check_evidence("sbc", path, configurations, 2) == []
    made_on = table.assign(compiled_for=["znver3", "znver3", None, "skylake", "znver3"])
    write_evidence(made_on, "sbc", tmp_path / "made_on.csv", configurations)
    assert read_evidence(tmp_path / "made_on.csv")[1]["compiled_for"] == ["skylake", "znver3"]

    problems = check_evidence("sbc", path, configurations, {"one": 3, "two": 5})
    assert len(problems) == 1 and "'two' has 2 replicates, fewer than 5" in problems[0]
    problems = check_evidence("sbc", path, {**configurations, "two": {"draws": 99}})
    assert len(problems) == 1 and "'two' ran with other settings" in problems[0]
    problems = check_evidence("sbc", path, {**configurations, "three": {}})
    assert len(problems) == 1 and "'three' is missing" in problems[0]

    # a code change: the message names the table, what changed and the command
    _edit(module, "scale = 2.0", "scale = 3.0")
    (problem,) = check_evidence("sbc", path, configurations)
    assert str(path) in problem and "bayesreview/module.py" in problem
    assert REGENERATE["sbc"] in problem and "python docs/make_validation.py" in problem

    missing = check_evidence("coverage", tmp_path / "nowhere.csv", {})
    assert len(missing) == 1 and "missing" in missing[0]
    assert "python docs/make_coverage.py" in missing[0]


def test_every_failing_sbc_quantity_was_tested_again_on_fresh_seeds():
    """A quantity failing its uniformity test on the main seeds has follow-up replicates at
    fresh seeds (docs/make_validation.py runs them): at least as many as the main run."""
    table, _ = read_evidence(EVIDENCE / "sbc.csv")
    for name, rows in table.groupby("configuration"):
        fresh = rows["seed"] >= evidence.FOLLOW_UP_FIRST_SEED
        main = rows[~fresh].dropna(axis=1, how="all")
        assert len(main) >= SBC_MIN_REPLICATES, name
        uniform = sbc_uniformity(main, int(main["L"].iloc[0]))
        failed = [RANK_PREFIX + q for q in uniform.loc[uniform["fails"], "quantity"]]
        if failed:
            follow_up = rows.loc[fresh, failed].dropna()
            assert len(follow_up) >= SBC_MIN_REPLICATES, (name, failed)
