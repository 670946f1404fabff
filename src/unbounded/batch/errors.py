"""Failures of a batch as a whole (a job's own failure is a result, never an exception)."""

from __future__ import annotations

from ..errors import ConfigError, UnboundedError


class BatchError(UnboundedError):
    """The batch cannot start or go on."""


class JobFileError(BatchError):
    """The job file cannot be used at all: missing, unreadable, or holding duplicate ids."""


class MissingJobFileError(JobFileError):
    """The job file does not exist or cannot be read."""


class EmptyJobFileError(JobFileError):
    """The job file holds no job (only blank lines, or nothing)."""


class DuplicateJobIdError(JobFileError):
    """Two lines of the job file share an id, so results could not be told apart or resumed."""


class RayUnavailableError(ConfigError):
    """Ray was asked for but is not installed, or its cluster cannot be reached."""


class PoolError(ConfigError):
    """A model pool could not start any actor."""


class BatchUsageError(BatchError, ValueError):
    """Options that do not go together (e.g. a Ray model pool without a Ray runner)."""
