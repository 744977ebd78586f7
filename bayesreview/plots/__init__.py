"""Figures: the forest plot and friends (matplotlib; nothing here computes a posterior).

One module per family of figure: :mod:`~bayesreview.plots.forest` (the forest plot),
:mod:`~bayesreview.plots.comparison` (pairwise heat map, rank probabilities),
:mod:`~bayesreview.plots.bias` (bias effects, prior against posterior),
:mod:`~bayesreview.plots.checks` (posterior predictive check),
:mod:`~bayesreview.plots.sensitivity` (the sensitivity figure),
:mod:`~bayesreview.plots.benefit_risk` (response against harm),
:mod:`~bayesreview.plots.network` (the network of treatments), and
:mod:`~bayesreview.plots.common` (colours, text measurement, :func:`save_figure`). Import the
figures from here: ``from bayesreview.plots import forest_plot``.

Every function takes an optional ``ax``, draws, and returns the matplotlib ``Figure``; none
calls ``plt.show()``. Parts of a figure carry gids so that tests and users can find them
(``artist.get_gid()``):

forest plot
    ``"study:<row>"`` crude proportion marker (one per study), ``"crude_ci:<row>"`` its exact
    interval, ``"shrunken:<row>"`` / ``"shrunken_ci:<row>"`` the shrunken study estimate and
    its credible interval, ``"diamond:<modality>"`` the pooled mean rate,
    ``"prediction:<modality>"`` the prediction interval, and text ``"text:<column>:<row>"``
    with column one of ``label``, ``events``, ``crude``, ``posterior``, ``prediction`` (the
    column headings use row ``column_header``, the footer is ``"text:footer"``). Rows are
    ``"<modality>/<study>"`` for studies, ``"<modality>"`` for a modality's heading and
    ``"pooled:<modality>"`` for its pooled row. With a categorical bias covariate, the bias
    column's parts are ``"bias:<row>:<level>"`` (a rated study's one cell, or an unrated
    study's share of each level) and ``"bias_unrated:<row>"`` (the dotted box of an unrated
    study), under the heading ``"text:bias:column_header"``.
comparison heatmap
    ``"cell:<row modality>:<column modality>"`` for the numbers in the cells.
rankogram
    ``"rank:<modality>"`` for each modality's line.
bias prior/posterior
    ``"prior:<effect>"`` and ``"posterior:<effect>"``.
benefit-risk
    ``"draws:<modality>"``, ``"region:<modality>"``, ``"median:<modality>"``,
    ``"threshold:response"``, ``"threshold:harm"``, ``"desirable"``.
network graph
    ``"node:<treatment>"``, ``"edge:<a>:<b>"``, ``"text:edge:<a>:<b>"``,
    ``"text:node:<treatment>"``.
league table (network)
    ``"league:<row>:<column>"``.
relative effects (network)
    ``"effect:<treatment>"``, ``"effect_ci:<treatment>"``, ``"null"``,
    ``"text:effect:<treatment>"``.
posterior predictive check
    ``"observed:<study>"`` and ``"replicated:<study>"`` (per-study view), ``"observed:zero"``,
    ``"observed:all"`` (extremes view).

Percentages are rounded half up as journals print them (:func:`bayesreview.formatting.percent`).
"""

# In reading order, which the API page follows (hence the isort splits).
from bayesreview.plots.forest import forest_plot, forest_rows  # isort: split

from bayesreview.plots.common import (  # isort: split
    PAD_INCHES,
    POSTERIOR_COLOR,
    PREDICTION_COLOR,
    interval_text,
    save_figure,
)

from bayesreview.plots.comparison import comparison_heatmap, rankogram  # isort: split

from bayesreview.plots.bias import bias_prior_posterior  # isort: split

from bayesreview.plots.checks import ppc_plot  # isort: split

from bayesreview.plots.sensitivity import sensitivity_plot  # isort: split

from bayesreview.plots.benefit_risk import benefit_risk_plot  # isort: split

from bayesreview.plots.network import league_heatmap, network_graph, relative_effects_plot

__all__ = [
    "PAD_INCHES",
    "POSTERIOR_COLOR",
    "PREDICTION_COLOR",
    "benefit_risk_plot",
    "bias_prior_posterior",
    "comparison_heatmap",
    "forest_plot",
    "forest_rows",
    "interval_text",
    "league_heatmap",
    "network_graph",
    "ppc_plot",
    "rankogram",
    "relative_effects_plot",
    "save_figure",
    "sensitivity_plot",
]
