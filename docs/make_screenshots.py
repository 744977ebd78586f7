"""Render the HTML report and a notebook cell in a headless browser; keep screenshots in docs/.

Run from the repository root (needs Chromium: ``apt-get install chromium``)::

    python docs/make_screenshots.py            # 4 chains x 1000 draws
    python docs/make_screenshots.py --draws 300

It fits the bundled data as ``bayesreview analyze`` does (the joint response model pooled by
``group``, seed 2021), writes the self-contained report and a page holding what a Jupyter cell
ending in ``result`` shows (``Fit._repr_html_``), and has Chromium render both offline
(``--headless``, no network: the report must not need any). The screenshots are
``docs/figures/report.png`` (the top of the report) and ``docs/figures/notebook_cell.png``.
Files are written whole or not at all.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import bayesreview as br  # noqa: E402
from bayesreview._io import atomic_path  # noqa: E402
from bayesreview.report import write_report  # noqa: E402

FIGURES = HERE / "figures"
SEED = 2021
#: A notebook cell's frame around the fit's HTML, styled like JupyterLab's output area.
NOTEBOOK_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ font-family: sans-serif; font-size: 13px; margin: 16px; }}
.input {{ font-family: monospace; background: #f5f5f5; border: 1px solid #e0e0e0;
          padding: 8px; margin-bottom: 8px; }}
.prompt {{ color: #307fc1; font-family: monospace; }}
table {{ border-collapse: collapse; margin: 6px 0; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }}
</style></head><body>
<div><span class="prompt">In [3]:</span><div class="input">result</div></div>
<div><span class="prompt">Out[3]:</span>{body}</div>
</body></html>
"""


def chromium() -> str:
    """The Chromium executable, or an error saying how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("make_screenshots: Chromium not found; apt-get install chromium")


def screenshot(page: Path, target: Path, width: int, height: int) -> None:
    """Render ``page`` offline in headless Chromium and save a PNG of its top to ``target``."""
    with atomic_path(target) as partial:
        # Chromium names its output by extension: give the partial file a .png name
        png = partial.with_suffix(".png")
        subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--proxy-server=127.0.0.1:9",  # no network: a fetch would fail visibly
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        png.replace(partial)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    args = parser.parse_args()
    studies = br.load_dataset("calcinosis_cutis")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        result = br.fit(
            studies,
            outcome="response",
            model="response",
            by="group",
            draws=args.draws,
            tune=args.draws,
            chains=args.chains,
            seed=SEED,
            progressbar=False,
        )
    with tempfile.TemporaryDirectory() as folder:
        report = write_report(result, Path(folder) / "report.html")
        screenshot(report, FIGURES / "report.png", 1200, 1500)
        cell = Path(folder) / "cell.html"
        cell.write_text(NOTEBOOK_PAGE.format(body=result._repr_html_()), encoding="utf-8")
        screenshot(cell, FIGURES / "notebook_cell.png", 1100, 560)
    print(f"wrote {FIGURES / 'report.png'} and {FIGURES / 'notebook_cell.png'}")


if __name__ == "__main__":
    main()
