"""Writing files whole or not at all."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it replaces ``path`` on success.

    The temporary file (``.<name>.partial`` in the same folder) is renamed over ``path`` in one
    step (``os.replace``) when the block ends without an error; on any error it is removed and
    ``path`` is left as it was, so a reader never sees a half-written file.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_fit_file(
    idata: Any,
    path: str | os.PathLike,
    spec_toml: str,
    studies_csv: str,
    settings: Mapping[str, Any],
    structure: str = "studies",
) -> Path:
    """Write ``idata`` to a netCDF file, whole or not at all, with what :func:`bayesreview.
    load_fit` needs as attributes of its posterior: the package version, the model
    ``structure``, the spec (TOML), the study table (CSV) and the settings (JSON)."""
    from bayesreview import __version__

    path = Path(path)
    idata = idata.copy()
    idata.posterior.attrs.update(
        {
            "bayesreview_version": __version__,
            "bayesreview_structure": structure,
            "bayesreview_spec": spec_toml,
            "bayesreview_studies": studies_csv,
            "bayesreview_settings": json.dumps(dict(settings)),
        }
    )
    with atomic_path(path) as temporary:
        idata.to_netcdf(str(temporary), engine="h5netcdf")
    return path
