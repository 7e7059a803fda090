"""Errors a user can cause or meet, each with its exit code.

Every error raised to the command line is printed as ONE line that names the
cause and the fix; the exit codes are listed in the README.

==== ===============================================================
code meaning
==== ===============================================================
0    success
1    unexpected internal error (a bug: please report it with the log)
2    bad input: configuration, command line, manifest, model file, or
     data that cannot serve the request (no items, no clear pair, ...)
3    an external service failed: STAC API or asset server unreachable
     after retries
4    the output store refused the write: conflicting region/grid,
     locked by another run, unwritable path or disk full
==== ===============================================================
"""

from __future__ import annotations


class StfError(Exception):
    """Base class: an error with a one-line message and an exit code."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(StfError):
    """Bad input from the user (config, CLI, manifest, model file, data selection)."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration file or value is invalid; the message names the field."""


class ServiceError(StfError):
    """An external service (STAC API, asset server) failed after retries."""

    exit_code = 3


class StoreError(StfError):
    """The output store cannot be written safely (conflict, lock, permissions, space)."""

    exit_code = 4
