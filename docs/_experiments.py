"""What make_validation.py and make_coverage.py share: running an experiment's configurations
and gathering their records into the one committed table."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bayesreview.evidence import (
    code_fingerprint,
    loaded_fingerprint,
    read_evidence,
    settings_hash,
    write_evidence,
)
from bayesreview.validation import read_replicates, run_replicates


def run_experiment(
    experiment: str,
    jobs: Mapping[str, tuple[Callable[[int], Mapping[str, Any]], Any, dict[str, Any]]],
    n_jobs: int,
    client,
) -> None:
    """Run each configuration's replicates: name -> (job, seeds, settings); print a line each."""
    for name, (job, seeds, settings) in jobs.items():
        start = time.perf_counter()
        table = run_replicates(job, seeds, experiment, settings, n_jobs=n_jobs, client=client)
        print(
            f"{name}: {len(table.attrs['ran'])} run, {len(table.attrs['skipped'])} already "
            f"done, {time.perf_counter() - start:.0f} s; records in {table.attrs['folder']}",
            flush=True,
        )


def gather_records(
    experiment: str,
    evidence: Path,
    settings: Mapping[str, dict[str, Any]],
    drop: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One table of every configuration's replicates made by today's code.

    From the cache (leaving out the columns ``drop``), and from the committed table where that
    table was made by today's code with the same settings: its rows of seeds the cache has no
    record of are kept (the cache of another machine, or one cleared since). Empty when there
    is nothing.
    """
    fingerprint = loaded_fingerprint(experiment)
    committed, meta = (None, {})
    if evidence.is_file():
        committed, meta = read_evidence(evidence)
    parts = []
    for name, config in settings.items():
        table = read_replicates(experiment, config)
        if len(table):
            table = table.drop(columns=[c for c in drop if c in table]).assign(configuration=name)
            parts.append(table)
        stored = meta.get("configurations", {}).get(name, {})
        if (
            committed is not None
            and meta.get("fingerprint") == fingerprint
            and stored.get("settings_hash") == settings_hash(config)
        ):
            rows = committed[committed["configuration"] == name].drop(columns="fingerprint")
            if len(table):
                rows = rows[~rows["seed"].isin(table["seed"])]
            if len(rows):
                parts.append(rows.dropna(axis=1, how="all"))
                print(f"{name}: kept {len(rows)} rows of {evidence} not in the cache")
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def dask_client(scheduler: str | None):
    """A dask client of the scheduler at ``scheduler``, or None to run in local processes."""
    if not scheduler:
        return None
    from distributed import Client

    return Client(scheduler)


def write_table(
    experiment: str, evidence: Path, table: pd.DataFrame, configurations: dict[str, dict]
) -> None:
    """Write the gathered table with its fingerprint, warning if the code changed meanwhile."""
    if not len(table):
        return
    fingerprint = loaded_fingerprint(experiment)
    if fingerprint != code_fingerprint(experiment):
        print("warning: the code changed during the run; run again for evidence of it")
    write_evidence(table, experiment, evidence, configurations, fingerprint)
    print(f"wrote {evidence} ({len(table)} replicates)")
