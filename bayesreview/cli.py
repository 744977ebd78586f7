"""The ``bayesreview`` command.

Heavy libraries (PyMC, ArviZ, matplotlib) are imported inside the commands that need them, so
``bayesreview --help`` answers at once. Every :class:`~bayesreview.errors.BayesReviewError`
becomes a one-line message on standard error and exit code 2, never a traceback.

Commands
--------
``analyze [DATA]``
    Fit the model and write summary.csv, comparison.csv, ranks.csv, crude.csv, studies.csv,
    diagnostics.csv, forest plots (PNG, SVG, PDF), fit.nc and report.html into ``--out``.
``report FIT.nc``
    The same tables, figures and report from a saved fit, without refitting.
``crude [DATA]``
    The crude pooled table (what reviews print).
``validate DATA``
    Check a study table and list every problem at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bayesreview import __version__
from bayesreview.data import FIT_OUTCOMES, OUTCOMES
from bayesreview.errors import BayesReviewError
from bayesreview.formatting import percent
from bayesreview.spec import shipped_models

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_OUT = "bayesreview-results"
#: Outcomes ``analyze`` accepts (``events`` for a table with an ``events`` column only).
#: Formats of the forest plots; report.html embeds the SVG.
FIGURE_FORMATS = ("png", "svg", "pdf")
#: Files of ours that a run with --force removes when it did not write them itself.
FIGURE_PATTERNS = tuple(f"forest_*.{fmt}" for fmt in FIGURE_FORMATS)


def _add_data_argument(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "data",
        nargs=None if required else "?",
        help="study table (CSV)" + ("" if required else "; default: the bundled calcinosis data"),
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder to write the results into (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into DIR even if it is not empty (files of the same names are replaced, "
        "forest plots of outcomes not drawn this time are removed, other files are kept)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesreview`` command."""
    parser = argparse.ArgumentParser(
        prog="bayesreview",
        description="Bayesian random-effects meta-analysis of response rates from small studies.",
    )
    parser.add_argument("--version", action="version", version=f"bayesreview {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    analyze = commands.add_parser(
        "analyze",
        help="fit the model and write tables, forest plots, the fit and an HTML report",
        description=(
            "Fit a Bayesian random-effects meta-analysis and write summary.csv, comparison.csv, "
            "ranks.csv, crude.csv, studies.csv, diagnostics.csv, forest_<outcome>.png/.svg/.pdf, "
            "fit.nc and report.html into DIR. Without DATA, the bundled calcinosis cutis review "
            "is analysed with --outcome response --by group (the rows of its Table 2); with "
            "DATA the defaults are --outcome any --by modality."
        ),
    )
    _add_data_argument(analyze, required=False)
    analyze.add_argument(
        "--outcome",
        choices=FIT_OUTCOMES,
        default=None,
        help="any (complete or partial), complete, partial, or response (all three, fitted "
        "jointly). Default: the model's outcome if it sets one, else response for the bundled "
        "data and any for DATA",
    )
    analyze.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help=f"shipped model ({', '.join(shipped_models())}) or a .toml specification "
        "(default: response for --outcome response, else beta_binomial; selection needs one "
        "outcome, e.g. --outcome any; network: rows sharing a study are arms of one trial, "
        "--by names the treatment column)",
    )
    analyze.add_argument(
        "--by",
        default=None,
        metavar="COLUMN",
        help="column whose levels are pooled separately (default: group for the bundled data, "
        "modality for DATA)",
    )
    analyze.add_argument(
        "--bias",
        default=None,
        metavar="COLUMN",
        help="bias covariate, e.g. risk_of_bias or design (default: none)",
    )
    analyze.add_argument(
        "--unknown",
        choices=["failure", "exclude"],
        default="failure",
        help="unknown responses count as failures (default) or are excluded",
    )
    analyze.add_argument(
        "--draws", type=int, default=1000, metavar="N", help="draws per chain (default: 1000)"
    )
    analyze.add_argument(
        "--seed", type=int, default=None, metavar="N", help="random seed (default: random)"
    )
    analyze.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="RATE",
        help="a clinically meaningful rate, 0-1 (e.g. 0.5): adds, per modality, P(pooled rate "
        "> RATE) and the share of new studies above it (exceedance.csv and the report)",
    )
    analyze.add_argument(
        "--no-bias-analyses",
        action="store_true",
        help="skip the refits with each bias covariate (study design; risk of bias, with the "
        "published totals for the bundled data) behind bias.csv and the report's Bias section",
    )
    _add_output_arguments(analyze)
    advanced = analyze.add_argument_group("advanced")
    advanced.add_argument(
        "--tune", type=int, default=None, metavar="N", help="tuning steps (default: --draws)"
    )
    advanced.add_argument("--chains", type=int, default=4, metavar="N", help="chains (default: 4)")
    advanced.add_argument(
        "--no-progress",
        action="store_true",
        help="do not show the sampler's progress bar (shown only in a terminal anyway)",
    )

    report = commands.add_parser(
        "report",
        help="tables, forest plots and the HTML report of a saved fit (no refitting)",
        description="Write the tables, forest plots and report.html of a fit saved as fit.nc.",
    )
    report.add_argument("fit", metavar="FIT.nc", help="a fit saved by `bayesreview analyze`")
    _add_output_arguments(report)

    _add_update_parser(commands)

    crude = commands.add_parser("crude", help="print the crude pooled table")
    _add_data_argument(crude, required=False)
    crude.add_argument("--by", default="modality", help="grouping column (default: modality)")
    crude.add_argument(
        "--unknown",
        choices=["failure", "exclude"],
        default="failure",
        help="unknown responses count as failures (default) or are excluded",
    )

    validate = commands.add_parser("validate", help="list every problem in a study table")
    _add_data_argument(validate, required=True)
    return parser


