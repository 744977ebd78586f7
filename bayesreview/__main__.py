"""``python -m bayesreview`` runs the command line (see :mod:`bayesreview.cli`)."""

from bayesreview.cli import run

run()
