"""Figures: their content checked against the data, the paper and independent computations."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text
from scipy import stats

import bayesreview as br
from bayesreview import plots

# studies, calcinosis_fit (any response by group, 2 x 300 draws): tests/conftest.py


@pytest.fixture(scope="module")
def forest(calcinosis_fit):
    fig = plots.forest_plot(calcinosis_fit)
    yield fig
    plt.close(fig)


@pytest.fixture(autouse=True)
def _close_other_figures(forest):
    yield
    for number in plt.get_fignums():
        if number != forest.number:
            plt.close(number)


def _pct(rate: float) -> str:
    """Percent rounded half up, written here independently of bayesreview.formatting."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(repr(float(100 * rate))).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _pct_of_counts(events: int, n: int) -> str:
    """100 * events / n rounded half up, in exact rational arithmetic."""
    return str(math.floor(Fraction(100 * int(events), int(n)) + Fraction(1, 2)))


def _by_gid(fig, prefix: str) -> dict[str, object]:
    found = {}
    for artist in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix)):
        gid = artist.get_gid()
        assert gid not in found, f"duplicate gid {gid}"
        found[gid[len(prefix) :]] = artist
    return found


def _texts(fig) -> dict[str, str]:
    """gid -> string of every text artist carrying a ``text:`` gid."""
    return {
        a.get_gid(): a.get_text()
        for a in fig.findobj(Text)
        if (a.get_gid() or "").startswith("text:")
    }


# --- forest plot: structure -------------------------------------------------------------------


def test_one_row_per_study_and_one_diamond_per_modality(forest, calcinosis_fit, studies):
    markers = _by_gid(forest, "study:")
    assert len(markers) == 40 == len(studies)
    expected = {f"{g}/{s}" for g, s in zip(studies["group"], studies["study"], strict=True)}
    assert set(markers) == expected
    assert set(_by_gid(forest, "shrunken:")) == expected
    assert set(_by_gid(forest, "diamond:")) == set(calcinosis_fit.groups)
    assert set(_by_gid(forest, "prediction:")) == set(calcinosis_fit.groups)
    assert len(calcinosis_fit.groups) == 6


def test_studies_are_grouped_by_modality_and_ordered_by_year(forest, calcinosis_fit, studies):
    markers = _by_gid(forest, "study:")
    diamonds = _by_gid(forest, "diamond:")
    y_of = {key: float(np.mean(m.get_ydata())) for key, m in markers.items()}
    year = dict(zip(studies["group"] + "/" + studies["study"], studies["year"], strict=True))
    previous_diamond = -math.inf
    for group in calcinosis_fit.groups:
        keys = sorted((k for k in y_of if k.startswith(group + "/")), key=y_of.get)
        years = [year[k] for k in keys]
        assert years == sorted(years), group
        diamond_y = float(np.mean(diamonds[group].get_xy()[:, 1]))
        # y grows downwards: the group's studies lie between the previous diamond and its own
        assert all(previous_diamond < y_of[k] < diamond_y for k in keys), group
        previous_diamond = diamond_y


def test_markers_are_the_crude_proportions_with_exact_intervals(forest, studies):
    markers = _by_gid(forest, "study:")
    lines = _by_gid(forest, "crude_ci:")
    for row in studies.itertuples():
        key = f"{row.group}/{row.study}"
        x = row.complete + row.partial
        assert markers[key].get_xdata()[0] == pytest.approx(x / row.n)
        lower = 0.0 if x == 0 else stats.beta.ppf(0.025, x, row.n - x + 1)
        upper = 1.0 if x == row.n else stats.beta.ppf(0.975, x + 1, row.n - x)
        np.testing.assert_allclose(lines[key].get_xdata(), [lower, upper], atol=1e-9)


def test_diamonds_and_prediction_bars_show_the_summary(forest, calcinosis_fit):
    summary = calcinosis_fit.summary().set_index("modality")
    diamonds = _by_gid(forest, "diamond:")
    predictions = _by_gid(forest, "prediction:")
    for group, diamond in diamonds.items():
        xs = diamond.get_xy()[:, 0]
        row = summary.loc[group]
        assert xs.min() == pytest.approx(row["mean_rate_lower"])
        assert xs.max() == pytest.approx(row["mean_rate_upper"])
        # the top vertex is the median
        top = diamond.get_xy()[np.argmin(diamond.get_xy()[:, 1])]
        assert top[0] == pytest.approx(row["mean_rate"])
        np.testing.assert_allclose(
            predictions[group].get_xdata(), [row["pred_lower"], row["pred_upper"]]
        )