def _add_update_parser(commands) -> None:
    update = commands.add_parser(
        "update",
        help="refit a saved fit with new or corrected studies and say what changed",
        description=(
            "Add the studies of NEW.csv to a saved fit's table (a row whose study label is "
            "already there, in the same modality, replaces it), refit with the same model, "
            "settings and seed, and write the results into DIR with a 'What changed' section "
            "in report.html. The old fit file is not touched."
        ),
    )
    update.add_argument("fit", metavar="FIT.nc", help="a fit saved by `bayesreview analyze`")
    update.add_argument("new", metavar="NEW.csv", help="new or corrected studies")
    _add_output_arguments(update)


def _load(path: str | None):
    from bayesreview.data import load_dataset, read_studies

    return load_dataset("calcinosis_cutis") if path is None else read_studies(path)


def _format_crude(table, labels: Mapping[str, str] | None = None) -> str:
    """The crude table as people read it: events/N and percentages with exact intervals."""
    labels = labels or {}
    by = table.columns[0]
    outcomes = [o for o in (*OUTCOMES, "events") if f"{o}_rate" in table]
    lines = []
    header = f"{by:<24} {'studies':>7} {'N':>5}" + "".join(f"  {o:<26}" for o in outcomes)
    lines.append(header)
    for row in table.itertuples(index=False):
        record = row._asdict()
        name = labels.get(str(record[by]), str(record[by]))
        text = f"{name:<24} {record['studies']:>7} {record['denominator']:>5}"
        for o in outcomes:
            cell = (
                f"{record[o]}/{record['denominator']} {percent(record[f'{o}_rate'])}% "
                f"({percent(record[f'{o}_lower'])}-{percent(record[f'{o}_upper'])})"
            )
            text += f"  {cell:<26}"
        lines.append(text.rstrip())
    return "\n".join(lines)


