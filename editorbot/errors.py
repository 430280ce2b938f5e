"""The exception hierarchy. Messages carry the offending value and the fix.

At the CLI an :class:`EditorbotError` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations


class EditorbotError(Exception):
    """Root of every error editorbot raises on purpose (a user or data problem, not a bug)."""


class ParameterError(EditorbotError, ValueError):
    """A bad argument or config value (unknown key, out-of-range number, wrong type)."""


class AudioLoadError(EditorbotError):
    """An audio file that cannot be used: missing, corrupt, empty, silent, too short, non-finite."""


class DatasetError(EditorbotError):
    """A training-data problem: no pairs, unmatched files, mismatched pairs, bad decision list."""


class CheckpointError(EditorbotError):
    """A checkpoint that is missing, incomplete, or from an incompatible editorbot version."""
