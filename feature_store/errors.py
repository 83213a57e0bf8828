"""Errors a user can act on.

The CLI prints these as one line (no traceback) because they describe a
problem with the user's data or configuration, not a bug in the suite.
Each carries where the problem is (file, column, row) when it is known.
"""

from __future__ import annotations


class LeadrankError(Exception):
    """Base class of every error the CLI reports as a single line."""

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 row: int | None = None, hint: str | None = None):
        self.message, self.file, self.column, self.row, self.hint = message, file, column, row, hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [f"file {self.file}" if self.file else None,
                 f"column '{self.column}'" if self.column else None,
                 f"row {self.row}" if self.row is not None else None]
        loc = ", ".join(w for w in where if w)
        text = f"{loc}: {self.message}" if loc else self.message
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(LeadrankError):
    """The dataset spec is invalid or would leak outcomes into features."""


class DataError(LeadrankError):
    """The data does not match its spec."""


class OutcomeAccessError(LeadrankError):
    """A method tried to read labels or outcomes of the test split."""


class ConfigError(LeadrankError):
    """A profile or a --set override is invalid."""
