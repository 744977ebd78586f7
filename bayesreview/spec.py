"""Model specifications: declarative TOML files parsed into validated, frozen objects.

A model specification is what a reviewer registers in a protocol: the likelihood, how
heterogeneity is pooled across modalities, and every prior, readable without Python. It is
parsed with :mod:`tomllib` and validated, never executed. The shipped specifications live in
the top-level ``models/`` folder (``bayesreview/_models/`` inside a wheel); a user copies one,
edits a prior and passes the path to :func:`load_spec`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from scipy import stats
from scipy.special import expit

from bayesreview._resources import resource_dir
from bayesreview.data import OUTCOMES
from bayesreview.errors import SpecError

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = [
    "HETEROGENEITIES",
    "LIKELIHOODS",
    "NETWORK_PRIOR_KEYS",
    "SELECTIONS",
    "SELECTION_CLASSES",
    "SELECTION_CLASS_LABELS",
    "SPEC_OUTCOMES",
    "STRUCTURES",
    "ModelSpec",
    "Prior",
    "load_spec",
    "shipped_models",
]

#: The likelihood families a specification may name (each has a builder in the backend).
LIKELIHOODS = ("beta_binomial", "logit_normal")
HETEROGENEITIES = ("partial_pooling", "shared", "per_modality")
#: What a row of the study table is. ``"studies"`` (the default): each row is a study (or one
#: modality's patients of it), pooled per level of ``by``. ``"network"``: rows sharing a
#: ``study`` label are the arms of one trial, and treatments are compared within trials (the
#: arm-based network model, :mod:`bayesreview.backend.network`; logit-normal likelihood,
#: one shared tau).
STRUCTURES = ("studies", "network")
#: Outcomes a specification may be written for: one response outcome, or the joint model.
SPEC_OUTCOMES = (*OUTCOMES, "response")
#: Publication-selection models a specification may name. ``"by_response"``: a study that
#: reports no responders is published with probability w_d relative to one that reports some,
#: w_d by the study's selection class d (:data:`SELECTION_CLASSES`).
SELECTIONS = ("by_response",)
#: The selection classes, each with the prior key of its relative publication probability:
#: a case report (one patient in the denominator) or a case series (more than one).
SELECTION_CLASSES: dict[str, str] = {
    "case_report": "selection_case_report",
    "case_series": "selection_case_series",
}
#: What people read for each selection class (plural, as in "case reports 8%").
SELECTION_CLASS_LABELS: dict[str, str] = {
    "case_report": "case reports",
    "case_series": "case series",
}
_STAGES = ("marginal", "conditional")
_TOP_LEVEL_KEYS = (
    "name",
    "description",
    "likelihood",
    "heterogeneity",
    "outcome",
    "selection",
    "structure",
    "priors",
    "conditional_priors",
)

# Parameters of each distribution, in the order they are written; names match PyMC's.
_DIST_PARAMS: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "halfnormal": ("sigma",),
    "halfstudent_t": ("nu", "sigma"),
    "exponential": ("lam",),
    "beta": ("alpha", "beta"),
}
_POSITIVE_PARAMS = frozenset({"nu", "sigma", "lam", "alpha", "beta"})
_FAMILY_DISTS = {
    "location": ("normal", "student_t"),
    "scale": ("halfnormal", "halfstudent_t", "exponential"),
    "probability": ("beta",),
}
# Plain-words name of each distribution and of its parameters, for describe().
_DIST_WORDS: dict[str, tuple[str, dict[str, str]]] = {
    "normal": ("Normal", {"mu": "mean", "sigma": "sd"}),
    "student_t": ("Student-t", {"nu": "df", "mu": "location", "sigma": "scale"}),
    "halfnormal": ("Half-normal", {"sigma": "scale"}),
    "halfstudent_t": ("Half-Student-t", {"nu": "df", "sigma": "scale"}),
    "exponential": ("Exponential", {"lam": "rate"}),
    "beta": ("Beta", {"alpha": "alpha", "beta": "beta"}),
}
# Escapes of a TOML basic string; other control characters are written as \uXXXX.
_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
# The half distributions fold the symmetric distribution of the same name at zero.
_FOLDED = {"halfnormal": "normal", "halfstudent_t": "student_t"}


class _KeyInfo(NamedTuple):
    family: str  # "location", "scale" or "probability"
    meaning: str
    natural_scale: str | None  # name of the scale `transform` maps the parameter onto
    transform: Callable[[float], float] | None


_PRIOR_KEYS: dict[str, _KeyInfo] = {
    "intercept": _KeyInfo(
        "location",
        "each modality's logit response rate at the reference bias level (the logit of the mean "
        "rate for beta-binomial, the mean study logit for logit-normal)",
        "rate",
        expit,
    ),
    "bias": _KeyInfo(
        "location",
        "logit-scale effect of each non-reference bias level (or of one unit of a numeric "
        "covariate)",
        "odds ratio",
        math.exp,
    ),
    "log_concentration": _KeyInfo(
        "location",
        "log of the beta-binomial concentration phi; the intra-class correlation is 1/(1 + phi)",
        "phi",
        math.exp,
    ),
    "log_concentration_sd": _KeyInfo(
        "scale",
        "SD of log(phi) across modalities: how far each modality's phi strays from the common one",
        None,
        None,
    ),
    "tau": _KeyInfo("scale", "SD of the study logits around the modality's mean logit", None, None),
    "log_tau": _KeyInfo(
        "location",
        "log of the common between-study SD tau (logit scale) that modalities are pooled toward",
        "tau",
        math.exp,
    ),
    "log_tau_sd": _KeyInfo(
        "scale",
        "SD of log(tau) across modalities: how far each modality's tau strays from the common one",
        None,
        None,
    ),
    "selection_case_report": _KeyInfo(
        "probability",
        "probability that a case report of a patient who did not respond is published, "
        "relative to one of a patient who did",
        None,
        None,
    ),
    "selection_case_series": _KeyInfo(
        "probability",
        "probability that a case series with no responders is published, relative to one "
        "with at least one",
        None,
        None,
    ),
    "effect": _KeyInfo(
        "location",
        "log odds ratio of each treatment against the reference (network model)",
        "odds ratio",
        math.exp,
    ),
    "baseline_mean": _KeyInfo(
        "location",
        "mean of the studies' baseline logits: the reference treatment's logit in a typical "
        "study (network model)",
        "rate",
        expit,
    ),
    "baseline_sd": _KeyInfo(
        "scale", "SD of the studies' baseline logits around their mean (network model)", None, None
    ),
    "effect_sd": _KeyInfo(
        "scale",
        "tau, the between-study SD of each log odds ratio (network model; two contrasts of one "
        "multi-arm trial correlate 0.5)",
        None,
        None,
    ),
}

#: The prior keys of the network model (:data:`STRUCTURES`), all required.
NETWORK_PRIOR_KEYS = ("effect", "baseline_mean", "baseline_sd", "effect_sd")

_LIKELIHOOD_WORDS = {
    "beta_binomial": (
        "beta-binomial: each study's events are binomial given the study's own response rate, "
        "and study rates follow a beta distribution around the modality's mean rate with "
        "concentration phi (integrated out exactly)."
    ),
    "logit_normal": (
        "logit-normal (binomial-normal GLMM): each study's events are binomial, and study "
        "logits are normal around the modality's mean logit with SD tau. Its pooled mean rate "
        "is the population mean E[p], not invlogit of the mean logit (that is the median)."
    ),
}
_HETEROGENEITY_WORDS = {
    "partial_pooling": (
        "partial pooling: each modality has its own {p}, and the log({p}) values are shrunk "
        "toward a common value, so modalities with few studies borrow strength."
    ),
    "shared": "shared: one {p} for all modalities.",
    "per_modality": "per modality: each modality has its own {p}, each with the same prior.",
}
_OUTCOME_WORDS = {
    None: "not fixed by the specification; chosen when fitting.",
    "any": "any response (complete or partial).",
    "complete": "complete response.",
    "partial": "partial response.",
    "response": (
        "joint sequential model: any response, then complete response given any response; "
        "partial = any - complete, so the three rates are coherent in every draw."
    ),
}


_NETWORK_WORDS = (
    "logit-normal arm-based network model: arm k of study i has y_ik ~ Binomial(n_ik, p_ik) "
    "with logit p_ik = mu_i + d[t_ik] + u_ik, d[reference] = 0, u_ik ~ Normal(0, tau^2 / 2) "
    "(each contrast of two arms varies with SD tau; two contrasts of one multi-arm trial "
    "correlate 0.5), consistency assumed; the study baselines mu_i are exchangeable, "
    "Normal(m, sigma^2), which is what lets single-arm studies in."
)

_SELECTION_WORDS = {
    None: "none: every study is assumed published whatever its result.",
    "by_response": (
        "by response: a study with no responders is published with probability w relative "
        "to one with responders (w for case reports, another w for case series), so each "
        "published study's likelihood is f(y) w(y) / sum over y' of f(y') w(y'), exactly."
    ),
}


def _model_prior_keys(
    likelihood: str, heterogeneity: str, selection: str | None = None, structure: str = "studies"
) -> tuple[str, ...]:
    """Return the prior keys, all required, of one likelihood, heterogeneity, selection and
    structure."""
    if structure == "network":
        return NETWORK_PRIOR_KEYS
    keys = ["intercept", "bias"]
    if likelihood == "beta_binomial":
        keys.append("log_concentration")
        if heterogeneity == "partial_pooling":
            keys.append("log_concentration_sd")
    elif heterogeneity == "partial_pooling":
        keys += ["log_tau", "log_tau_sd"]
    else:
        keys.append("tau")
    if selection is not None:
        keys += list(SELECTION_CLASSES.values())
    return tuple(keys)


def _is_finite_number(value: object) -> bool:
    """Return whether ``value`` is a finite real number (``bool`` is not a number here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _checked_params(dist: object, raw: Mapping[str, object], where: str) -> tuple:
    """Validate the parameters of distribution ``dist``; return them as sorted pairs.

    ``where`` is the key path that error messages start with, e.g. ``"priors.tau"``.
    """
    if not isinstance(dist, str) or dist not in _DIST_PARAMS:
        raise SpecError(
            f"{where}.dist: unknown distribution {dist!r}; choose one of {', '.join(_DIST_PARAMS)}"
        )
    names = _DIST_PARAMS[dist]
    for key in raw:
        if key not in names:
            raise SpecError(
                f"{where}.{key}: not a parameter of {dist} (its parameters are {', '.join(names)})"
            )
    pairs = []
    for key in names:
        if key not in raw:
            raise SpecError(f"{where}.{key}: missing; {dist} needs {', '.join(names)}")
        value = raw[key]
        if not _is_finite_number(value):
            raise SpecError(f"{where}.{key}: must be a finite number, got {value!r}")
        if key in _POSITIVE_PARAMS and value <= 0:
            raise SpecError(f"{where}.{key}: must be > 0, got {value!r}")
        pairs.append((key, float(value)))
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class Prior:
    """A prior distribution: its name and its parameters.

    Parameters
    ----------
    dist : str
        ``"normal"`` (mu, sigma) or ``"student_t"`` (nu, mu, sigma) for location parameters;
        ``"halfnormal"`` (sigma), ``"halfstudent_t"`` (nu, sigma) or ``"exponential"`` (lam)
        for scale parameters; ``"beta"`` (alpha, beta) for probabilities (the selection
        weights). Parameter names and meanings are PyMC's.
    params : tuple of (str, float) pairs, or mapping
        The parameters; stored as ``(name, value)`` pairs sorted by name, so a prior is
        hashable. sigma, nu, lam, alpha and beta must be > 0 and every value finite.

    Raises
    ------
    SpecError
        If the distribution is unknown or a parameter is missing, unknown or invalid.
    """

    dist: str
    params: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _checked_params(self.dist, dict(self.params), "prior"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "prior") -> Prior:
        """Build a prior from a table such as ``{"dist": "normal", "mu": 0.0, "sigma": 1.0}``.

        Parameters
        ----------
        d : mapping
            ``dist`` and the distribution's parameters.
        where : str, default "prior"
            Key path that error messages start with, e.g. ``"priors.tau"``.

        Raises
        ------
        SpecError
            If ``d`` is not a table or any entry is invalid; the message names the key.
        """
        if not isinstance(d, Mapping):
            raise SpecError(
                f'{where}: must be a table such as {{ dist = "normal", mu = 0.0, sigma = 1.0 }}, '
                f"got {d!r}"
            )
        if "dist" not in d:
            raise SpecError(f"{where}.dist: missing; choose one of {', '.join(_DIST_PARAMS)}")
        params = {key: value for key, value in d.items() if key != "dist"}
        return cls(d["dist"], _checked_params(d["dist"], params, where))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"dist": ..., **params}``, parameters in their usual order."""
        return {"dist": self.dist, **{name: self.param(name) for name in _DIST_PARAMS[self.dist]}}

    def param(self, name: str) -> float:
        """Return the value of parameter ``name``.

        Raises
        ------
        KeyError
            If the distribution has no such parameter.
        """
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(f"{self.dist} prior has no parameter {name!r}; it has {self.params}")

    def scaled(self, factor: float) -> Prior:
        """Return the prior with its scale multiplied by ``factor`` (prior sensitivity).

        sigma is multiplied by ``factor`` and the exponential's rate lam divided by it;
        locations (mu) and degrees of freedom (nu) are unchanged, and so is a beta prior of a
        probability (it has no scale to widen: its support is already 0 to 1).

        Raises
        ------
        SpecError
            If ``factor`` is not a finite number > 0.
        """
        if not _is_finite_number(factor) or factor <= 0:
            raise SpecError(f"factor: must be a finite number > 0, got {factor!r}")
        rescale = {"sigma": factor, "lam": 1 / factor}
        return Prior(self.dist, {k: v * rescale.get(k, 1.0) for k, v in self.params})

    def describe(self) -> str:
        """Return the prior in plain words, e.g. ``"Normal(mean 0, sd 1.5)"``."""
        title, words = _DIST_WORDS[self.dist]
        args = ", ".join(f"{words[k]} {self.param(k):g}" for k in _DIST_PARAMS[self.dist])
        return f"{title}({args})"

    def _scipy(self) -> Any:
        """Return the frozen scipy distribution; for a half distribution, the one it folds."""
        p = dict(self.params)
        match _FOLDED.get(self.dist, self.dist):
            case "normal":
                return stats.norm(p.get("mu", 0.0), p["sigma"])
            case "student_t":
                return stats.t(p["nu"], p.get("mu", 0.0), p["sigma"])
            case "beta":
                return stats.beta(p["alpha"], p["beta"])
            case _:
                return stats.expon(scale=1 / p["lam"])

    def logpdf(self, x: Any) -> np.ndarray:
        """Return the log density at ``x`` (scipy-based; ``-inf`` outside the support)."""
        x = np.asarray(x, dtype=float)
        logpdf = self._scipy().logpdf(x)
        if self.dist in _FOLDED:
            return np.where(x >= 0, np.log(2.0) + logpdf, -np.inf)
        return logpdf

    def mean_sd(self) -> tuple[float, float]:
        """Return the prior's mean and standard deviation (``inf`` where they do not exist)."""
        dist = self._scipy()
        if self.dist not in _FOLDED:
            return float(dist.mean()), float(dist.std())
        # |X| for X symmetric about 0: E|X| = 2 E[X; X > 0], E[X^2] unchanged by folding
        mean = 2.0 * float(dist.expect(lambda x: x, lb=0.0))
        return mean, float(np.sqrt(max(float(dist.var()) + float(dist.mean()) ** 2 - mean**2, 0)))

    def quantile(self, q: Any) -> np.ndarray:
        """Return the quantile function (inverse CDF) at probabilities ``q``."""
        q = np.asarray(q, dtype=float)
        return self._scipy().ppf((1 + q) / 2 if self.dist in _FOLDED else q)


