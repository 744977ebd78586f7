"""Bad-input battery: malformed tables, files and specifications give bayesreview errors only.

Property-based (hypothesis): for random malformed input, ``read_studies`` either accepts the
table or raises :class:`bayesreview.DataError`; ``ModelSpec.from_dict`` and ``load_spec``
either work or raise :class:`bayesreview.SpecError`; ``load_fit`` on a damaged or foreign file
raises :class:`bayesreview.BayesReviewError` naming the file. Never any other exception.
"""

from __future__ import annotations

import json
import math
import string
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bayesreview as br
from bayesreview.spec import ModelSpec, load_spec

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CATEGORIES = ["complete", "partial", "none", "unknown"]
REQUIRED = ["study", "modality", "n", *CATEGORIES]
OPTIONAL = ["year", "group", "design", "risk_of_bias", "events"]

# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

labels = st.text(min_size=0, max_size=12)  # unicode, empty and blank labels included
odd_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**3), max_value=10**3),
    st.integers(min_value=-(2**80), max_value=2**80),  # negative and huge
    st.floats(allow_nan=True, allow_infinity=True),  # NaN, inf, fractions, 1e308
    labels,
    st.sampled_from(["3", " 2 ", "2.0", "2.5", "1e400", "-1", "inf", "nan", "", "NA", "½"]),
)
odd_cells = st.one_of(odd_scalars, st.lists(st.integers(0, 5), max_size=2))
good_counts = st.integers(min_value=0, max_value=30)


@st.composite
def malformed_tables(draw) -> pd.DataFrame:
    """A table with some required columns, maybe dropped, and cells of any type."""
    rows = draw(st.integers(min_value=0, max_value=4))
    columns = [c for c in REQUIRED if draw(st.booleans()) or draw(st.booleans())]
    columns += [c for c in OPTIONAL if draw(st.booleans())]
    columns += draw(st.lists(labels, max_size=2))  # extra, possibly unicode/empty, names
    columns = list(dict.fromkeys(columns))
    data = {}
    for column in columns:
        if column in ("study", "modality", "group", "design", "risk_of_bias"):
            cells = st.one_of(labels, odd_cells)
        else:
            cells = st.one_of(good_counts, odd_cells)
        data[column] = draw(st.lists(cells, min_size=rows, max_size=rows))
    return pd.DataFrame(data, columns=columns)


@st.composite
def valid_tables(draw) -> pd.DataFrame:
    """A well-formed table: unique (study, modality), categories that sum to n >= 1."""
    rows = draw(st.integers(min_value=1, max_value=5))
    studies = draw(
        st.lists(
            # read_studies reads "", "nan" and "<NA>" as missing labels
            st.text(min_size=1, max_size=10).filter(lambda s: s.strip() not in ("", "nan", "<NA>")),
            min_size=rows,
            max_size=rows,
            unique_by=lambda s: s.strip(),
        )
    )
    counts = draw(
        st.lists(
            st.tuples(good_counts, good_counts, good_counts, good_counts).filter(
                lambda t: sum(t) > 0
            ),
            min_size=rows,
            max_size=rows,
        )
    )
    table = pd.DataFrame(counts, columns=CATEGORIES)
    table.insert(0, "n", table.sum(axis=1))
    table.insert(0, "modality", draw(st.sampled_from(["m1", "ℳ 2", "laser"])))
    table.insert(0, "study", studies)
    if draw(st.booleans()):
        table["risk_of_bias"] = draw(
            st.lists(st.sampled_from(["low", "moderate", "HIGH", "", None]), min_size=rows,
                     max_size=rows)
        )  # fmt: skip
    if draw(st.booleans()):
        table["year"] = draw(st.lists(st.integers(1950, 2030), min_size=rows, max_size=rows))
    return table