# --- forest plot: text columns ----------------------------------------------------------------


def test_study_text_columns(forest, calcinosis_fit, studies):
    texts = _texts(forest)
    estimates = calcinosis_fit.study_estimates().set_index(["modality", "study"])
    for row in studies.itertuples():
        key = f"{row.group}/{row.study}"
        x = row.complete + row.partial
        assert texts[f"text:events:{key}"] == f"{x}/{row.n}"
        assert texts[f"text:crude:{key}"] == _pct_of_counts(x, row.n)
        assert texts[f"text:label:{key}"].strip() == row.study
        est = estimates.loc[(row.group, row.study)]
        expected = (
            f"{_pct(est['post_median'])} ({_pct(est['post_lower'])}–{_pct(est['post_upper'])})"
        )
        assert texts[f"text:posterior:{key}"] == expected


def test_pooled_text_columns_match_the_summary_and_crude_table(forest, calcinosis_fit, studies):
    texts = _texts(forest)
    crude = br.crude_table(studies, by="group").set_index("group")
    summary = calcinosis_fit.summary().set_index("modality")
    for group in calcinosis_fit.groups:
        key = f"pooled:{group}"
        events, n = int(crude.loc[group, "any"]), int(crude.loc[group, "denominator"])
        assert texts[f"text:events:{key}"] == f"{events}/{n}"
        assert texts[f"text:crude:{key}"] == _pct_of_counts(events, n)
        s = summary.loc[group]
        assert texts[f"text:posterior:{key}"] == (
            f"{_pct(s['mean_rate'])} ({_pct(s['mean_rate_lower'])}–{_pct(s['mean_rate_upper'])})"
        )
        assert texts[f"text:prediction:{key}"] == f"{_pct(s['pred_lower'])}–{_pct(s['pred_upper'])}"


def test_pooled_crude_numbers_are_the_papers(forest):
    """Results text of the review: 81% (39/48) topical STS, 74% (39/53) intralesional STS,
    64% (7/11) ESWL, 71% (15/21) laser."""
    texts = _texts(forest)
    for group, events, crude in [
        ("topical_sts", "39/48", "81"),
        ("intralesional_sts", "39/53", "74"),
        ("eswl", "7/11", "64"),
        ("laser", "15/21", "71"),
    ]:
        assert texts[f"text:events:pooled:{group}"] == events
        assert texts[f"text:crude:pooled:{group}"] == crude


def test_footer_says_what_the_diamond_shows(forest, calcinosis_fit):
    footer = _texts(forest)["text:footer"].replace("\n", " ")
    assert "population mean response rate" in footer
    assert "no bias covariate" in footer
    assert "beta_binomial" in footer
    assert "seed 2021" in footer


def test_no_text_overlaps_and_the_figure_grows_with_its_rows(forest):
    forest.canvas.draw()
    renderer = forest.canvas.get_renderer()
    boxes = []
    for text in forest.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        boxes.append((text.get_text()[:30], text.get_window_extent(renderer)))
    assert len(boxes) > 4 * 40  # label, events, crude and posterior for every study at least
    overlaps = []
    for (name_a, a), (name_b, b) in itertools.combinations(boxes, 2):
        if a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5:
            overlaps.append((name_a, name_b))
    assert not overlaps
    # every text lies inside the figure
    width, height = forest.canvas.get_width_height()
    for name, box in boxes:
        assert box.x0 >= -1 and box.x1 <= width + 1 and box.y0 >= -1 and box.y1 <= height + 1, name
    # 40 studies + 6 headings + 6 pooled rows + 5 gaps at 0.22 in each
    assert forest.get_size_inches()[1] >= 57 * 0.22