class _PriorMap(Mapping[str, Prior]):
    """A read-only, hashable and picklable mapping from prior key to :class:`Prior`."""

    def __init__(self, items: Mapping[str, Prior] | None = None) -> None:
        self._data = dict(items or {})

    def __getitem__(self, key: str) -> Prior:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


def _checked_priors(section: str, raw: object, keys: tuple[str, ...], model: str) -> _PriorMap:
    """Validate one table of priors (``priors`` or ``conditional_priors``) of a model.

    ``keys`` are the prior keys the model uses; ``model`` names it in error messages.
    """
    if not isinstance(raw, Mapping):
        raise SpecError(f"{section}: must be a table of priors keyed by name, got {raw!r}")
    checked = {}
    for key, value in raw.items():
        where = f"{section}.{key}"
        if key not in _PRIOR_KEYS:
            raise SpecError(f"{where}: unknown prior key; prior keys are {', '.join(_PRIOR_KEYS)}")
        if key not in keys:
            raise SpecError(f"{where}: not used by {model}, whose priors are {', '.join(keys)}")
        prior = value if isinstance(value, Prior) else Prior.from_dict(value, where)
        family = _PRIOR_KEYS[key].family
        if prior.dist not in _FAMILY_DISTS[family]:
            raise SpecError(
                f"{where}.dist: {prior.dist} cannot be the prior of a {family} parameter; "
                f"use one of {', '.join(_FAMILY_DISTS[family])}"
            )
        checked[key] = prior
    return _PriorMap({key: checked[key] for key in keys if key in checked})


