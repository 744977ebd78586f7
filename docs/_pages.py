"""Pieces the generated docs pages share: Markdown tables, sentence case, and the script's run.

``docs/make_bias.py`` and ``docs/make_network.py`` fit models and write one page each; both use
:func:`md_table`, :func:`capital` and :func:`write_page`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayesreview.report import write_text_atomic


def md_table(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame``'s columns and values (no index)."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.values]
    return "\n".join(lines)


def capital(text: str) -> str:
    """``text`` with its first letter upper case and the rest as it is (unlike ``capitalize``)."""
    return text[:1].upper() + text[1:]


def write_page(description: str, build: Callable[[int, int], str], default_out: Path) -> None:
    """Parse ``--quick`` and ``--out``, build the page (1000 draws x 4 chains, or 300 x 2 with
    ``--quick``) and write it whole, printing where and how long it took."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="2 chains x 300 draws (a draft)")
    parser.add_argument("--out", default=str(default_out))
    args = parser.parse_args()
    draws, chains = (300, 2) if args.quick else (1000, 4)
    start = time.perf_counter()
    out = write_text_atomic(args.out, build(draws, chains))
    print(f"wrote {out} ({time.perf_counter() - start:.0f} s)")
