"""The study table: schema, validation, outcome counts, the crude table and reconciliation.

One row per study arm. Required columns are ``study``, ``modality`` and ``n`` with either the
four outcome categories ``complete``, ``partial``, ``none`` and ``unknown`` (which sum to ``n``)
or a single ``events`` column for one outcome. Optional columns with a meaning of their own are
``year``, ``group``, ``design`` and ``risk_of_bias``; every other column is carried along and may
be used as a covariate. A row may also be one patient of a total that a review pooled over
several studies (``pooled_total`` names the total; :func:`groups_of_pooled_totals`). Rates are
on the 0-1 scale throughout.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayesreview._resources import resource_dir
from bayesreview.errors import DataError

__all__ = [
    "CATEGORIES",
    "FIT_OUTCOMES",
    "OUTCOMES",
    "RISK_OF_BIAS_LEVELS",
    "RISK_OF_BIAS_TOOLS",
    "clopper_pearson",
    "crude_table",
    "dataset_info",
    "display_labels",
    "groups_of_pooled_totals",
    "list_datasets",
    "load_dataset",
    "load_published",
    "outcome_counts",
    "overall_risk_of_bias",
    "published_totals",
    "read_adverse_events",
    "read_studies",
    "reconcile",
    "reconcile_adverse_events",
]

#: Outcome categories a study reports; they partition its ``n`` patients.
CATEGORIES: tuple[str, ...] = ("complete", "partial", "none", "unknown")
#: Outcomes that can be analysed: ``any`` is complete or partial response.
OUTCOMES: tuple[str, ...] = ("complete", "partial", "any")
#: Outcomes ``fit`` accepts: one outcome, or ``"response"`` (complete, partial and any together).
FIT_OUTCOMES: tuple[str, ...] = (*OUTCOMES, "response", "events")
#: Allowed risk-of-bias ratings, in order (empty means not known).
RISK_OF_BIAS_LEVELS: tuple[str, ...] = ("low", "moderate", "high")
#: Column naming, for a row that is one patient of a total pooled over studies, that total.
POOLED_TOTAL_COLUMN = "pooled_total"
#: Allowed rules for patients whose response is unknown.
UNKNOWN_RULES: tuple[str, ...] = ("failure", "exclude")

_MAX_COUNT = 10**9  # guards the int64 sums; no real study is this large
_MAX_PROBLEMS_SHOWN = 40


# --------------------------------------------------------------------------------------------
# Reading and validation
# --------------------------------------------------------------------------------------------


def read_studies(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read and validate a table of studies.

    Parameters
    ----------
    source
        Path to a CSV file (comma separated, header row) or a pandas DataFrame. Neither is
        modified: a DataFrame is copied.

    Returns
    -------
    pandas.DataFrame
        One row per study arm, in the input order, with a fresh ``RangeIndex``. Counts are
        ``int64``; ``study``, ``modality``, ``group`` (equal to ``modality`` when absent) and
        ``design`` are strings; ``risk_of_bias`` is an ordered categorical with the levels
        ``low < moderate < high`` and missing values where a rating is not known; ``year`` is a
        nullable integer. Extra columns are carried along unchanged.

    Raises
    ------
    DataError
        Listing every problem found, each naming its row (1-based, counting data rows) and
        study label and column: a missing file, an empty or non-CSV file, duplicated headers,
        missing required columns, an empty table, counts that are missing, not whole numbers,
        negative, infinite or too large, categories that do not sum to ``n``, ``events > n``,
        ``n = 0``, a duplicated study within a modality, or an unknown risk-of-bias rating.
    """
    frame, label = _frame_from_source(source, "read_studies")
    studies = _validate(frame, label)
    studies.attrs["source"] = label
    studies.attrs["fingerprint"] = _fingerprint(studies)
    return studies


def _fingerprint(studies: pd.DataFrame) -> str:
    """A hash of a table's values, index, columns and dtypes (pandas' row hashing, vectorised)."""
    rows = pd.util.hash_pandas_object(studies, index=True).to_numpy()
    layout = repr([(str(c), str(t)) for c, t in studies.dtypes.items()]).encode()
    return hashlib.sha256(rows.tobytes() + layout).hexdigest()


