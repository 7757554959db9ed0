"""Exceptions raised by the spool."""

from __future__ import annotations


class SpoolError(Exception):
    """Root of every error the spool raises."""


class SpoolUnavailable(SpoolError):
    """The spool cannot accept writes now (disk full, I/O error, min_free_bytes, closed)."""


class SpoolLocked(SpoolError):
    """Another process (or Spool instance) holds the spool directory."""


class UnknownMessage(SpoolError, KeyError):
    """The message id is not in the spool."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0]) if self.args else ""