def _read(table_or_path):
    """read_studies, with DataError as the only exception allowed; returns table or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return br.read_studies(table_or_path)
        except br.DataError as exc:
            assert str(exc).strip(), "a DataError must say what is wrong"
            return None


# ---------------------------------------------------------------------------------------------
# read_studies on DataFrames
# ---------------------------------------------------------------------------------------------


@FAST
@given(table=malformed_tables())
def test_malformed_table_is_accepted_or_raises_data_error(table):
    studies = _read(table)
    if studies is None:
        return
    # What is accepted must satisfy the schema that read_studies documents.
    assert len(studies) == len(table) > 0
    for column in ["n", *CATEGORIES]:
        assert studies[column].dtype == np.int64
        assert (studies[column] >= 0).all()
    assert (studies["n"] >= 1).all()
    assert (studies[CATEGORIES].sum(axis=1) == studies["n"]).all()
    assert studies["study"].notna().all() and studies["modality"].notna().all()
    assert not studies[["modality", "study"]].duplicated().any()


@FAST
@given(table=valid_tables())
def test_well_formed_table_is_accepted_with_its_counts(table):
    studies = br.read_studies(table)
    for column in ["n", *CATEGORIES]:
        assert studies[column].tolist() == table[column].tolist()
    assert studies["study"].tolist() == [s.strip() for s in table["study"]]


@FAST
@given(
    table=valid_tables(),
    column=st.sampled_from(["n", *CATEGORIES]),
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(
            lambda x: not (math.isfinite(x) and x.is_integer() and 0 <= x <= 1e9)
        ),
        st.integers(max_value=-1),
        st.integers(min_value=10**9 + 1),
        st.text(alphabet=string.ascii_letters + "é☃ ", min_size=1, max_size=6),
        st.booleans(),
        st.lists(st.integers(), min_size=1, max_size=2),
    ),
)
def test_one_bad_count_is_rejected_and_named(table, column, value):
    table[column] = table[column].astype(object)
    table.at[0, column] = value
    with pytest.raises(br.DataError) as info:
        br.read_studies(table)
    message = str(info.value)
    assert "row 1" in message and f"column {column!r}" in message


@FAST
@given(table=valid_tables(), missing=st.sets(st.sampled_from(REQUIRED), min_size=1))
def test_missing_columns_are_named(table, missing):
    with pytest.raises(br.DataError) as info:
        br.read_studies(table.drop(columns=sorted(missing)))
    message = str(info.value)
    # (a table without any category column is told about the single-events alternative)
    assert "missing required column" in message
    for column in missing & {"study", "modality", "n"}:
        assert column in message


@FAST
@given(table=valid_tables(), year=st.one_of(odd_scalars, st.integers(-(10**30), 10**30)))
def test_any_year_is_accepted_or_rejected_cleanly(table, year):
    table["year"] = pd.Series([year] * len(table), dtype=object)
    studies = _read(table)
    if studies is not None:
        assert str(studies["year"].dtype) == "Int64"


def test_huge_year_is_a_data_error_not_a_type_error():
    # Reproducer of a bug in data.py (float years beyond int64 crash the Int64 cast).
    table = pd.DataFrame(
        {
            "study": ["a"],
            "modality": ["m"],
            "year": [1e300],
            "n": [1],
            "complete": [1],
            "partial": [0],
            "none": [0],
            "unknown": [0],
        }
    )
    with pytest.raises(br.DataError, match="year"):
        br.read_studies(table)


# ---------------------------------------------------------------------------------------------
# read_studies on CSV files
# ---------------------------------------------------------------------------------------------

GOOD_CSV = (
    "study,modality,n,complete,partial,none,unknown\nA 2001,m,3,1,1,1,0\nB 2002,m,2,0,2,0,0\n"
)


@FAST
@given(raw=st.binary(max_size=200))
def test_random_bytes_csv(tmp_path, raw):
    path = tmp_path / "random.csv"
    path.write_bytes(raw)
    _read(path)


@FAST
@given(text=st.text(max_size=200))
def test_random_unicode_csv(tmp_path, text):
    path = tmp_path / "unicode.csv"
    path.write_text(text, encoding="utf-8")
    _read(path)


@FAST
@given(
    position=st.integers(min_value=0, max_value=len(GOOD_CSV)),
    insert=st.text(alphabet=',"\n\r\t;é☃ 0123456789-.', max_size=8),
    cut=st.integers(min_value=0, max_value=10),
)
def test_mangled_csv(tmp_path, position, insert, cut):
    path = tmp_path / "mangled.csv"
    path.write_text(GOOD_CSV[:position] + insert + GOOD_CSV[position + cut :], encoding="utf-8")
    _read(path)


@FAST
@given(duplicate=st.sampled_from(REQUIRED), extra=st.sampled_from(["", " ", "x"]))
def test_duplicated_header_in_csv(tmp_path, duplicate, extra):
    header, *rows = GOOD_CSV.splitlines()
    path = tmp_path / "dup.csv"
    # " n" and "n" are the same column once stripped
    path.write_text(
        "\n".join([f"{header},{extra}{duplicate}", *(r + ",1" for r in rows)]) + "\n",
        encoding="utf-8",
    )
    if extra == "x":
        assert _read(path) is not None  # "xn" is just an extra column
        return
    with pytest.raises(br.DataError, match="duplicated column"):
        br.read_studies(path)


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_empty_csv(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(br.DataError) as info:
        br.read_studies(path)
    assert "empty.csv" in str(info.value)


def test_header_only_csv(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text(GOOD_CSV.splitlines()[0] + "\n")
    with pytest.raises(br.DataError, match="empty"):
        br.read_studies(path)


# ---------------------------------------------------------------------------------------------
# Model specifications
# ---------------------------------------------------------------------------------------------

PRIOR_KEYS = [
    "intercept",
    "bias",
    "log_concentration",
    "log_concentration_sd",
    "tau",
    "log_tau",
    "log_tau_sd",
]
DISTS = ["normal", "student_t", "halfnormal", "halfstudent_t", "exponential"]
PARAMS = ["mu", "sigma", "nu", "lam"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
param_values = st.one_of(st.floats(-5, 5), st.integers(-3, 30), json_scalars)
priors_tables = st.dictionaries(
    st.sampled_from([*PRIOR_KEYS, "alpha", ""]),
    st.one_of(
        st.fixed_dictionaries(
            {"dist": st.one_of(st.sampled_from(DISTS), json_scalars)},
            optional={p: param_values for p in PARAMS},
        ),
        json_values,
    ),
    max_size=5,
)
spec_dicts = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=8), json_scalars),
        "description": st.one_of(st.text(max_size=8), json_values),
        "likelihood": st.one_of(st.sampled_from(["beta_binomial", "logit_normal"]), json_values),
        "heterogeneity": st.one_of(
            st.sampled_from(["partial_pooling", "shared", "per_modality"]), json_values
        ),
        "outcome": st.one_of(st.sampled_from(["any", "response", "complete"]), json_values),
        "priors": st.one_of(priors_tables, json_values),
        "conditional_priors": st.one_of(priors_tables, json_values),
        "extra": json_values,
    },
)


@FAST
@given(d=st.one_of(spec_dicts, json_values))
def test_random_spec_dict_is_accepted_or_raises_spec_error(d):
    try:
        spec = ModelSpec.from_dict(d, source="random.toml")
    except br.SpecError as exc:
        assert str(exc).strip()
        return
    # An accepted spec round-trips through TOML.
    assert ModelSpec.from_dict(spec.to_dict()) == spec


@FAST
@given(
    model=st.sampled_from(["beta_binomial", "logit_normal", "response"]),
    key=st.sampled_from(PRIOR_KEYS),
    value=json_values,
)
def test_one_bad_prior_is_named(model, key, value):
    d = load_spec(model).to_dict()
    d["priors"][key] = value
    try:
        ModelSpec.from_dict(d)
    except br.SpecError as exc:
        assert key in str(exc)


@FAST
@given(text=st.text(max_size=300))
def test_random_toml_text(tmp_path, text):
    path = tmp_path / "random.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_spec(path)
    except br.SpecError as exc:
        assert "random.toml" in str(exc)


@FAST
@given(
    model=st.sampled_from(["beta_binomial", "logit_normal", "response"]),
    position=st.floats(0, 1),
    cut=st.integers(0, 20),
    insert=st.text(alphabet='=[]{}"#.,\n abcdefgimnorstu0123456789-é', max_size=12),
)
def test_mangled_toml(tmp_path, model, position, cut, insert):
    text = load_spec(model).to_toml()
    at = int(position * len(text))
    path = tmp_path / "mangled.toml"
    path.write_text(text[:at] + insert + text[at + cut :], encoding="utf-8")
    try:
        load_spec(path)
    except br.SpecError as exc:
        assert "mangled.toml" in str(exc)


@FAST
@given(raw=st.binary(max_size=100))
def test_random_bytes_toml(tmp_path, raw):
    path = tmp_path / "bytes.toml"
    path.write_bytes(raw)
    try:
        load_spec(path)
    except br.SpecError as exc:
        assert "bytes.toml" in str(exc)


# ---------------------------------------------------------------------------------------------
# Saved fits
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    """A fit file as Fit.save writes it, made without sampling (posterior draws are noise).

    load_fit reads only the attributes and the groups, so random draws of the right shapes
    exercise the same file format as a real fit, at no compile or sampling cost.
    """
    import arviz as az

    from bayesreview.fitting import Fit
    from bayesreview.model_data import model_data

    studies = br.load_dataset("calcinosis_cutis")
    spec = load_spec("beta_binomial")
    data = model_data(studies, "any", "modality")
    rng = np.random.default_rng(1)
    groups, shape = list(data.groups), (2, 200, data.n_groups)
    idata = az.from_dict(
        posterior={"alpha": rng.normal(size=shape), "phi": rng.gamma(2.0, size=shape)},
        log_likelihood={"events": rng.normal(size=(2, 200, data.n_rows))},
        coords={"group": groups},
        dims={"alpha": ["group"], "phi": ["group"]},
    )
    settings = {
        "outcome": "any",
        "by": "modality",
        "bias": None,
        "bias_reference": None,
        "bias_prior_counts": None,
        "unknown": "failure",
        "draws": 200,
        "tune": 0,
        "chains": 2,
        "seed": 1,
        "sampler": "nutpie",
        "free_vars": ["alpha"],
    }
    path = tmp_path_factory.mktemp("fit") / "fit.nc"
    Fit(idata=idata, studies=studies, spec=spec, data=data, settings=settings).save(path)
    loaded = br.load_fit(path)  # the intact file loads
    assert loaded.groups == data.groups
    return path


def _load_fit_error(path) -> str:
    with pytest.raises(br.BayesReviewError) as info:
        br.load_fit(path)
    message = str(info.value)
    assert path.name in message, f"the message must name the file: {message}"
    return message


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.1, 0.5, 0.9, 0.999])
def test_truncated_fit_file(saved_fit, tmp_path, fraction):
    raw = saved_fit.read_bytes()
    path = tmp_path / "truncated.nc"
    path.write_bytes(raw[: int(fraction * len(raw))])
    _load_fit_error(path)


@settings(FAST, max_examples=25)  # each load_fit reads a file: keep this one shorter
@given(start=st.floats(0.2, 0.8), data=st.data())
def test_fit_file_with_random_bytes_in_the_middle(saved_fit, tmp_path, start, data):
    raw = bytearray(saved_fit.read_bytes())
    at = int(start * len(raw))
    junk = data.draw(st.binary(min_size=1, max_size=64))
    assume(raw[at : at + len(junk)] != junk)
    raw[at : at + len(junk)] = junk
    path = tmp_path / "corrupted.nc"
    path.write_bytes(bytes(raw))
    # every changed byte is noticed (the checksum line), before HDF5 parses the file: damaged
    # HDF5 metadata can make the library loop without end
    assert "damaged" in _load_fit_error(path)


def test_fit_file_without_its_checksum_line(saved_fit, tmp_path):
    raw = saved_fit.read_bytes()
    path = tmp_path / "unchecked.nc"
    path.write_bytes(raw[: raw.rfind(b"\n", 0, len(raw) - 1)])
    assert "checksum line" in _load_fit_error(path)


def test_fit_file_with_a_corrupted_data_chunk(saved_fit, tmp_path):
    # Overwrite a stretch in the middle: compressed data there fails to decompress on reading.
    raw = bytearray(saved_fit.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4096] = np.random.default_rng(0).bytes(4096)
    path = tmp_path / "corrupted.nc"
    path.write_bytes(bytes(raw))
    _load_fit_error(path)


def test_fit_file_that_is_not_netcdf(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("this is not a netCDF file\n")
    _load_fit_error(path)


def test_missing_fit_file(tmp_path):
    message = _load_fit_error(tmp_path / "nowhere.nc")
    assert "no such file" in message


def test_foreign_xarray_netcdf(tmp_path):
    import xarray as xr

    path = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(5.0))}).to_netcdf(path, engine="h5netcdf")
    assert "not written by this version of bayesreview" in _load_fit_error(path)


def test_foreign_arviz_inference_data(tmp_path):
    import arviz as az

    path = tmp_path / "foreign_idata.nc"
    idata = az.from_dict(posterior={"mu": np.zeros((2, 10))}, attrs={"note": "not ours"})
    idata.to_netcdf(str(path), engine="h5netcdf")
    assert "not written by this version of bayesreview" in _load_fit_error(path)


def test_fit_file_with_damaged_attributes(saved_fit, tmp_path):
    # A file whose stored specification is not TOML (e.g. edited by hand) is not a valid fit.
    from bayesreview._io import save_fit_file

    idata = br.load_fit(saved_fit).idata
    attrs = idata.posterior.attrs
    path = save_fit_file(
        idata,
        tmp_path / "damaged.nc",
        "likelihood = [unclosed",
        attrs["bayesreview_studies"],
        json.loads(attrs["bayesreview_settings"]),
    )
    assert "damaged bayesreview fit attributes" in _load_fit_error(path)