def validated(studies: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """``studies`` itself if :func:`read_studies` returned it and it is unchanged since; else
    ``read_studies(studies)``.

    Refits (leave-one-out, simulations) then skip validating the same table again, while a
    table edited after validation (a count typed in, a row dropped) is checked again.
    """
    if isinstance(studies, pd.DataFrame) and studies.attrs.get("fingerprint") == _fingerprint(
        studies
    ):
        return studies
    return read_studies(studies)


def _frame_from_source(
    source: str | os.PathLike | pd.DataFrame, reader: str, **read_options: object
) -> tuple[pd.DataFrame, str]:
    """(a copy of the table with text column names, its label for messages).

    A DataFrame is copied (duplicated column names refused); a path is read by
    :func:`_read_csv` with ``read_options``. ``reader`` names the caller in the error for any
    other type.
    """
    if isinstance(source, pd.DataFrame):
        if source.columns.duplicated().any():
            dup = sorted({str(c) for c in source.columns[source.columns.duplicated()]})
            raise DataError(f"duplicated column name(s): {', '.join(dup)}")
        frame = source.copy(deep=True)
        frame.columns = [str(c) for c in frame.columns]
        return frame, "the DataFrame"
    if isinstance(source, str | os.PathLike):
        return _read_csv(Path(source), **read_options), str(source)
    raise DataError(
        f"{reader}() takes a CSV path or a pandas DataFrame, got {type(source).__name__}"
    )


def _read_csv(path: Path, **read_options: object) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a CSV file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a UTF-8 text CSV file ({exc.reason} at byte {exc.start})"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    if "\x00" in text:
        raise DataError(f"{path}: not a CSV file (it contains binary data)")
    try:
        header = next(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    header = [h.strip() for h in header]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise DataError(f"{path}: duplicated column name(s) in the header: {', '.join(duplicated)}")
    try:
        frame = pd.read_csv(path, skipinitialspace=True, encoding="utf-8-sig", **read_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV file ({first})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


class _Problems:
    """Collects every problem found, so that the user sees them all at once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._labels = (
            frame["study"].astype(object).where(frame["study"].notna(), None).tolist()
            if "study" in frame
            else [None] * len(frame)
        )
        self.messages: list[str] = []

    def add(self, row: int | None, column: str | None, text: str) -> None:
        where = []
        if row is not None:
            study = self._labels[row]
            where.append(f"row {row + 1}" + (f" (study {study!r})" if _present(study) else ""))
        if column is not None:
            where.append(f"column {column!r}")
        self.messages.append((", ".join(where) + ": " if where else "") + text)

    def raise_if_any(self, label: str) -> None:
        if not self.messages:
            return
        shown = self.messages[:_MAX_PROBLEMS_SHOWN]
        more = len(self.messages) - len(shown)
        lines = [f"{label}: {len(self.messages)} problem(s) in the study table:"]
        lines += [f"  - {m}" for m in shown]
        if more:
            lines.append(f"  ... and {more} more")
        raise DataError("\n".join(lines))


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def _parse_count(value: object) -> tuple[int | None, str | None]:
    """One count cell -> (integer, None) or (None, what is wrong)."""
    if isinstance(value, bool | np.bool_):
        return None, f"is not a number ({value!r})"
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None, "is missing"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None, "is missing"
        try:
            return _check_range(int(text))
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            return None, f"is not a number ({text!r})"
    if isinstance(value, int | np.integer):
        return _check_range(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None, "is missing (NaN)"
        if math.isinf(value):
            return None, f"is infinite ({value})"
        if not float(value).is_integer():
            return None, f"is not a whole number ({value})"
        return _check_range(int(value))
    return None, f"is not a number ({value!r})"


def _check_range(count: int) -> tuple[int | None, str | None]:
    if count < 0:
        return None, f"is negative ({count})"
    if count > _MAX_COUNT:
        return None, f"is implausibly large ({count} > {_MAX_COUNT})"
    return count, None


def _parse_count_column(frame: pd.DataFrame, column: str, problems: _Problems) -> np.ndarray:
    """Validated int64 counts of ``column``; rows with a problem get -1 and are reported."""
    values = frame[column]
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        counts = values.to_numpy(dtype=np.int64)
        for row in np.flatnonzero((counts < 0) | (counts > _MAX_COUNT)):
            problems.add(int(row), column, _check_range(int(counts[row]))[1] or "")
        return np.where((counts < 0) | (counts > _MAX_COUNT), -1, counts)
    counts = np.full(len(values), -1, dtype=np.int64)
    for row, value in enumerate(values.astype(object).tolist()):
        parsed, problem = _parse_count(value)
        if problem is None:
            counts[row] = parsed
        else:
            problems.add(row, column, problem)
    return counts


def _clean_text(series: pd.Series) -> pd.Series:
    """Strings stripped of surrounding space; missing or blank cells become ``pd.NA``."""
    values = series.astype(object)
    missing = values.isna().to_numpy()
    text = values.where(missing, values.astype(str)).astype("string").str.strip()
    return text.mask(missing | text.isin(["", "nan", "<NA>"]).fillna(False).to_numpy())


def _validate(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    has_categories = any(c in frame.columns for c in CATEGORIES)
    count_columns = list(CATEGORIES) if has_categories or "events" not in frame else ["events"]
    required = ["study", "modality", "n", *count_columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        hint = (
            " (give the four outcome categories complete, partial, none, unknown, or a single"
            " events column)"
            if any(c in CATEGORIES or c == "events" for c in missing)
            else ""
        )
        raise DataError(f"{label}: missing required column(s): {', '.join(missing)}{hint}")
    if len(frame) == 0:
        raise DataError(f"{label}: the study table is empty (a header but no rows)")

    frame = frame.reset_index(drop=True)
    problems = _Problems(frame)
    out = frame.copy()

    for column in ("study", "modality"):
        out[column] = _clean_text(frame[column])
        for row in np.flatnonzero(out[column].isna().to_numpy()):
            problems.add(int(row), column, "is empty")
    out["group"] = (
        _clean_text(frame["group"]).fillna(out["modality"]) if "group" in frame else out["modality"]
    )
    if "design" in frame:
        out["design"] = _clean_text(frame["design"]).str.lower().str.replace(" ", "_")

    counts = {c: _parse_count_column(frame, c, problems) for c in ["n", *count_columns]}
    valid = np.all([counts[c] >= 0 for c in counts], axis=0)
    n = counts["n"]
    for row in np.flatnonzero(valid & (n == 0)):
        problems.add(int(row), "n", "is 0: a study must have at least one patient")
    if has_categories:
        total = sum(counts[c] for c in CATEGORIES)
        for row in np.flatnonzero(valid & (total != n)):
            parts = " + ".join(f"{c} {counts[c][row]}" for c in CATEGORIES)
            problems.add(
                int(row),
                "n",
                f"outcome categories do not sum to n: {parts} = {total[row]} != {n[row]}",
            )
    else:
        for row in np.flatnonzero(valid & (counts["events"] > n)):
            problems.add(int(row), "events", f"events {counts['events'][row]} > n {n[row]}")
    for column, values in counts.items():
        out[column] = np.where(values >= 0, values, 0).astype(np.int64)

    if "year" in frame:
        year = pd.to_numeric(frame["year"], errors="coerce")
        given = frame["year"].map(_present)
        boolean = frame["year"].map(lambda value: isinstance(value, bool | np.bool_))
        bad = given & (boolean | year.isna() | (year % 1 != 0) | ~year.abs().le(9999))
        for row in np.flatnonzero(bad.to_numpy()):
            problems.add(
                int(row), "year", f"is not a year, a whole number ({frame['year'].iloc[row]!r})"
            )
        out["year"] = year.where(~bad).round().astype("Int64")

    if "risk_of_bias" in frame:
        rating = _clean_text(frame["risk_of_bias"]).str.lower()
        unknown = rating.notna() & ~rating.isin(RISK_OF_BIAS_LEVELS)
        for row in np.flatnonzero(unknown.to_numpy()):
            problems.add(
                int(row),
                "risk_of_bias",
                f"unknown level {frame['risk_of_bias'].iloc[row]!r}; allowed: "
                f"{', '.join(RISK_OF_BIAS_LEVELS)} or empty where not known",
            )
        out["risk_of_bias"] = pd.Categorical(
            rating.where(~unknown).astype(object).where(rating.notna() & ~unknown, None),
            categories=list(RISK_OF_BIAS_LEVELS),
            ordered=True,
        )

    keys = out[["modality", "study"]].astype(object)
    duplicated = keys.duplicated(keep=False) & out["study"].notna().to_numpy()
    for row in np.flatnonzero(duplicated.to_numpy()):
        first = int(np.flatnonzero((keys == keys.iloc[row]).all(axis=1).to_numpy())[0])
        if first != row:
            problems.add(
                int(row),
                "study",
                f"duplicate of row {first + 1}: study {out['study'].iloc[row]!r} appears twice "
                f"in modality {out['modality'].iloc[row]!r}",
            )

    problems.raise_if_any(label)
    return out


# --------------------------------------------------------------------------------------------
# Risk of bias by domain: RoB 2 and ROBINS-I judgements combined into the overall level
# --------------------------------------------------------------------------------------------

#: Tools :func:`overall_risk_of_bias` knows, and the domain judgements each allows, best first.
RISK_OF_BIAS_TOOLS: dict[str, tuple[str, ...]] = {
    "rob2": ("low", "some concerns", "high"),
    "robins_i": ("low", "moderate", "serious", "critical"),
}
#: Judgements that mean a domain was not assessed, besides an empty cell, per tool.
_NOT_ASSESSED: dict[str, tuple[str, ...]] = {"rob2": (), "robins_i": ("no information",)}
#: Each tool's domain judgement -> this package's overall level.
_TOOL_LEVELS: dict[str, dict[str, str]] = {
    "rob2": {"low": "low", "some concerns": "moderate", "high": "high"},
    "robins_i": {"low": "low", "moderate": "moderate", "serious": "high", "critical": "high"},
}
_TOOL_NAMES = {"rob2": "RoB 2", "robins_i": "ROBINS-I"}
_DEFAULT_SOME_CONCERNS_TO_HIGH = 3


def _judgement_key(text: str) -> str:
    """``"  Some_Concerns "`` -> ``"some concerns"``: lower case, one space between words."""
    return " ".join(re.split(r"[\s_\-]+", text.strip().lower())).strip()


def _not_given(value: object) -> bool:
    """An empty cell: None, NaN, ``pd.NA``, ``NaT`` or blank text."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def overall_risk_of_bias(
    studies: pd.DataFrame,
    domains: Sequence[str],
    tool: str = "rob2",
    some_concerns_to_high: int | None = _DEFAULT_SOME_CONCERNS_TO_HIGH,
) -> pd.Series:
    """The overall risk-of-bias level of each study, from its judgements by domain.

    Combines the domain judgements of Cochrane's RoB 2 (randomised trials) or of ROBINS-I
    (non-randomised studies) into this package's levels ``low < moderate < high``
    (:data:`RISK_OF_BIAS_LEVELS`), by the tools' published rules made explicit below. Use it
    before fitting::

        studies["risk_of_bias"] = overall_risk_of_bias(studies, ["d1", "d2", "d3", "d4", "d5"])

    Parameters
    ----------
    studies
        A table with one row per study (arm) and one column per domain; any other column is
        ignored (``study``, where present, names a row in error messages). Not modified.
    domains
        The names of the domain columns, e.g. ``["d1", "d2", "d3", "d4", "d5"]`` for the five
        domains of RoB 2 or the seven of ROBINS-I. A list, not one string; no name twice.
    tool
        ``"rob2"`` (default) or ``"robins_i"``; case, spaces, hyphens and underscores are
        ignored (``"RoB 2"``, ``"ROBINS-I"``).
    some_concerns_to_high
        RoB 2 only: the number of domains with some concerns at which the overall judgement
        is high rather than some concerns; default 3. ``None`` switches this rule off (then
        only a high domain makes the overall high). A whole number of at least 2: one domain
        with some concerns is some concerns overall, by the tool's definition. ROBINS-I has
        no such rule: with ``tool="robins_i"`` leave it at its default or give ``None``; any
        other value is an error rather than silently ignored.

    Returns
    -------
    pandas.Series
        Named ``"risk_of_bias"``, indexed like ``studies``: an ordered categorical with the
        categories ``low < moderate < high``, as :func:`read_studies` gives that column, and
        missing values where the overall level is not known (see Notes).

    Raises
    ------
    DataError
        Listing every bad cell, each naming its row (1-based, counting data rows; with the
        study label where there is a ``study`` column), its column and its value, with the
        judgements allowed; or naming a domain column that is not in the table, a domain
        given twice, an unknown tool (with the known tools) or a bad
        ``some_concerns_to_high``.

    Notes
    -----
    Judgements are read case-insensitively, ignoring surrounding spaces, and with
    underscores or hyphens read as spaces (``"Some_concerns"`` is ``"some concerns"``). An
    empty cell (or NaN) means the domain was not assessed.

    **RoB 2** (Sterne et al. 2019, BMJ 366:l4898, Table 3). Domain judgements ``low``,
    ``some concerns``, ``high``. Overall:

    - ``high`` if any domain is high, or if at least ``some_concerns_to_high`` domains have
      some concerns (the guidance's "some concerns for multiple domains in a way that
      substantially lowers confidence in the result", made a fixed count);
    - else ``low`` if every domain is low;
    - else some concerns, which is this package's ``moderate``.

    **ROBINS-I** (Sterne et al. 2016, BMJ 355:i4919). Domain judgements ``low``,
    ``moderate``, ``serious``, ``critical``, and ``no information``, read as not assessed.
    Overall: the worst domain; ``serious`` and ``critical`` are both this package's ``high``.

    **Domains not assessed.** A study's overall level is given only where its assessed
    domains decide it whatever the others would say: with any assessed domain high (RoB 2) or
    serious or critical (ROBINS-I), or with enough assessed domains with some concerns to
    reach ``some_concerns_to_high`` (RoB 2), it is ``high``. Otherwise it is missing, even
    when every assessed domain is low: an unassessed domain could raise it, and calling it
    low would claim more than was assessed. (ROBINS-I's own overall "no information" is this
    case.) A study with a missing level is then handled as any unrated study is: the model
    marginalises its level (``fit(..., bias="risk_of_bias")``; see ``docs/bias.md``).

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesreview import overall_risk_of_bias
    >>> table = pd.DataFrame({"d1": ["low", "low", "high"], "d2": ["low", "Some concerns", None]})
    >>> overall_risk_of_bias(table, ["d1", "d2"]).tolist()
    ['low', 'moderate', 'high']
    """
    tool_key = _check_rob_tool(tool)
    threshold = _check_some_concerns_to_high(some_concerns_to_high, tool_key)
    columns = _check_domains(studies, domains)

    allowed = RISK_OF_BIAS_TOOLS[tool_key]
    rank = {judgement: position for position, judgement in enumerate(allowed)}
    not_assessed = _NOT_ASSESSED[tool_key]
    allowed_text = (
        ", ".join(f"{j!r}" for j in (*allowed, *not_assessed))
        + " (any case; '_' or '-' for a space), or empty where not assessed"
    )
    # worst (highest-ranked) judgement is what "high" rests on; ranks: 0 best, -1 not assessed
    ranks = np.full((len(studies), len(columns)), -1, dtype=np.int64)
    problems = _Problems(studies.reset_index(drop=True))
    cells = studies[columns].astype(object).to_numpy()
    for row in range(cells.shape[0]):
        for j, column in enumerate(columns):
            value = cells[row, j]
            if _not_given(value):
                continue
            if not isinstance(value, str):
                problems.add(
                    row,
                    str(column),
                    f"{value!r} is not a {_TOOL_NAMES[tool_key]} judgement; allowed: "
                    f"{allowed_text}",
                )
                continue
            key = _judgement_key(value)
            if key in rank:
                ranks[row, j] = rank[key]
            elif key not in not_assessed:
                problems.add(
                    row,
                    str(column),
                    f"unknown {_TOOL_NAMES[tool_key]} judgement {value!r}; allowed: {allowed_text}",
                )
    problems.raise_if_any(f"overall_risk_of_bias(tool={tool_key!r})")

    levels = _TOOL_LEVELS[tool_key]
    assessed = ranks >= 0
    complete = assessed.all(axis=1)
    high_rank = rank["high"] if tool_key == "rob2" else rank["serious"]
    high = (ranks >= high_rank).any(axis=1)
    if tool_key == "rob2" and threshold is not None:
        high |= (ranks == rank["some concerns"]).sum(axis=1) >= threshold
    worst = ranks.max(axis=1, initial=-1)
    overall: list[str | None] = []
    for row in range(len(studies)):
        if high[row]:
            overall.append("high")
        elif complete[row]:
            overall.append(levels[allowed[worst[row]]])
        else:
            overall.append(None)
    return pd.Series(
        pd.Categorical(overall, categories=list(RISK_OF_BIAS_LEVELS), ordered=True),
        index=studies.index.copy(),
        name="risk_of_bias",
    )


def _check_rob_tool(tool: object) -> str:
    known = {name.replace("_", ""): name for name in RISK_OF_BIAS_TOOLS}
    key = re.sub(r"[\s_\-]+", "", tool.lower()) if isinstance(tool, str) else None
    if key not in known:
        raise DataError(
            f"overall_risk_of_bias(): unknown tool {tool!r}; known tools: "
            + ", ".join(f"{name!r} ({_TOOL_NAMES[name]})" for name in RISK_OF_BIAS_TOOLS)
        )
    return known[key]


def _check_some_concerns_to_high(value: object, tool: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise DataError(
            f"overall_risk_of_bias(): some_concerns_to_high={value!r}: give a whole number "
            "(at least 2) or None"
        )
    if tool != "rob2" and int(value) != _DEFAULT_SOME_CONCERNS_TO_HIGH:
        raise DataError(
            f"overall_risk_of_bias(): some_concerns_to_high={value!r} applies to RoB 2 only; "
            f"{_TOOL_NAMES[tool]}'s overall judgement is its worst domain's, so leave "
            "some_concerns_to_high at its default or give None"
        )
    if int(value) < 2:
        raise DataError(
            f"overall_risk_of_bias(): some_concerns_to_high={value!r}: give at least 2 (one "
            "domain with some concerns is some concerns overall) or None to switch the rule off"
        )
    return int(value)


def _check_domains(studies: object, domains: object) -> list:
    if not isinstance(studies, pd.DataFrame):
        raise DataError(
            f"overall_risk_of_bias() takes a pandas DataFrame, got {type(studies).__name__}"
        )
    if isinstance(domains, str) or not isinstance(domains, Sequence | pd.Index | np.ndarray):
        raise DataError(
            f"overall_risk_of_bias(): domains={domains!r}: give a list of domain column names, "
            "e.g. ['d1', 'd2', 'd3', 'd4', 'd5']"
        )
    columns = list(domains)
    if not columns:
        raise DataError("overall_risk_of_bias(): domains is empty; give the domain columns")
    twice = sorted({str(c) for c in columns if columns.count(c) > 1})
    if twice:
        raise DataError(f"overall_risk_of_bias(): domain column(s) given twice: {', '.join(twice)}")
    absent = [c for c in columns if c not in studies.columns]
    if absent:
        raise DataError(
            "overall_risk_of_bias(): no such domain column(s): "
            + ", ".join(repr(c) for c in absent)
            + "; the table's columns are "
            + ", ".join(repr(c) for c in studies.columns)
        )
    duplicated = studies.columns[studies.columns.duplicated()]
    clash = sorted({str(c) for c in duplicated if c in columns or c == "study"})
    if clash:
        raise DataError(
            f"overall_risk_of_bias(): the table has more than one column named {', '.join(clash)}"
        )
    return columns


# --------------------------------------------------------------------------------------------
# Bundled data sets
# --------------------------------------------------------------------------------------------


def _registry() -> dict[str, dict]:
    with open(resource_dir("data") / "datasets.toml", "rb") as handle:
        return tomllib.load(handle)


def list_datasets() -> list[str]:
    """Names of the data sets bundled with bayesreview, sorted."""
    return sorted(_registry())


def dataset_info(name: str) -> dict:
    """Metadata of a bundled data set: title, citation, files and published totals.

    For ``"calcinosis_cutis"`` this includes ``risk_of_bias_totals`` (low 10, moderate 19,
    high 11 of 40 studies), the only risk-of-bias information in the review's text.
    """
    registry = _registry()
    if name not in registry:
        raise DataError(f"unknown data set {name!r}; bundled: {', '.join(sorted(registry))}")
    return dict(registry[name])


def load_dataset(name: str = "calcinosis_cutis") -> pd.DataFrame:
    """Load a bundled data set as a validated table.

    The registry's ``kind`` says which schema the table follows: a study table of response
    counts (the default; see :func:`read_studies`) or, for ``kind = "adverse_events"``, an
    adverse-event table (see :func:`read_adverse_events`).

    Parameters
    ----------
    name
        Data set name; default ``"calcinosis_cutis"`` (Nowaczyk et al. 2021, Table 1: 40 studies,
        136 patients). ``"calcinosis_cutis_adverse_events"`` is the same review's adverse events.
        :func:`list_datasets` lists them all.

    Returns
    -------
    pandas.DataFrame
        The validated table; ``.attrs["metadata"]`` holds :func:`dataset_info`.
    """
    info = dataset_info(name)
    studies = _read_bundled(name, info)
    studies.attrs["metadata"] = info
    studies.attrs["source"] = f"bundled:{name}"
    return studies


def published_totals(studies: pd.DataFrame, column: str | None) -> dict[str, int]:
    """The number of studies at each level of ``column`` that a bundled data set publishes.

    Read from its metadata's ``<column>_totals`` (for ``"calcinosis_cutis"``,
    ``risk_of_bias_totals``: low 10, moderate 19, high 11).

    Raises
    ------
    DataError
        When the table carries no such totals (not a bundled data set, or none published).
    """
    metadata = studies.attrs.get("metadata", {})
    key = f"{column}_totals"
    if column is None or key not in metadata:
        where = "this data set's metadata" if metadata else "this study table (not a bundled one)"
        raise DataError(f"bias_totals='dataset': {where} gives no {key}; give the totals as a dict")
    return {str(level): int(count) for level, count in metadata[key].items()}


def display_labels(
    studies: pd.DataFrame | None = None, labels: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Display labels of codes: the bundled data set's codebook, updated by ``labels``.

    Parameters
    ----------
    studies
        A study table; one from :func:`load_dataset` carries its codebook's labels (e.g.
        ``"topical_sts"`` -> ``"Topical STS"``), any other none.
    labels
        The user's labels, code -> label; they win over the codebook's.

    Raises
    ------
    DataError
        When a code or a label is not a non-empty string.
    """
    metadata = {} if studies is None else studies.attrs.get("metadata", {})
    out = dict(metadata.get("labels", {}))
    if labels is not None and not isinstance(labels, Mapping):
        raise DataError(f"labels: need a mapping of code to label, got {type(labels).__name__}")
    for code, label in (labels or {}).items():
        if not isinstance(code, str) or not isinstance(label, str) or not label.strip():
            raise DataError(f"labels[{code!r}] = {label!r}: codes and labels must be text")
        out[code] = label
    return out


def load_published(name: str = "calcinosis_cutis") -> pd.DataFrame:
    """The published summary table of a bundled data set, exactly as printed.

    Columns: the grouping column (``group`` for calcinosis_cutis), ``outcome``, ``events``,
    ``n``, ``percent`` (as printed, rounded) and ``source`` (where in the paper).
    """
    info = dataset_info(name)
    published = pd.read_csv(resource_dir("data") / info["published"])
    published.attrs["by"] = info.get("published_by", published.columns[0])
    return published


# --------------------------------------------------------------------------------------------
# Outcomes and the crude table
# --------------------------------------------------------------------------------------------


def _check_unknown_rule(unknown: str) -> None:
    if unknown not in UNKNOWN_RULES:
        raise DataError(f"unknown={unknown!r}: must be one of {', '.join(UNKNOWN_RULES)}")


def groups_of_pooled_totals(studies: pd.DataFrame, by: str = "modality") -> list[str]:
    """Levels of ``by`` whose every row is a patient of a total pooled over studies.

    A review that prints only a modality's total (5 of 53 patients had an infection) says
    nothing about how the studies behind it differ. Such a total enters a study table as its
    patients, one row each with ``n = 1`` and the total's id in ``pooled_total``
    (:func:`bayesreview.harms.harm_studies`): each row's likelihood is then that of the
    modality's mean rate alone, whatever the heterogeneity, so the modality's heterogeneity
    keeps its (hierarchical) prior.

    Raises
    ------
    DataError
        Naming the rows where ``pooled_total`` is given but ``n`` is not 1.
    """
    if POOLED_TOTAL_COLUMN not in studies:
        return []
    given = studies[POOLED_TOTAL_COLUMN].notna() & (
        studies[POOLED_TOTAL_COLUMN].astype(str).str.strip() != ""
    )
    wrong = np.flatnonzero(given.to_numpy() & (studies["n"].to_numpy() != 1))
    if len(wrong):
        rows = ", ".join(f"{r + 1} ({studies['study'].iloc[r]})" for r in wrong[:10])
        raise DataError(
            f"column {POOLED_TOTAL_COLUMN!r}: a patient of a pooled total has n = 1; row(s) "
            f"{rows} have another n"
        )
    if by not in studies:
        return []
    pooled = given.groupby(studies[by].astype(str), sort=False).all()
    return [str(g) for g, all_pooled in pooled.items() if all_pooled]


def outcomes_of(studies: pd.DataFrame) -> tuple[str, ...]:
    """Outcomes a study table supports: complete/partial/any, or ``events`` alone."""
    return OUTCOMES if "complete" in studies else ("events",)


def outcome_counts(
    studies: pd.DataFrame, outcome: str = "any", unknown: str = "failure"
) -> tuple[np.ndarray, np.ndarray]:
    """Events and denominators of one outcome, per study.

    Parameters
    ----------
    studies
        A validated study table.
    outcome
        ``"complete"``, ``"partial"`` or ``"any"`` (complete or partial); ``"events"`` for a
        table that gives only ``events`` and ``n``.
    unknown
        ``"failure"`` (default; the review's convention) counts patients with unknown response
        as non-responders; ``"exclude"`` removes them from the denominator.

    Returns
    -------
    (events, trials)
        Two int64 arrays, one value per study.
    """
    _check_unknown_rule(unknown)
    allowed = outcomes_of(studies)
    if outcome not in allowed:
        raise DataError(f"outcome={outcome!r}: this study table supports {', '.join(allowed)}")
    n = studies["n"].to_numpy(dtype=np.int64)
    if outcome == "events":
        return studies["events"].to_numpy(dtype=np.int64), n
    complete = studies["complete"].to_numpy(dtype=np.int64)
    partial = studies["partial"].to_numpy(dtype=np.int64)
    events = {"complete": complete, "partial": partial, "any": complete + partial}[outcome]
    trials = n - studies["unknown"].to_numpy(dtype=np.int64) if unknown == "exclude" else n
    return events, trials


def clopper_pearson(
    events: np.ndarray | Sequence[int] | int,
    trials: np.ndarray | Sequence[int] | int,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) confidence interval of a binomial proportion.

    Returns lower and upper bounds on the 0-1 scale; NaN where ``trials`` is 0.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(trials, dtype=float)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(x > 0, stats.beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        upper = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    empty = n == 0
    return np.where(empty, np.nan, lower), np.where(empty, np.nan, upper)


def crude_table(
    studies: pd.DataFrame,
    by: str = "modality",
    unknown: str = "failure",
    level: float = 0.95,
) -> pd.DataFrame:
    """Crude pooled counts and proportions per level of ``by``, with exact intervals.

    This is what reviews usually report (every patient counted alike, no study effects).

    Parameters
    ----------
    studies
        A validated study table (:func:`read_studies`).
    by
        Column to group by; default ``"modality"`` (``"group"`` pools, e.g., all lasers).
    unknown
        ``"failure"`` (default) keeps unknown responses in the denominator, which reproduces
        the review's Table 2; ``"exclude"`` drops them.
    level
        Confidence level of the Clopper-Pearson intervals; default 0.95.

    Returns
    -------
    pandas.DataFrame
        One row per level of ``by`` in order of first appearance: ``by``, ``studies``, ``n``
        (patients), the category counts, ``any`` (complete + partial), ``denominator`` (``n``,
        less ``unknown`` when excluded), and for each outcome ``<outcome>_rate``,
        ``<outcome>_lower``, ``<outcome>_upper`` on the 0-1 scale.
    """
    _check_unknown_rule(unknown)
    if by not in studies.columns:
        raise DataError(f"by={by!r}: no such column; columns are {', '.join(studies.columns)}")
    if studies[by].isna().any():
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(studies[by].isna().to_numpy())[:10])
        raise DataError(f"column {by!r} is missing in row(s) {rows}; cannot group by it")
    count_columns = [c for c in (*CATEGORIES, "events") if c in studies]
    grouped = studies.groupby(by, sort=False, observed=True)
    table = grouped[["n", *count_columns]].sum()
    table.insert(0, "studies", grouped.size())
    outcomes = outcomes_of(studies)
    if "complete" in table:
        table["any"] = table["complete"] + table["partial"]
    table["denominator"] = table["n"] - (table["unknown"] if unknown == "exclude" else 0)
    for outcome in outcomes:
        lower, upper = clopper_pearson(table[outcome], table["denominator"], level)
        table[f"{outcome}_rate"] = table[outcome] / table["denominator"]
        table[f"{outcome}_lower"] = lower
        table[f"{outcome}_upper"] = upper
    return table.reset_index()


# --------------------------------------------------------------------------------------------
# Reconciliation against a published summary
# --------------------------------------------------------------------------------------------


def reconcile(
    studies: pd.DataFrame, published: pd.DataFrame, by: str | None = None
) -> pd.DataFrame:
    """Every cell where the study-level data and a published summary disagree.

    Parameters
    ----------
    studies
        A validated study table.
    published
        Published counts, one row per level and outcome, with the columns ``by``, ``outcome``
        (one of complete, partial, none, unknown, any), ``events`` and ``n`` (as from
        :func:`load_published`).
    by
        The grouping column shared by both tables; default ``published.attrs["by"]`` or else
        the first column of ``published`` that is also a column of ``studies``.

    Returns
    -------
    pandas.DataFrame
        Columns ``level``, ``quantity`` (an outcome's events, or ``n``), ``from_studies`` and
        ``published``; no rows when the two agree everywhere the summary reports.
    """
    if by is None:
        by = published.attrs.get("by") or next(
            (c for c in published.columns if c in studies.columns and c not in CATEGORIES), None
        )
    missing = [c for c in (by, "outcome", "events", "n") if c is None or c not in published]
    if missing:
        raise DataError(
            "published table: missing column(s) "
            + ", ".join(str(c) for c in missing)
            + f"; it needs the grouping column, outcome, events and n (by={by!r})"
        )
    crude = crude_table(studies, by=by).set_index(by)
    rows: list[dict] = []
    seen_n: set = set()
    for record in published.itertuples(index=False):
        level, outcome = getattr(record, by), record.outcome
        if outcome not in (*CATEGORIES, "any"):
            raise DataError(f"published table: unknown outcome {outcome!r} for level {level!r}")
        found = level in crude.index
        from_studies = int(crude.at[level, outcome]) if found else 0
        if from_studies != int(record.events):
            rows.append(
                {
                    "level": level,
                    "quantity": outcome,
                    "from_studies": from_studies,
                    "published": int(record.events),
                }
            )
        study_n = int(crude.at[level, "n"]) if found else 0
        if level not in seen_n and study_n != int(record.n):
            seen_n.add(level)
            rows.append(
                {
                    "level": level,
                    "quantity": "n",
                    "from_studies": study_n,
                    "published": int(record.n),
                }
            )
    return pd.DataFrame(rows, columns=["level", "quantity", "from_studies", "published"])


# --------------------------------------------------------------------------------------------
# Adverse events: a second table schema (harms per modality or study), its reader and the
# check of a review's summary table against its text. Kept apart from the response schema.
# --------------------------------------------------------------------------------------------

#: Columns an adverse-event table must have; ``notes`` and any other column are carried along.
ADVERSE_EVENT_COLUMNS: tuple[str, ...] = (
    "row_id",
    "modality",
    "study",
    "pooled",
    "event",
    "events",
    "n",
    "reported_as",
    "source",
)
#: Modality code of a row pooled over every modality of a review.
ALL_MODALITIES = "all"
#: The registry's ``kind`` of a data set that does not name one.
DEFAULT_DATASET_KIND = "responses"
_AE_TEXT_COLUMNS = ("row_id", "modality", "event", "reported_as", "source")
_AE_RECONCILE_COLUMNS = [
    "modality",
    "event",
    "quantity",
    "text",
    "summary",
    "text_row",
    "summary_rows",
    "text_source",
]


class _RowProblems:
    """Collects every problem of an adverse-event table, each naming its row and column."""

    def __init__(self, row_ids: pd.Series) -> None:
        self._ids = row_ids.astype(object).tolist()
        self.messages: list[str] = []

    def add(self, row: int, column: str, text: str) -> None:
        row_id = self._ids[row]
        where = f"row {row + 1}" + (f" (row_id {row_id!r})" if _present(row_id) else "")
        self.messages.append(f"{where}, column {column!r}: {text}")

    def raise_if_any(self, label: str) -> None:
        if not self.messages:
            return
        shown = self.messages[:_MAX_PROBLEMS_SHOWN]
        lines = [f"{label}: {len(self.messages)} problem(s) in the adverse-event table:"]
        lines += [f"  - {m}" for m in shown]
        if len(self.messages) > len(shown):
            lines.append(f"  ... and {len(self.messages) - len(shown)} more")
        raise DataError("\n".join(lines))


def read_adverse_events(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read and validate a table of adverse events.

    One row per modality (or study) and event type, as a review prints it. Required columns:
    ``row_id`` (unique), ``modality``, ``study`` (empty for a row pooled over a modality's
    studies), ``pooled`` (``true``/``false``), ``event`` (a snake_case code), ``events`` and ``n``
    (patients with the event and the denominator; either may be empty where the source does not
    report it), ``reported_as`` (the wording as printed) and ``source`` (where it is printed).
    The codebook of the bundled table is ``data/README.md``.

    Parameters
    ----------
    source
        Path to a CSV file (comma separated, header row) or a pandas DataFrame; neither is
        modified. Cells of a CSV file are read as text, so ``None`` or ``N/R`` in
        ``reported_as`` stay as printed; only empty cells are missing.

    Returns
    -------
    pandas.DataFrame
        In the input order with a fresh ``RangeIndex``: text columns as strings (missing where
        empty), ``pooled`` as bool, ``events`` and ``n`` as nullable ``Int64``.

    Raises
    ------
    DataError
        Listing every problem, each naming its row (1-based) and ``row_id`` and column: a
        missing file or required column, an empty table, an empty or duplicated ``row_id``, an
        empty ``modality``, ``event``, ``reported_as`` or ``source``, an event code that is not
        snake_case, ``pooled`` that is not true or false, a row of one study (``pooled`` false)
        without its ``study``, counts that are not whole numbers >= 0, ``n = 0`` or
        ``events > n``.
    """
    frame, label = _frame_from_source(
        source, "read_adverse_events", dtype=str, keep_default_na=False
    )
    table = _validate_adverse_events(frame, label)
    table.attrs["source"] = label
    return table


def _validate_adverse_events(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = [c for c in ADVERSE_EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{label}: missing required column(s) of an adverse-event table: {', '.join(missing)}"
        )
    if len(frame) == 0:
        raise DataError(f"{label}: the adverse-event table is empty (a header but no rows)")
    frame = frame.reset_index(drop=True)
    problems = _RowProblems(frame["row_id"])
    out = frame.copy()
    for column in (*_AE_TEXT_COLUMNS, "study", *(["notes"] if "notes" in frame else [])):
        out[column] = _clean_text(frame[column])
    for column in _AE_TEXT_COLUMNS:
        for row in np.flatnonzero(out[column].isna().to_numpy()):
            problems.add(int(row), column, "is empty")
    for row, code in enumerate(out["event"].tolist()):
        if _present(code) and not _is_snake_case(str(code)):
            problems.add(row, "event", f"{code!r} is not a snake_case code (e.g. 'infection')")
    ids = out["row_id"]
    for row in np.flatnonzero((ids.duplicated() & ids.notna()).to_numpy()):
        first = int(np.flatnonzero((ids == ids.iloc[row]).fillna(False).to_numpy())[0])
        problems.add(int(row), "row_id", f"duplicate of row {first + 1} ({ids.iloc[row]!r})")

    pooled = [_parse_flag(value) for value in frame["pooled"].astype(object).tolist()]
    for row, (flag, problem) in enumerate(pooled):
        if problem is not None:
            problems.add(row, "pooled", problem)
        elif not flag and pd.isna(out["study"].iloc[row]):
            problems.add(row, "study", "is empty, but pooled is false: a row of one study names it")
    out["pooled"] = np.array([bool(flag) for flag, _ in pooled])

    counts = {c: _parse_optional_counts(frame[c], c, problems) for c in ("events", "n")}
    events, n = counts["events"], counts["n"]
    for row in np.flatnonzero((n == 0).fillna(False).to_numpy()):
        problems.add(int(row), "n", "is 0: a denominator has at least one patient")
    for row in np.flatnonzero((events > n).fillna(False).to_numpy()):
        problems.add(int(row), "events", f"events {events.iloc[row]} > n {n.iloc[row]}")
    out["events"], out["n"] = events, n
    problems.raise_if_any(label)
    return out


def _is_snake_case(code: str) -> bool:
    return (
        code.isascii()
        and code[:1].isalpha()
        and code == code.lower()
        and code.replace("_", "a").isalnum()
    )


def _given(value: object) -> bool:
    """A cell that holds something: not empty, NaN, None or ``pd.NA``."""
    return value is not pd.NA and value is not pd.NaT and _present(value)


def _parse_flag(value: object) -> tuple[bool | None, str | None]:
    """One ``pooled`` cell -> (flag, None) or (None, what is wrong)."""
    if isinstance(value, bool | np.bool_):
        return bool(value), None
    if not _given(value):
        return None, "is missing: give true or false"
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true", None
    return None, f"is not true or false ({value!r})"


def _parse_optional_counts(values: pd.Series, column: str, problems: _RowProblems) -> pd.Series:
    """Whole numbers >= 0 as ``Int64``; empty cells are missing (not reported), not errors."""
    parsed: list[int | None] = []
    for row, value in enumerate(values.astype(object).tolist()):
        count, problem = _parse_count(value) if _given(value) else (None, None)
        if problem is not None:
            problems.add(row, column, problem)
        parsed.append(count)
    return pd.Series(pd.array(parsed, dtype="Int64"), index=values.index)


def _read_bundled(name: str, info: Mapping) -> pd.DataFrame:
    """Read a bundled table with the reader of its registry ``kind`` (default: responses)."""
    readers = {DEFAULT_DATASET_KIND: read_studies, "adverse_events": read_adverse_events}
    kind = info.get("kind", DEFAULT_DATASET_KIND)
    if kind not in readers:
        raise DataError(
            f"data set {name!r}: unknown kind {kind!r} in datasets.toml; known kinds: "
            f"{', '.join(readers)}"
        )
    return readers[kind](resource_dir("data") / info["studies"])


def reconcile_adverse_events(
    events: str | os.PathLike | pd.DataFrame | None = None,
    studies: pd.DataFrame | None = None,
    summary: str | None = None,
) -> pd.DataFrame:
    """Every count where a review's summary table and its text disagree about adverse events.

    Rows without a ``study`` whose ``source`` begins with ``summary`` (e.g. ``"Table 2"``) are
    the summary table; the other rows without a ``study`` are the text's statements (rows of
    one study break a count down and are not compared). Each text statement is
    compared with the summary's rows of the same event over the modalities it covers: its own
    modality, the modalities of a group code (``laser``: the modalities whose ``group`` in the
    response table ``studies`` is ``laser``) or every modality (``all``). Events are compared
    as sums; ``n`` only where the statement covers one modality. Counts that either side does
    not report (empty) are not compared.

    Parameters
    ----------
    events
        An adverse-event table (see :func:`read_adverse_events`); default the bundled
        ``"calcinosis_cutis_adverse_events"``.
    studies
        The same review's response study table, for the members of group codes; default the
        bundled data set named by the registry's ``response_data``, if any.
    summary
        The start of ``source`` that marks the summary table's rows; default the registry's
        ``summary_source``.

    Returns
    -------
    pandas.DataFrame
        One row per disagreement: ``modality``, ``event``, ``quantity`` (``events`` or ``n``),
        ``text`` and ``summary`` (the two numbers; ``summary`` missing when the summary table
        has no such event), ``text_row`` and ``summary_rows`` (``row_id``s) and
        ``text_source``. No rows when they agree everywhere both report a number.
    """
    if events is None:
        events = load_dataset("calcinosis_cutis_adverse_events")
    metadata = events.attrs.get("metadata", {}) if isinstance(events, pd.DataFrame) else {}
    table = read_adverse_events(events)
    summary = summary if summary is not None else metadata.get("summary_source")
    if not summary:
        raise DataError("reconcile_adverse_events(): give summary=, e.g. 'Table 2'")
    if studies is None and metadata.get("response_data"):
        studies = load_dataset(metadata["response_data"])
    members = _modality_members(table, studies)
    totals = table[table["study"].isna().to_numpy()]
    in_summary = totals["source"].str.startswith(summary).to_numpy(dtype=bool)
    listed, statements = totals[in_summary], totals[~in_summary]
    rows: list[dict] = []
    for row in statements.itertuples(index=False):
        covered = members.get(row.modality, {row.modality})
        match = listed[(listed["event"] == row.event) & listed["modality"].isin(covered)]
        found = {
            "modality": row.modality,
            "event": row.event,
            "text_row": row.row_id,
            "summary_rows": ", ".join(match["row_id"]),
            "text_source": row.source,
        }
        if match.empty:
            if not pd.isna(row.events):
                rows.append({**found, "quantity": "events", "text": row.events, "summary": pd.NA})
            continue
        pairs = [("events", row.events, match["events"])]
        if len(covered) == 1:
            pairs.append(("n", row.n, match["n"]))
        for quantity, stated, printed in pairs:
            if pd.isna(stated) or printed.isna().any():
                continue
            values = [int(printed.sum())] if quantity == "events" else printed.unique().tolist()
            for value in values:
                if int(value) != int(stated):
                    rows.append(
                        {**found, "quantity": quantity, "text": int(stated), "summary": int(value)}
                    )
    return pd.DataFrame(rows, columns=_AE_RECONCILE_COLUMNS)


def _modality_members(table: pd.DataFrame, studies: pd.DataFrame | None) -> dict[str, set]:
    """Modalities each code covers: itself, a group's members, or all of them."""
    modalities = set(table["modality"].dropna())
    members: dict[str, set] = {}
    if studies is not None and {"modality", "group"} <= set(studies.columns):
        modalities |= set(studies["modality"].dropna())
        for group, rows in studies.groupby("group", sort=False):
            if set(rows["modality"]) != {group}:
                members[str(group)] = set(rows["modality"])
    members[ALL_MODALITIES] = modalities - {ALL_MODALITIES, *members}
    return members
