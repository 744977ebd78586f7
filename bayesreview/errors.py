"""Exceptions raised by bayesreview."""


class BayesReviewError(Exception):
    """Base class of every error bayesreview raises on purpose."""


class DataError(BayesReviewError, ValueError):
    """The study table is malformed; the message names the rows and columns."""


class SpecError(BayesReviewError, ValueError):
    """A model specification is malformed; the message names the key."""


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics say the posterior may not be trustworthy."""


class BackendFallbackWarning(UserWarning):
    """A faster route that relies on another library's internals was not used: the package
    fell back to the library's own, slower route. The message says why and what it costs."""


class WeakIdentificationWarning(UserWarning):
    """The data barely move a parameter from its prior (e.g. a bias effect when no study's
    rating is known): what depends on it is the prior's, and the message says what to read
    instead."""


class AssumptionWarning(UserWarning):
    """An estimate rests on an assumption that the data cannot check (e.g. a treatment that
    no comparative study reaches, compared through exchangeable study baselines alone); the
    message names the assumption and what rests on it."""
