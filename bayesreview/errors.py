"""Exceptions raised by bayesreview."""


class BayesReviewError(Exception):
    """Base class of every error bayesreview raises on purpose."""


class DataError(BayesReviewError, ValueError):
    """The study table is malformed; the message names the rows and columns."""


class SpecError(BayesReviewError, ValueError):
    """A model specification is malformed; the message names the key."""


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics say the posterior may not be trustworthy."""
