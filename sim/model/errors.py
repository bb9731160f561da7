"""Errors a user can cause, and how the command line reports them.

Every problem with user input (a scenario file, a sweep spec, a command-line value) raises
:class:`FlosimError` or a subclass with a message that names the file, the field and the value.
``flosim`` prints that message on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations


class FlosimError(Exception):
    """A problem caused by user input; its message is meant to be read by the user."""


class ScenarioError(FlosimError):
    """A scenario file is missing, malformed or violates the schema."""


class SpecError(FlosimError):
    """A sweep spec or other experiment description is invalid."""
