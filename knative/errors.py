"""The exception tree of the ``knative`` package.

Everything derives from :class:`KnativeError` (itself a :class:`~sluice.errors.SluiceError`) and
from the builtin it most resembles, so callers can catch either.
"""

from __future__ import annotations

from collections.abc import Sequence

from sluice.errors import Problem, SluiceError, problem_report

__all__ = ["FeaturesDisabled", "InvalidSettings", "KnativeError", "ManifestError"]


class KnativeError(SluiceError):
    """Root of the errors raised while turning an application into Kubernetes objects."""


class ManifestError(KnativeError, ValueError):
    """The application cannot run on Knative as written.

    ``problems`` lists every problem found, each naming the file, the YAML path and (in the
    message) the agent, like :class:`~sluice.errors.InvalidApplication`.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        header = "the application cannot be deployed to Knative ({count} problem{s}):"
        super().__init__(problem_report(header, self.problems))


class InvalidSettings(ManifestError):
    """``instance.computeCluster.configuration`` holds a value the generator cannot use."""


class FeaturesDisabled(KnativeError, RuntimeError):
    """Knative Serving's ``config-features`` lacks what the generated objects need.

    ``keys`` are the feature flags that are not ``enabled``.
    """

    def __init__(self, message: str, keys: Sequence[str]) -> None:
        super().__init__(message)
        self.keys = tuple(keys)
