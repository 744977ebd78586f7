"""The HTML report: self-contained (no network request), escaped, and saying what it must."""

from __future__ import annotations

import dataclasses
import html
import re
from html.parser import HTMLParser
from importlib import metadata

import matplotlib
import pytest

import bayesreview as br
from bayesreview.backend import compiled_for
from bayesreview.report import bundled_dataset, package_versions, render_report, write_report

matplotlib.use("Agg")


class _Resources(HTMLParser):
    """Every tag, and every attribute that can make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action", "xlink:href"):
                self.links.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def _parse(text: str) -> _Resources:
    parser = _Resources()
    parser.feed(text)
    parser.close()
    return parser


def _assert_self_contained(text: str) -> _Resources:
    parsed = _parse(text)
    assert "script" not in parsed.tags
    assert "link" not in parsed.tags and "iframe" not in parsed.tags
    for tag, name, value in parsed.links:
        lowered = value.strip().lower()
        assert not lowered.startswith(("http:", "https:", "//", "ftp:")), (tag, name)
        if tag == "img":
            assert lowered.startswith("data:image/"), value[:40]
    for style in parsed.styles:
        assert "@import" not in style
        assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", style, re.IGNORECASE)
    return parsed


# response_fit (tests/conftest.py): the joint response model pooled by group, the model
# structure tests/test_cli.py fits too, so a shared test process compiles it once.


@pytest.fixture(scope="module")
def report_text(response_fit, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(response_fit, path) == path
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # nothing partial left
    return path.read_text(encoding="utf-8")


def test_report_references_no_external_resource(report_text):
    parsed = _assert_self_contained(report_text)
    # per outcome (3): a forest plot, a comparison heat map and a rank plot; one PPC
    images = [v for tag, _, v in parsed.links if tag == "img"]
    assert len(images) == 3 * 3 + 1
    assert all(v.startswith("data:image/png;base64,") for v in images)


def _captions(text: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", text)]


def test_report_carries_one_figure_of_each_kind(report_text):
    kinds = [caption.split(":")[0] for caption in _captions(report_text)]
    for kind in ("Forest plot", "Comparison heat map", "Rank probabilities"):
        assert kinds.count(kind) == 3, kind  # complete, partial, any
    assert kinds.count("Posterior predictive check, per study") == 1


def test_report_tables_show_labels_not_codes(report_text):
    # the codebook (data/datasets.toml) labels Table 2's rows; codes stay out of what people read
    cells = re.findall(r"<td[^>]*>(.*?)</td>", report_text)
    text = [html.unescape(c) for c in cells]
    for code, label in {"topical_sts": "Topical STS", "eswl": "ESWL"}.items():
        assert label in text
        assert code not in text


def test_report_shows_clinical_thresholds_when_given(response_fit):
    table = br.exceedance(response_fit, 0.5)
    text = render_report(response_fit, tables={"exceedance": table})
    assert "<h2>Clinical thresholds</h2>" in text
    # the probability printed for topical STS, any response, is the table's, to two decimals
    row = table[(table["outcome"] == "any") & (table["modality"] == "topical_sts")].iloc[0]
    assert f'<td class="num">{row["p_pooled"]:.2f}</td>' in text


def test_report_shows_a_sensitivity_analysis_when_given(response_fit, studies):
    table = br.sensitivity(
        studies, outcome="any", by="group", scenarios=["unknown"], draws=100, tune=100
    )
    text = render_report(response_fit, sensitivity=table)
    assert "<h2>Sensitivity analyses</h2>" in text
    assert _captions(text).count("Sensitivity analyses: any response (complete or partial)") == 1
    _assert_self_contained(text)


def test_report_shows_crude_counts_of_table_2(report_text):
    # Table 2 of the review: complete 9/48 (topical), 19/53 (intralesional), 12/21 (laser),
    # 1/11 (ESWL); any response 39/48, 39/53, 15/21, 7/11 (Results text)
    for cell in ("9/48", "19/53", "12/21", "1/11", "39/48", "39/53", "15/21", "7/11"):
        assert f'<td class="num">{cell}</td>' in report_text
    # 9/48 = 18.75% exactly, printed to one decimal rounding half up
    assert '<td class="num">18.8</td>' in report_text


def test_report_states_settings_versions_and_model(report_text, response_fit, response_fit_args):
    text = html.unescape(report_text)
    assert f"seed {response_fit_args['seed']}" in text
    assert f"<td>pymc</td><td>{metadata.version('pymc')}</td>" in text
    assert f"<td>arviz</td><td>{metadata.version('arviz')}</td>" in text
    assert "Normal(mean 0, sd 1.5)" in text  # the intercept prior of models/response.toml
    divergences = int(response_fit.idata.sample_stats["diverging"].values.sum())
    assert f"Divergent transitions: {divergences}." in text
    assert f"the likelihood was compiled for {compiled_for()}" in text


def test_compiled_for_is_the_processor_numba_compiles_for(monkeypatch):
    """What the report names is what numba's code generator targets (and keys its cache on):
    the second entry of its magic tuple (target triple, CPU name, features)."""
    import numba
    from numba.core.registry import cpu_target

    assert compiled_for() == cpu_target.target_context.codegen().magic_tuple()[1]
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    assert compiled_for() == "generic"


def test_a_saved_fit_keeps_the_processor_it_was_compiled_for(response_fit, tmp_path):
    response_fit.save(tmp_path / "fit.nc")
    reloaded = br.load_fit(tmp_path / "fit.nc")
    assert reloaded.idata.posterior.attrs["bayesreview_compiled_for"] == compiled_for()
    reloaded.idata.posterior.attrs["bayesreview_compiled_for"] = "some-other-cpu"
    text = render_report(reloaded, figures={})
    assert "the likelihood was compiled for some-other-cpu" in text
    del reloaded.idata.posterior.attrs["bayesreview_compiled_for"]  # a file of an older version
    assert "the saved fit does not record which" in render_report(reloaded, figures={})


def test_report_reconciles_bundled_data_after_reload(response_fit, tmp_path):
    response_fit.save(tmp_path / "fit.nc")
    reloaded = br.load_fit(tmp_path / "fit.nc")
    assert reloaded.studies.attrs.get("source") != "bundled:calcinosis_cutis"
    assert bundled_dataset(reloaded.studies) == "calcinosis_cutis"
    text = render_report(reloaded, figures={})
    _assert_self_contained(text)
    # Ma 2019 (Table 1: 7 NR, 2 UR) against Table 2's topical none 3/48 and unknown 6/48
    for quantity, ours, printed in (("none", 7, 3), ("unknown", 2, 6)):
        row = (
            f"<tr><td>Topical STS</td><td>{quantity}</td>"
            f'<td class="num">{ours}</td><td class="num">{printed}</td></tr>'
        )
        assert row in text
    assert "this report was written from the saved fit" in text


def test_user_text_is_escaped(response_fit):
    studies = response_fit.studies.copy()
    studies.loc[0, "study"] = "<script>alert('x')</script>"
    studies.loc[1, "notes"] = 'see <a href="https://example.org">here</a> & there'
    other = dataclasses.replace(response_fit, studies=studies)
    assert bundled_dataset(studies) is None
    text = render_report(other, figures={}, title="A <b>bold</b> title")
    parsed = _assert_self_contained(text)
    assert "a" not in parsed.tags and "b" not in parsed.tags
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "&lt;a href=&quot;https://example.org&quot;&gt;here&lt;/a&gt; &amp; there" in text
    assert "No published summary is bundled" in text


def test_svg_figures_are_inlined_without_their_doctype(response_fit):
    svg = (
        b'<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n'
        b'  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
    )
    text = render_report(response_fit, figures={"any": svg})
    assert "DOCTYPE svg" not in text and "svg11.dtd" not in text
    assert '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>' in text
    _assert_self_contained(text)
    with pytest.raises(ValueError, match="PNG or SVG"):
        render_report(response_fit, figures={"any": b"GIF89a"})


def test_package_versions_names_what_the_numbers_depend_on():
    versions = package_versions()
    assert list(versions) == ["bayesreview", "pymc", "arviz", "numpy", "nutpie"]
    assert versions["bayesreview"] == br.__version__
    assert versions["numpy"] == metadata.version("numpy")


def test_a_harm_report_ranks_the_lower_rate_first(fast_fit):
    """A harm fit's report says lower is better and prints P(A better than B) = P(A < B)."""
    harm = br.harm_studies(br.load_dataset("calcinosis_cutis_adverse_events"), "infection")
    result = fast_fit(harm, outcome="events", better="lower", seed=4)
    text = render_report(result)
    assert "Here lower rates are better." in text
    assert "lowest mean rate, the best (p_best; lower is better)" in text
    pair = result.compare().set_index(["modality_a", "modality_b"])
    below = pair.loc[(result.groups[0], result.groups[1]), "p_greater"]
    # the first modality is better where its rate is below the second's: 1 - P(A > B)
    assert f'<td class="num">{1 - below:.2f}</td>' in text
    assert "only totals pooled over studies are reported" in text
