"""Measure the beta-binomial's anchored parameterisation against the plain non-centred one.

Run from the repository root::

    python docs/make_parameterisation.py     # about 3 minutes on 2 cores

Each case is fitted at the package defaults (4 chains x 1000 draws after 1000 tuning steps,
unless the case says otherwise) on several seeds, once as the package chooses
(:func:`bayesreview.model_data.anchor_groups`) and once with every group's log phi non-centred.
It writes ``docs/evidence/parameterisation.csv`` (one row per case x parameterisation x seed:
divergent transitions, the largest R-hat, gradient evaluations; and the code fingerprint) and
regenerates the block of ``docs/models.md`` between its ``parameterisation`` markers, the table
and its one sentence computed from these numbers. Files are written whole or not at all.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import bayesreview as br  # noqa: E402
import bayesreview.model_data  # noqa: E402
from bayesreview._io import atomic_path  # noqa: E402
from bayesreview.evidence import code_fingerprint  # noqa: E402
from bayesreview.model_data import anchor_groups, model_data  # noqa: E402

TABLE = HERE / "evidence" / "parameterisation.csv"
PAGE = HERE / "models.md"
START, END = "<!-- parameterisation:start -->", "<!-- parameterisation:end -->"


def _hannum() -> pd.DataFrame:
    return br.read_studies(ROOT / "tests" / "data" / "hannum2020.csv")


def _series(phis: tuple[float, ...], rates: tuple[float, ...], seed: int, sizes=(30, 300)):
    """40 series per modality of ``sizes`` patients, beta-distributed rates (inf: homogeneous)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, (phi, rate) in enumerate(zip(phis, rates, strict=True)):
        for j in range(40):
            n = int(rng.integers(*sizes))
            p = rng.beta(rate * phi, (1 - rate) * phi) if np.isfinite(phi) else rate
            events = int(rng.binomial(n, p))
            rows.append({"study": f"m{m}-{j}", "modality": f"m{m}", "n": n, "events": events})
    return pd.DataFrame(rows)


def _homogeneous() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    size = rng.integers(1, 6, 600)
    modality = np.repeat(["a", "b", "c"], 200)
    events = rng.binomial(size, 0.4)
    study = [f"s{i}" for i in range(600)]
    return pd.DataFrame({"study": study, "modality": modality, "n": size, "events": events})


ANY = {"outcome": "any"}
#: (case, study table, fit keywords).
CASES = [
    ("hannum2020 by objectivity", _hannum, {"outcome": "events", "by": "objectivity"}),
    ("3 modalities, phi 5 / 20 / 50", lambda: _series((5, 20, 50), (0.3, 0.5, 0.7), 11), {}),
    ("3 modalities, phi 15 / 15 / 15", lambda: _series((15, 15, 15), (0.3, 0.5, 0.7), 11), {}),
    ("600 homogeneous studies of 1-5", _homogeneous, {"collapse": False}),
    ("calcinosis cutis, any response", lambda: br.load_dataset("calcinosis_cutis"), ANY),
]
SEEDS = (1, 2, 3)


def _fit_once(table: pd.DataFrame, seed: int, kwargs: dict) -> dict:
    options = {"outcome": "events", "seed": seed, "progressbar": False, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = br.fit(table, **options)
    stats = result.idata.sample_stats
    return {
        "divergences": result.divergences,
        "rhat_max": float(result.diagnostics()["r_hat"].max()),
        "gradient_evaluations": int(stats["n_steps"].sum()) if "n_steps" in stats else -1,
    }


def _no_anchor(data, spec):
    return {suffix: np.zeros(data.n_groups) for suffix, *_ in data.stage_counts()}


def measure() -> pd.DataFrame:
    rows = []
    for case, make_table, kwargs in CASES:
        table = make_table()
        data = model_data(table, kwargs.get("outcome", "events"), by=kwargs.get("by", "modality"))
        anchored = anchor_groups(data, br.load_spec("beta_binomial"))[""].any()
        for form in ("chosen", "non-centred"):
            for seed in SEEDS:
                if form == "non-centred":
                    # the anchor is data (model_data.pooling_arrays asks anchor_groups)
                    with mock.patch.object(bayesreview.model_data, "anchor_groups", _no_anchor):
                        record = _fit_once(table, seed, kwargs)
                else:
                    record = _fit_once(table, seed, kwargs)
                rows.append(
                    {"case": case, "anchored": bool(anchored), "form": form, "seed": seed} | record
                )
                print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    out["fingerprint"] = code_fingerprint("sbc")
    return out


def block(table: pd.DataFrame) -> str:
    """The markdown table and the sentence computed from it."""
    per_case = table.pivot_table(
        index="case", columns="form", values="divergences", aggfunc=list, sort=False
    )
    anchored = table.groupby("case", sort=False)["anchored"].first()
    lines = [
        "| case | anchored | divergences per seed, as chosen | non-centred throughout |",
        "|---|---|---|---|",
    ]
    for case, row in per_case.iterrows():
        chosen = ", ".join(str(v) for v in row["chosen"])
        plain = ", ".join(str(v) for v in row["non-centred"])
        lines.append(f"| {case} | {'yes' if anchored[case] else 'no'} | {chosen} | {plain} |")
    worse = [
        case for case, row in per_case.iterrows() if sum(row["chosen"]) > sum(row["non-centred"])
    ]
    fits = len(table) // 2
    total = int(table.loc[table["form"] == "chosen", "divergences"].sum())
    sentence = (
        f"Over these {fits} fits the chosen parameterisation gave {total} divergent "
        f"transition(s) in all; "
        + (
            "it was never worse than the non-centred form."
            if not worse
            else f"it was worse than the non-centred form on: {', '.join(worse)}."
        )
    )
    return "\n".join([START, "", *lines, "", sentence, "", END])


def main() -> None:
    table = measure()
    with atomic_path(TABLE) as path:
        table.to_csv(path, index=False)
    page = PAGE.read_text(encoding="utf-8")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    with atomic_path(PAGE) as path:
        path.write_text(head + block(table) + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
