"""The ``bayesreview`` command.

Heavy libraries (PyMC, ArviZ, matplotlib) are imported inside the commands that need them, so
``bayesreview --help`` answers at once. Every :class:`~bayesreview.errors.BayesReviewError`
becomes a one-line message on standard error and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bayesreview import __version__
from bayesreview.errors import BayesReviewError
from bayesreview.formatting import percent

EXIT_USAGE = 2


def _add_data_argument(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "data",
        nargs=None if required else "?",
        help="study table (CSV)" + ("" if required else "; default: the bundled calcinosis data"),
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesreview`` command."""
    parser = argparse.ArgumentParser(
        prog="bayesreview",
        description="Bayesian random-effects meta-analysis of response rates from small studies.",
    )
    parser.add_argument("--version", action="version", version=f"bayesreview {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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


def _load(path: str | None):
    from bayesreview.data import load_dataset, read_studies

    return load_dataset("calcinosis_cutis") if path is None else read_studies(path)


def _format_crude(table) -> str:
    """The crude table as people read it: events/N and percentages with exact intervals."""
    by = table.columns[0]
    outcomes = [o for o in ("complete", "partial", "any", "events") if f"{o}_rate" in table]
    lines = []
    header = f"{by:<24} {'studies':>7} {'N':>5}" + "".join(f"  {o:<26}" for o in outcomes)
    lines.append(header)
    for row in table.itertuples(index=False):
        record = row._asdict()
        text = f"{record[by]!s:<24} {record['studies']:>7} {record['denominator']:>5}"
        for o in outcomes:
            cell = (
                f"{record[o]}/{record['denominator']} {percent(record[f'{o}_rate'])}% "
                f"({percent(record[f'{o}_lower'])}-{percent(record[f'{o}_upper'])})"
            )
            text += f"  {cell:<26}"
        lines.append(text.rstrip())
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.command == "crude":
        from bayesreview.data import crude_table

        table = crude_table(_load(args.data), by=args.by, unknown=args.unknown)
        print(_format_crude(table))
        print("\nCrude proportions with exact (Clopper-Pearson) 95% intervals, in percent.")
        return 0
    if args.command == "validate":
        studies = _load(args.data)
        print(f"{args.data}: OK, {len(studies)} studies, {int(studies['n'].sum())} patients")
        return 0
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _run(args)
    except BayesReviewError as exc:
        print(f"bayesreview {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