def test_forest_options_and_bad_input(calcinosis_fit):
    fig = plots.forest_plot(calcinosis_fit, outcome="any", sort_by="n", level=0.9)
    texts = _texts(fig)
    assert "90% CrI" in texts["text:posterior:column_header"]
    with pytest.raises(br.BayesReviewError, match=r"outcome='complete'.*any"):
        plots.forest_plot(calcinosis_fit, outcome="complete")
    with pytest.raises(br.BayesReviewError, match="sort_by='size'"):
        plots.forest_plot(calcinosis_fit, sort_by="size")


def test_forest_plot_in_a_given_axes(calcinosis_fit):
    fig, ax = plt.subplots(figsize=(10, 16))
    returned = calcinosis_fit.forest_plot(ax=ax)
    assert returned is fig
    assert len(_by_gid(fig, "study:")) == 40


# --- saving -----------------------------------------------------------------------------------


def test_save_figure_writes_each_format_whole(tmp_path, forest):
    paths = plots.save_figure(forest, tmp_path / "sub" / "forest_any", dpi=60)
    assert [p.name for p in paths] == ["forest_any.png", "forest_any.svg", "forest_any.pdf"]
    png, svg, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"<svg" in svg[:1000] and svg.rstrip().endswith(b"</svg>")
    assert all(len(b) > 1000 for b in (png, svg, pdf))
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(p.name for p in paths)
    # the PNG's size is the figure's at that dpi (IHDR width and height, big-endian)
    width = int.from_bytes(png[16:20], "big")
    assert width > 0.9 * forest.get_size_inches()[0] * 60


def test_save_figure_rejects_an_unknown_format(tmp_path, forest):
    with pytest.raises(br.BayesReviewError, match="'bmpx'"):
        plots.save_figure(forest, tmp_path / "f", formats=("png", "bmpx"))
    assert list(tmp_path.iterdir()) == []


# --- comparisons ------------------------------------------------------------------------------


def test_heatmap_cells_are_pairwise_probabilities(calcinosis_fit):
    fig = plots.comparison_heatmap(calcinosis_fit)
    cells = _by_gid(fig, "cell:")
    groups = calcinosis_fit.groups
    assert len(cells) == len(groups) * (len(groups) - 1)
    rate = calcinosis_fit.idata.posterior["rate"].sel(outcome="any")
    for a, b in itertools.permutations(groups, 2):
        p = float(np.mean(rate.sel(group=a).values > rate.sel(group=b).values))
        assert cells[f"{a}:{b}"].get_text() == f"{p:.2f}"


def test_rankogram_lines_are_rank_probabilities(calcinosis_fit):
    fig = plots.rankogram(calcinosis_fit)
    lines = _by_gid(fig, "rank:")
    rate = calcinosis_fit.idata.posterior["rate"].sel(outcome="any")
    groups = list(calcinosis_fit.groups)
    matrix = np.column_stack([rate.sel(group=g).values.ravel() for g in groups])
    ranked = np.vstack([stats.rankdata(-row, method="ordinal") for row in matrix])
    for i, group in enumerate(groups):
        expected = [(ranked[:, i] == r).mean() for r in range(1, len(groups) + 1)]
        np.testing.assert_allclose(lines[group].get_ydata(), expected, atol=1e-12)


# --- bias effects -----------------------------------------------------------------------------


def test_bias_plot_needs_a_bias_covariate(calcinosis_fit):
    with pytest.raises(br.BayesReviewError, match="no bias covariate"):
        plots.bias_prior_posterior(calcinosis_fit)


