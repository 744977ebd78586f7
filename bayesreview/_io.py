"""Writing files whole or not at all, and fit files that say when they are damaged."""

from __future__ import annotations

import hashlib
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
    ``structure``, the spec (TOML), the study table (CSV) and the settings (JSON); and the
    processor the likelihood was compiled for (:func:`bayesreview.backend.compiled_for`)."""
    from bayesreview import __version__
    from bayesreview.backend import compiled_for

    path = Path(path)
    idata = idata.copy()
    idata.posterior.attrs.update(
        {
            "bayesreview_version": __version__,
            "bayesreview_structure": structure,
            "bayesreview_spec": spec_toml,
            "bayesreview_studies": studies_csv,
            "bayesreview_settings": json.dumps(dict(settings)),
            "bayesreview_compiled_for": compiled_for(),
        }
    )
    with atomic_path(path) as temporary:
        idata.to_netcdf(str(temporary), engine="h5netcdf")
        _append_checksum(temporary)
    return path


#: Begins the last line of a fit file, followed by the SHA-256 of every byte before the line:
#: :func:`fit_file_damage` checks it before the file is parsed, since damaged HDF5 metadata can
#: make the HDF5 library loop without end. HDF5 ignores bytes after the end of its data.
CHECKSUM_MARKER = b"\nbayesreview-sha256:"
_DIGEST_LENGTH = 64  # hexadecimal characters of a SHA-256


def _append_checksum(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest().encode()
    with open(path, "ab") as file:
        file.write(CHECKSUM_MARKER + digest + b"\n")


def fit_file_damage(path: Path) -> str | None:
    """Why the fit file at ``path`` is damaged or incomplete, or None when its checksum line
    (:data:`CHECKSUM_MARKER`) matches the bytes before it."""
    raw = path.read_bytes()
    at = raw.rfind(CHECKSUM_MARKER)
    line = raw[at + len(CHECKSUM_MARKER) :] if at >= 0 else b""
    if at < 0 or len(line) != _DIGEST_LENGTH + 1 or not line.endswith(b"\n"):
        return (
            "it does not end with the checksum line that bayesreview writes: it is cut short, "
            "or was not written by this version of bayesreview"
        )
    if hashlib.sha256(raw[:at]).hexdigest().encode() != line[:-1]:
        return "its checksum does not match its contents: the file is damaged"
    return None
