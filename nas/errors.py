"""The errors a user can cause, in one hierarchy under :class:`NasError`.

Everything a user can fix (a bad option, a file that is missing or of another run, an
architecture outside the space, a profile without a model for the space) raises a
:class:`NasError` subclass, naming what is wrong and what is allowed. Any other exception is a
bug: the CLI reports it as one (exit 1), never as bad input.

The subclasses also derive from the built-in exception they refine (``ValueError``,
``FileNotFoundError``), so ``except ValueError`` keeps working.

Example:
    >>> try:
    ...     nas.create_space("nope")
    ... except nas.NasError as exc:
    ...     print(exc)   # unknown search space 'nope'; registered spaces are [...]
"""

from __future__ import annotations


class NasError(Exception):
    """Base of every error a user can cause and fix."""


class ConfigError(NasError, ValueError):
    """An argument or option has a value that is not allowed."""


class InvalidArchError(NasError, ValueError):
    """An architecture (or its text/dict form) does not belong to a search space."""


class RunDirError(NasError, ValueError):
    """A run directory, or one of its artefacts, is missing, malformed or of another run."""


class ProfileError(NasError, ValueError):
    """A hardware profile is unknown, malformed, or has no model for the space asked for."""


class MissingFileError(NasError, FileNotFoundError):
    """A file or folder the user named does not exist."""