@pytest.mark.slow
def test_bias_plot_shows_the_prior_density_and_the_draws(studies, fast_fit):
    fit = fast_fit(studies, outcome="any", by="group", bias="design", seed=5)
    fig = plots.bias_prior_posterior(fit)
    priors = _by_gid(fig, "prior:")
    assert set(priors) == {"beta[case_series]", "beta[rct]"}
    for line in priors.values():
        x = line.get_xdata()
        # the shipped beta-binomial spec: bias ~ Normal(0, 1) (models/beta_binomial.toml)
        np.testing.assert_allclose(line.get_ydata(), stats.norm(0, 1).pdf(x), rtol=1e-9)
    for name in priors:
        level = name[len("beta[") : -1]
        draws = fit.idata.posterior["beta"].sel(bias_level=level).values.ravel()
        patches = fig.findobj(lambda a, name=name: a.get_gid() == f"posterior:{name}")
        assert len(patches) == 40  # the histogram's bars
        heights = np.array([p.get_height() for p in patches])
        widths = np.array([p.get_width() for p in patches])
        assert (heights * widths).sum() == pytest.approx(1.0)
        centres = np.array([p.get_x() + p.get_width() / 2 for p in patches])
        assert (centres * heights * widths).sum() == pytest.approx(draws.mean(), abs=widths[0])
    with pytest.raises(br.BayesReviewError, match="2 bias effect"):
        _, ax = plt.subplots()
        plots.bias_prior_posterior(fit, ax=ax)


# --- posterior predictive check ---------------------------------------------------------------


def test_ppc_studies_marks_the_observed_proportions(calcinosis_fit, studies):
    fig = plots.ppc_plot(calcinosis_fit)
    observed = _by_gid(fig, "observed:")
    assert len(observed) == 40
    for row in studies.itertuples():
        x = (row.complete + row.partial) / row.n
        assert observed[row.study].get_xdata()[0] == pytest.approx(x)


def test_ppc_extremes_counts_the_extreme_studies(calcinosis_fit, studies):
    fig = plots.ppc_plot(calcinosis_fit, kind="extremes")
    lines = _by_gid(fig, "observed:")
    responders = studies["complete"] + studies["partial"]
    assert lines["zero"].get_xdata()[0] == (responders == 0).sum() == 3
    assert lines["all"].get_xdata()[0] == (responders == studies["n"]).sum()
    with pytest.raises(br.BayesReviewError, match="kind='density'"):
        plots.ppc_plot(calcinosis_fit, kind="density")
    with pytest.raises(br.BayesReviewError, match="events_cond"):
        plots.ppc_plot(calcinosis_fit, variable="events_cond")


def test_forest_rows_table_matches_the_figure(forest, calcinosis_fit):
    rows = plots.forest_rows(calcinosis_fit)
    assert rows["kind"].value_counts().to_dict() == {
        "study": 40,
        "header": 6,
        "pooled": 6,
        "gap": 5,
    }
    texts = _texts(forest)
    for row in rows[rows["kind"] == "pooled"].itertuples():
        assert texts[f"text:posterior:{row.key}"] == row.text_posterior


def test_forest_bias_column_shows_ratings_and_posterior_level_probabilities(fast_fit, studies):
    """Rated studies: one cell of their level's colour; unrated: the posterior shares."""
    from matplotlib.colors import to_hex

    rated = studies.copy()
    rated["risk_of_bias"] = rated["risk_of_bias"].astype(object)
    rated.loc[[0, 3], "risk_of_bias"] = ["low", "high"]
    result = fast_fit(
        rated, by="group", bias="risk_of_bias", bias_totals={"low": 10, "moderate": 19, "high": 11}
    )
    fig = plots.forest_plot(result)
    cells = _by_gid(fig, "bias:")
    first = f"{result.data.groups[result.data.group_idx[0]]}/{rated['study'][0]}"
    assert {key for key in cells if key.startswith(first + ":")} == {first + ":low"}
    assert to_hex(cells[first + ":low"].get_facecolor()) == plots.forest.BIAS_LEVEL_COLORS["low"]
    assert first not in {k.removeprefix("bias_unrated:") for k in _by_gid(fig, "bias_unrated:")}
    # an unrated study's parts are as wide as its posterior probabilities (bias_levels())
    levels = result.bias_levels()
    j = 1
    study = rated["study"][j]
    key = f"{result.data.groups[result.data.group_idx[j]]}/{study}"
    widths = {lv: cells[f"{key}:{lv}"].get_width() for lv in ("low", "moderate", "high")}
    total = sum(widths.values())
    expected = levels[levels["study"] == study].set_index("level")["probability"]
    for level, width in widths.items():
        assert width / total == pytest.approx(expected[level], abs=1e-12)
    assert "dotted box split by its posterior probability" in _by_gid(fig, "text:footer")[
        ""
    ].get_text().replace("\n", " ")
    plt.close(fig)