def format_summary(summary, labels: Mapping[str, str] | None = None) -> str:
    """The main results as a plain-text table: crude % next to the posterior, per modality.

    Parameters
    ----------
    summary : pandas.DataFrame
        As from :meth:`bayesreview.Fit.summary`.
    labels
        Display labels of the modalities (code -> label), e.g. :attr:`bayesreview.Fit.labels`;
        default None: the codes.
    """
    labels = labels or {}
    lines = []
    names = {m: labels.get(str(m), str(m)) for m in summary["modality"]}
    width = max(8, *(len(name) for name in names.values()))
    for outcome, rows in summary.groupby("outcome", sort=False):
        lines.append(f"Outcome: {outcome}")
        lines.append(
            f"  {'modality':<{width}}  {'events/N':>8}  {'crude % (95% CI)':<18}"
            f"  mean rate % (95% CrI)"
        )
        for r in rows.itertuples(index=False):
            crude = f"{percent(r.crude)} ({percent(r.crude_lower)}-{percent(r.crude_upper)})"
            post = (
                f"{percent(r.mean_rate)} ({percent(r.mean_rate_lower)}-"
                f"{percent(r.mean_rate_upper)})"
            )
            lines.append(
                f"  {names[r.modality]:<{width}}  {f'{r.events}/{r.n}':>8}  {crude:<18}  {post}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


# --------------------------------------------------------------------------------------------
# Writing a results folder: everything in a temporary sibling folder first, then moved in
# --------------------------------------------------------------------------------------------


def _check_out(out: Path, force: bool) -> None:
    """Refuse a DIR that is a file, or a non-empty folder without --force (before any work)."""
    if out.exists() and not out.is_dir():
        raise BayesReviewError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BayesReviewError(
            f"--out {out}: folder is not empty; choose another folder or pass --force to "
            "replace the files in it"
        )
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise BayesReviewError(f"--out {out}: {parent} is not a folder")


class _Staging:
    """A temporary folder next to DIR; :meth:`commit` moves its files into DIR.

    When DIR does not exist or is empty, the whole folder is renamed into place (one atomic
    step). Otherwise (``--force``) each file replaces its namesake with ``os.replace``, forest
    plots of an earlier run that this run did not draw (other outcomes) are removed, and other
    files in DIR are left alone. On error the temporary folder is removed, so DIR never holds a
    half-written file.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))

    def commit(self) -> list[str]:
        names = sorted(p.name for p in self.path.iterdir())
        if self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()
        if not self.out.exists():
            os.replace(self.path, self.out)
        else:
            for name in names:
                os.replace(self.path / name, self.out / name)
            self.path.rmdir()
            for pattern in FIGURE_PATTERNS:  # forest plots of outcomes this run did not draw
                for stale in self.out.glob(pattern):
                    if stale.name not in names:
                        stale.unlink()
        return names

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _write_csv(frame, path: Path) -> None:
    frame.to_csv(path, index=False, float_format="%.6g")


def _save_figures(figures: Callable[[], Iterable[tuple[str, Any]]], staging: Path) -> None:
    """Each (name, figure) that ``figures()`` gives, drawn without a display, saved into
    ``staging`` as name.png/.svg/.pdf (:data:`FIGURE_FORMATS`) and closed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesreview.plots import save_figure

    for name, figure in figures():
        try:
            save_figure(figure, staging / name, formats=FIGURE_FORMATS)
        finally:
            plt.close(figure)


def _draw_forest_plots(fit, outcomes: Sequence[str], staging: Path) -> None:
    """forest_<outcome>.png/.svg/.pdf of each outcome into ``staging``."""
    _save_figures(lambda: ((f"forest_{o}", fit.forest_plot(outcome=o)) for o in outcomes), staging)


def _write_results(
    fit,
    staging: Path,
    crude,
    save_fit: bool = False,
    threshold: float | None = None,
    bias_table=None,
) -> None:
    """Tables, forest plots and the report of ``fit`` (and fit.nc) into the folder ``staging``;
    with ``threshold``, exceedance.csv and a "Clinical thresholds" section too; with
    ``bias_table`` (:func:`bayesreview.robustness.bias_analyses`), bias.csv and a "Bias"
    section."""
    from bayesreview.report import write_report
    from bayesreview.thresholds import exceedance

    outcomes = list(fit.outcomes)
    if save_fit:
        fit.save(staging / "fit.nc")
    summary = fit.summary()
    comparison = fit.compare()
    ranks = fit.ranks()
    _write_csv(summary, staging / "summary.csv")
    _write_csv(comparison, staging / "comparison.csv")
    _write_csv(ranks, staging / "ranks.csv")
    _write_csv(crude, staging / "crude.csv")
    _write_csv(fit.study_estimates(), staging / "studies.csv")
    _write_csv(fit.diagnostics(), staging / "diagnostics.csv")
    tables = {"summary": summary, "comparison": comparison, "ranks": ranks}
    if threshold is not None:
        tables["exceedance"] = exceedance(fit, threshold)
        _write_csv(tables["exceedance"], staging / "exceedance.csv")
    if bias_table is not None:
        tables["bias"] = bias_table
        _write_csv(bias_table, staging / "bias.csv")
    _draw_forest_plots(fit, outcomes, staging)
    # the report shows the SVG files just written: vector, and no second rendering
    figures = {o: (staging / f"forest_{o}.svg").read_bytes() for o in outcomes}
    write_report(
        fit,
        staging / "report.html",
        figures=figures,
        tables=tables,
    )


def _in_staging(out: Path, work) -> list[str]:
    staging = _Staging(out)
    try:
        work(staging.path)
        return staging.commit()
    finally:
        if staging.path.exists():
            staging.discard()


def _analyze(args: argparse.Namespace) -> int:
    import warnings

    from bayesreview.data import crude_table, outcomes_of
    from bayesreview.spec import load_spec

    out = Path(args.out)
    _check_out(out, args.force)
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise BayesReviewError(f"--threshold {args.threshold}: must be a rate between 0 and 1")
    bundled = args.data is None
    studies = _load(args.data)  # data problems are reported before the model is compiled
    spec = load_spec(args.model) if args.model is not None else None
    outcome = args.outcome or (spec.outcome if spec is not None else None)
    if outcome is None:
        outcome = "response" if bundled else ("any" if "complete" in studies else "events")
    allowed = outcomes_of(studies) + (("response",) if "complete" in studies else ())
    if outcome not in allowed:
        raise BayesReviewError(
            f"--outcome {outcome}: this study table supports {', '.join(allowed)}"
        )
    if spec is None:
        spec = load_spec("response" if outcome == "response" else "beta_binomial")
    by = args.by or ("group" if bundled else "modality")
    if spec.structure == "network":
        return _analyze_network(args, studies, spec, outcome, by)
    crude = crude_table(studies, by=by, unknown=args.unknown)

    from bayesreview.errors import ConvergenceWarning
    from bayesreview.fitting import fit

    print(
        f"Fitting {spec.name!r} to {len(studies)} studies (outcome {outcome}, by {by}) ...",
        file=sys.stderr,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = fit(
            studies,
            outcome=outcome,
            model=spec,
            by=by,
            bias=args.bias,
            unknown=args.unknown,
            draws=args.draws,
            tune=args.draws if args.tune is None else args.tune,
            chains=args.chains,
            seed=args.seed,
            progressbar=not args.no_progress and sys.stderr.isatty(),
        )
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            print(f"bayesreview analyze: warning: {warning.message}", file=sys.stderr)

    bias_table = None
    if not args.no_bias_analyses and result.data.bias is None:
        from bayesreview.robustness import bias_analyses

        print("Refitting with each bias covariate ...", file=sys.stderr)
        bias_table = bias_analyses(result)
        refits = bias_table[bias_table["analysis"] != "none"].drop_duplicates("analysis")
        for name, problems in zip(refits["analysis"], refits["sampling"], strict=True):
            if problems:
                print(f"bayesreview analyze: warning: {name} refit: {problems}.", file=sys.stderr)
    names = _in_staging(
        out,
        lambda staging: _write_results(
            result, staging, crude, True, args.threshold, bias_table=bias_table
        ),
    )
    print(format_summary(result.summary(), result.labels))
    print(
        "\nCrude: events/N with exact 95% CI. Posterior: median and 95% credible interval of "
        "the mean response rate."
    )
    print(f"Wrote {len(names)} files to {out}/ (open {out / 'report.html'})")
    return 0


def _analyze_network(args: argparse.Namespace, studies, spec, outcome: str, by: str) -> int:
    """``analyze --model network``: fit the network, check its inconsistency where it has a
    loop, and write the network's tables, figures and report."""
    import warnings

    from bayesreview.errors import AssumptionWarning, ConvergenceWarning
    from bayesreview.fitting import fit

    if args.threshold is not None or args.bias is not None:
        raise BayesReviewError("--threshold and --bias: not for the network model")
    print(
        f"Fitting the network model {spec.name!r} to {len(studies)} arms (outcome {outcome}, "
        f"treatments in {by!r}) ...",
        file=sys.stderr,
    )
    sampling = {
        "draws": args.draws,
        "tune": args.draws if args.tune is None else args.tune,
        "chains": args.chains,
        "progressbar": not args.no_progress and sys.stderr.isatty(),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("always", AssumptionWarning)
        result = fit(
            studies, outcome=outcome, model=spec, by=by, unknown=args.unknown, seed=args.seed,
            **sampling,
        )  # fmt: skip
        check = None
        if result.structure.has_loop:
            print("Checking inconsistency (unrelated mean effects) ...", file=sys.stderr)
            check = result.inconsistency(**sampling)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning | AssumptionWarning):
            print(f"bayesreview analyze: warning: {warning.message}", file=sys.stderr)
    out = Path(args.out)
    names = _in_staging(
        out, lambda staging: _write_network_results(result, check, staging, save_fit=True)
    )
    print(result.summary().to_string(index=False))
    print("\nAssumes: " + "; ".join(result.assumptions()) + ".")
    if check is not None:
        print(check.summary())
    print(f"Wrote {len(names)} files to {out}/ (open {out / 'report.html'})")
    return 0


def _write_network_results(result, check, staging: Path, save_fit: bool = False) -> None:
    """The network's tables, its three figures in every format of :data:`FIGURE_FORMATS`,
    report.html and, with ``save_fit``, fit.nc, into ``staging``."""
    from bayesreview.report import NETWORK_FIGURES, network_figures, write_report

    tables = {
        "summary": result.summary(),
        "relative_effects": result.relative_effects(),
        "rates": result.rates(),
        "league": result.league_table().rename_axis("treatment").reset_index(),
        "ranks": result.ranks(),
        "diagnostics": result.diagnostics(),
    }
    if check is not None:
        tables["inconsistency"] = check.pairs
    if save_fit:
        result.save(staging / "fit.nc")
    for name, table in tables.items():
        _write_csv(table, staging / f"{name}.csv")
    _save_figures(lambda: network_figures(result).items(), staging)
    # the report shows the SVG files just written, as for the single-arm models
    figures = {name: (staging / f"{name}.svg").read_bytes() for name in NETWORK_FIGURES}
    write_report(result, staging / "report.html", figures=figures, inconsistency=check)


def _report(args: argparse.Namespace) -> int:
    from bayesreview.data import crude_table
    from bayesreview.fitting import load_fit

    out = Path(args.out)
    _check_out(out, args.force)
    result = load_fit(args.fit)
    if result.spec.structure == "network":
        names = _in_staging(out, lambda staging: _write_network_results(result, None, staging))
        print(result.summary().to_string(index=False))
        print(f"\nWrote {len(names)} files to {out}/ (open {out / 'report.html'})")
        return 0
    crude = crude_table(
        result.studies, by=result.settings["by"], unknown=result.settings["unknown"]
    )
    names = _in_staging(out, lambda staging: _write_results(result, staging, crude))
    print(format_summary(result.summary(), result.labels))
    print(f"\nWrote {len(names)} files to {out}/ (open {out / 'report.html'})")
    return 0


def _update(args: argparse.Namespace) -> int:
    from bayesreview.data import crude_table
    from bayesreview.fitting import load_fit
    from bayesreview.living import changes, update

    out = Path(args.out)
    _check_out(out, args.force)
    old = load_fit(args.fit)
    if old.spec.structure == "network":
        raise BayesReviewError(f"{args.fit}: a network fit; refit it with the new studies")
    result = update(old, args.new)  # new rows are validated before anything is fitted
    crude = crude_table(
        result.studies, by=result.settings["by"], unknown=result.settings["unknown"]
    )
    table = changes(result)

    def write(staging: Path) -> None:
        _write_results(result, staging, crude, save_fit=True)
        _write_csv(table, staging / "changes.csv")

    names = _in_staging(out, write)
    print(format_summary(result.summary(), result.labels))
    added, replaced = result.settings["update"]["added"], result.settings["update"]["replaced"]
    print(f"\nAdded {len(added)} and replaced {len(replaced)} studies.")
    print(f"Wrote {len(names)} files to {out}/ (open {out / 'report.html'})")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "analyze":
        return _analyze(args)
    if args.command == "report":
        return _report(args)
    if args.command == "update":
        return _update(args)
    if args.command == "crude":
        from bayesreview.data import crude_table, display_labels

        studies = _load(args.data)
        table = crude_table(studies, by=args.by, unknown=args.unknown)
        print(_format_crude(table, display_labels(studies)))
        print("\nCrude proportions with exact (Clopper-Pearson) 95% intervals, in percent.")
        return 0
    if args.command == "validate":
        studies = _load(args.data)
        print(f"{args.data}: OK, {len(studies)} studies, {int(studies['n'].sum())} patients")
        return 0
    raise AssertionError(args.command)


def _one_line(message: str) -> str:
    """A multi-line error message (e.g. every problem of a table) joined into one line."""
    lines = [line.strip().removeprefix("- ").strip() for line in message.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    head, rest = lines[0], lines[1:]
    return head.rstrip(":") + ": " + "; ".join(rest)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Exit codes: 0 success; 2 a usage, data or specification error (one line on standard
    error, no traceback); 1 an operating-system error writing the results; 130 interrupted.
    ``validate`` prints every problem of a table, one per line.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    prefix = f"bayesreview {args.command}: error: "
    try:
        return _run(args)
    except BayesReviewError as exc:
        text = str(exc) if args.command == "validate" else _one_line(str(exc))
        print(prefix + text, file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(prefix + _one_line(str(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bayesreview {args.command}: interrupted; no results were written", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """The console entry point: :func:`main`, then a normal exit with its code.

    The interpreter's teardown (and every ``atexit`` handler) runs as usual.
    """
    sys.exit(main())


if __name__ == "__main__":
    run()