def _check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise SpecError naming ``key`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise SpecError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")


def _toml_string(text: str) -> str:
    """Quote ``text`` as a TOML basic string."""
    quoted = "".join(
        _TOML_ESCAPES.get(c, f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
        for c in text
    )
    return f'"{quoted}"'


@dataclass(frozen=True)
class ModelSpec:
    """A validated, immutable model specification.

    Parameters
    ----------
    name : str
        Name shown in reports; :func:`load_spec` defaults it to the file's stem.
    likelihood : {"beta_binomial", "logit_normal"}
        How each study's events arise (see DESIGN §3 and ``docs/``).
    heterogeneity : {"partial_pooling", "shared", "per_modality"}
        How the between-study heterogeneity (phi or tau) is shared across modalities.
    priors : mapping of str to Prior (or to a table such as ``{"dist": "normal", ...}``)
        Exactly the prior keys this likelihood and heterogeneity use, all required:
        ``intercept`` and ``bias`` always; ``log_concentration`` (plus
        ``log_concentration_sd`` under partial pooling) for beta-binomial; ``tau`` (or
        ``log_tau`` and ``log_tau_sd`` under partial pooling) for logit-normal.
    conditional_priors : mapping, default empty
        Priors of the complete-given-any stage of the joint response model; keys missing here
        fall back to ``priors``.
    description : str, default ""
        One line that reports print under the name.
    outcome : {None, "any", "complete", "partial", "response"}, default None
        Default outcome to fit; None leaves the choice to the caller.
    selection : {None, "by_response"}, default None
        Publication selection: None assumes every study published whatever its result;
        ``"by_response"`` models a study with no responders as published with a relative
        probability w per selection class (:data:`SELECTION_CLASSES`), each with its prior
        (``selection_case_report``, ``selection_case_series``; beta priors). Not for the
        joint response model.
    structure : {"studies", "network"}, default "studies"
        What a row is (:data:`STRUCTURES`). ``"network"``: rows sharing ``study`` are arms of
        one trial, fitted by the arm-based network model; it needs ``likelihood =
        "logit_normal"``, ``heterogeneity = "shared"``, no selection, one outcome, and the
        priors ``effect``, ``baseline_mean``, ``baseline_sd`` and ``effect_sd``
        (:data:`NETWORK_PRIOR_KEYS`).
    source : str, default ""
        Path or ``"shipped:NAME"`` the specification was loaded from; not compared.

    Raises
    ------
    SpecError
        If any field is invalid; the message names the key, e.g. ``"priors.tau.sigma"``.
    """

    name: str
    likelihood: str
    heterogeneity: str
    priors: Mapping[str, Prior]
    conditional_priors: Mapping[str, Prior] = field(default_factory=_PriorMap)
    description: str = ""
    outcome: str | None = None
    selection: str | None = None
    structure: str = "studies"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError(f"name: must be a non-empty string, got {self.name!r}")
        if not isinstance(self.description, str):
            raise SpecError(f"description: must be a string, got {self.description!r}")
        _check_choice("likelihood", self.likelihood, LIKELIHOODS)
        _check_choice("heterogeneity", self.heterogeneity, HETEROGENEITIES)
        if self.outcome is not None:
            _check_choice("outcome", self.outcome, SPEC_OUTCOMES)
        if self.selection is not None:
            _check_choice("selection", self.selection, SELECTIONS)
            if self.outcome == "response":
                raise SpecError(
                    "selection: publication selection is modelled on one outcome's events; "
                    'the joint response model (outcome = "response") cannot take it'
                )
        _check_choice("structure", self.structure, STRUCTURES)
        if self.structure == "network":
            self._check_network()
        keys = _model_prior_keys(
            self.likelihood, self.heterogeneity, self.selection, self.structure
        )
        model = f"a {self.likelihood} model with {self.heterogeneity} heterogeneity"
        if self.selection is not None:
            model += f" and selection {self.selection}"
        if self.structure == "network":
            model = "the network model"
        for section in ("priors", "conditional_priors"):
            checked = _checked_priors(section, getattr(self, section), keys, model)
            object.__setattr__(self, section, checked)
        for key in keys:
            if key not in self.priors:
                raise SpecError(
                    f"priors.{key}: missing; {model} needs priors for {', '.join(keys)}"
                )

    def _check_network(self) -> None:
        """SpecError naming the key that a network specification cannot have."""
        fixed = {"likelihood": "logit_normal", "heterogeneity": "shared"}
        for key, value in fixed.items():
            if getattr(self, key) != value:
                raise SpecError(
                    f'{key}: the network model (structure = "network") is {key} = "{value}", '
                    f"got {getattr(self, key)!r}"
                )
        if self.selection is not None:
            raise SpecError('selection: the network model (structure = "network") has none')
        if self.outcome == "response":
            raise SpecError(
                'outcome: the network model (structure = "network") fits one outcome; '
                '"response" (the joint model) is not one'
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> ModelSpec:
        """Build and validate a specification from a plain dict (e.g. parsed TOML).

        Parameters
        ----------
        d : mapping
            Top-level keys: name, description, likelihood, heterogeneity, outcome, selection,
            structure, priors, conditional_priors. likelihood, heterogeneity and priors are
            required.
        source : str, default ""
            Where ``d`` came from. When ``d`` has no name, the name is the file stem of
            ``source`` (or NAME of ``"shipped:NAME"``).

        Raises
        ------
        SpecError
            If a key is unknown, missing or invalid; the message names it.
        """
        if not isinstance(d, Mapping):
            raise SpecError(f"a model specification must be a table, got {d!r}")
        for key in d:
            if key not in _TOP_LEVEL_KEYS:
                raise SpecError(
                    f"{key}: unknown top-level key; allowed keys are {', '.join(_TOP_LEVEL_KEYS)}"
                )
        for key in ("likelihood", "heterogeneity", "priors"):
            if key not in d:
                raise SpecError(f"{key}: missing; a model specification must set it")
        if "name" in d:
            name = d["name"]
        elif source.startswith("shipped:"):
            name = source.removeprefix("shipped:")
        elif source:
            name = Path(source).stem
        else:
            raise SpecError("name: missing, and there is no file name to take it from")
        return cls(
            name=name,
            likelihood=d["likelihood"],
            heterogeneity=d["heterogeneity"],
            priors=d["priors"],
            conditional_priors=d.get("conditional_priors", {}),
            description=d.get("description", ""),
            outcome=d.get("outcome"),
            selection=d.get("selection"),
            structure=d.get("structure", "studies"),
            source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON- and TOML-serialisable dict; ``from_dict`` of it equals this spec.

        ``outcome`` and ``selection`` are left out when None (TOML has no null), ``structure``
        when it is the default ``"studies"``; ``source`` is left out.
        """
        d: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "likelihood": self.likelihood,
            "heterogeneity": self.heterogeneity,
        }
        if self.outcome is not None:
            d["outcome"] = self.outcome
        if self.selection is not None:
            d["selection"] = self.selection
        if self.structure != "studies":
            d["structure"] = self.structure
        for section in ("priors", "conditional_priors"):
            d[section] = {key: prior.to_dict() for key, prior in getattr(self, section).items()}
        return d

    def to_toml(self) -> str:
        """Return the specification as TOML text, each prior under a comment saying what it is."""
        d = self.to_dict()
        lines = [f"# Model specification {self.name!r}, written by bayesreview."]
        keys = ("name", "description", "likelihood", "heterogeneity", "outcome", "selection")
        for key in (*keys, "structure"):
            if key in d:
                lines.append(f"{key} = {_toml_string(d[key])}")
        for section in ("priors", "conditional_priors"):
            if not d[section]:
                continue
            lines += ["", f"[{section}]"]
            for key, table in d[section].items():
                fields = ", ".join(
                    f"{k} = {_toml_string(v) if isinstance(v, str) else repr(v)}"
                    for k, v in table.items()
                )
                lines += [f"# {_PRIOR_KEYS[key].meaning}", f"{key} = {{ {fields} }}"]
        return "\n".join(lines) + "\n"

    def pools_heterogeneity(self, n_groups: int) -> bool:
        """Whether heterogeneity is partially pooled across ``n_groups`` groups.

        Partial pooling needs two groups or more: over one group the spread of the log scale
        across groups is unidentified, a funnel that makes NUTS diverge. With one group a
        partial-pooling model has a single log scale with the location prior
        (``log_concentration`` or ``log_tau``).
        """
        return self.heterogeneity == "partial_pooling" and n_groups > 1

    def prior(self, key: str, stage: str = "marginal") -> Prior:
        """Return the prior of ``key``.

        Parameters
        ----------
        key : str
            A prior key of this model, e.g. ``"intercept"``.
        stage : {"marginal", "conditional"}, default "marginal"
            ``"conditional"`` is the complete-given-any stage of the joint response model:
            its prior is taken from ``conditional_priors`` when set there, else from ``priors``.

        Raises
        ------
        SpecError
            If this model has no such prior or the stage is unknown.
        """
        _check_choice("stage", stage, _STAGES)
        if stage == "conditional" and key in self.conditional_priors:
            return self.conditional_priors[key]
        if key not in self.priors:
            raise SpecError(
                f"priors.{key}: not used by model {self.name!r}, "
                f"whose priors are {', '.join(self.priors)}"
            )
        return self.priors[key]

    def with_prior(
        self, key: str, prior: Prior | Mapping[str, Any], stage: str = "marginal"
    ) -> ModelSpec:
        """Return a new, validated specification with the prior of ``key`` replaced.

        Parameters
        ----------
        key : str
            A prior key of this model.
        prior : Prior or mapping
            The new prior, or a table such as ``{"dist": "normal", "mu": 0, "sigma": 2}``.
        stage : {"marginal", "conditional"}, default "marginal"
            Replace it in ``priors`` or in ``conditional_priors``.

        Raises
        ------
        SpecError
            If the result is invalid; this specification is left unchanged.
        """
        _check_choice("stage", stage, _STAGES)
        section = "priors" if stage == "marginal" else "conditional_priors"
        return dataclasses.replace(self, **{section: {**getattr(self, section), key: prior}})

    def scaled_priors(self, factor: float) -> ModelSpec:
        """Return a specification with every prior's scale multiplied by ``factor``.

        See :meth:`Prior.scaled`; conditional priors are scaled too. Used for prior
        sensitivity grids (e.g. factors 0.5, 1, 2).
        """
        return dataclasses.replace(
            self,
            priors={k: p.scaled(factor) for k, p in self.priors.items()},
            conditional_priors={k: p.scaled(factor) for k, p in self.conditional_priors.items()},
        )

    def with_selection(self, selection: str = "by_response") -> ModelSpec:
        """Return this specification with publication selection added.

        The selection weights take the priors of the shipped ``selection`` specification
        (``models/selection.toml``); the name gains ``"+selection"``. A specification that
        already models selection is returned as is.

        Raises
        ------
        SpecError
            If ``selection`` is unknown or the specification is the joint response model.
        """
        if self.selection is not None:
            return self
        shipped = load_spec("selection")
        priors = {**self.priors, **{k: shipped.priors[k] for k in SELECTION_CLASSES.values()}}
        return dataclasses.replace(
            self, name=f"{self.name}+selection", selection=selection, priors=priors, source=""
        )

    def describe(self) -> str:
        """Return several lines of plain English: likelihood, pooling, and every prior."""
        param = "phi" if self.likelihood == "beta_binomial" else "tau"
        lines = [f"Model {self.name!r}" + (f" ({self.source})" if self.source else "")]
        if self.description:
            lines.append(f"  {self.description}")
        if self.structure == "network":
            return "\n".join(
                [
                    *lines,
                    f"Structure: {_NETWORK_WORDS}",
                    f"Outcome: {_OUTCOME_WORDS[self.outcome]}",
                    "Priors:",
                    *(_describe_prior(key, prior) for key, prior in self.priors.items()),
                ]
            )
        lines += [
            f"Likelihood: {_LIKELIHOOD_WORDS[self.likelihood]}",
            f"Heterogeneity: {_HETEROGENEITY_WORDS[self.heterogeneity].format(p=param)}",
            f"Outcome: {_OUTCOME_WORDS[self.outcome]}",
            f"Publication selection: {_SELECTION_WORDS[self.selection]}",
            "Priors:",
            *(_describe_prior(key, prior) for key, prior in self.priors.items()),
        ]
        if self.conditional_priors:
            lines.append("Priors of the complete-given-any stage (other keys as above):")
            lines += [_describe_prior(k, p) for k, p in self.conditional_priors.items()]
        elif self.outcome == "response":
            lines.append("The complete-given-any stage uses the same priors.")
        return "\n".join(lines)


def _describe_prior(key: str, prior: Prior) -> str:
    """Return one line saying what the prior of ``key`` is and what it means.

    A location or probability prior is summarised by its central 95% interval, a scale prior
    by the value that 95% of its mass lies below.
    """
    info = _PRIOR_KEYS[key]
    line = f"  {key} ~ {prior.describe()}: {info.meaning}"
    if info.family == "scale":
        return f"{line}; 95% prior mass below {prior.quantile(0.95):.3g}."
    low, high = prior.quantile([0.025, 0.975])
    line += f"; 95% prior interval {low:.3g} to {high:.3g}"
    if info.transform is not None:
        line += (
            f", i.e. {info.natural_scale} {info.transform(low):.3g} to {info.transform(high):.3g}"
        )
    return line + "."


def shipped_models() -> list[str]:
    """Return the names of the shipped model specifications, sorted."""
    return sorted(path.stem for path in resource_dir("models").glob("*.toml"))


def load_spec(model: str | os.PathLike[str] | ModelSpec) -> ModelSpec:
    """Load and validate a model specification.

    Parameters
    ----------
    model : str, path-like or ModelSpec
        A :class:`ModelSpec` is returned as is. A string with no path separator and no
        ``.toml`` suffix names a shipped specification (see :func:`shipped_models`), e.g.
        ``"beta_binomial"``, the default model; anything else is the path of a TOML file.

    Raises
    ------
    SpecError
        If the shipped name is unknown (the message lists the shipped names), the file is
        missing (the message names the path), the TOML is invalid (the message gives the file,
        line and column) or the specification is invalid (the message names the file and key).
    """
    if isinstance(model, ModelSpec):
        return model
    is_name = isinstance(model, str) and not (
        model.endswith(".toml") or any(sep and sep in model for sep in (os.sep, os.altsep))
    )
    if is_name:
        path = resource_dir("models") / f"{model}.toml"
        if not path.is_file():
            raise SpecError(
                f"unknown model {model!r}; the shipped models are {', '.join(shipped_models())} "
                "(or pass the path of your own .toml file)"
            )
        source = f"shipped:{model}"
    else:
        path = Path(model).expanduser()
        if not path.is_file():
            raise SpecError(f"model specification file not found: {path}")
        source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from exc
    try:
        return ModelSpec.from_dict(data, source=source)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
