"""Locate the data and model folders, in a wheel or in a source checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder ``name`` ("data" or "models") shipped with the package."""
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bayesreview cannot find its {name}/ folder next to {_PACKAGE}")
