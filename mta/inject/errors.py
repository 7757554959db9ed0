"""Errors of the inject API.

`InjectError` refuses a whole request (the HTTP layer answers its `status` with its `message`);
`RecipientError` fails one recipient only and becomes an `errors` entry of the response.
"""

from __future__ import annotations

BAD_REQUEST = 400  # malformed request: missing fields, wrong types, bad static values
UNPROCESSABLE = 422  # template or content syntax error (KumoMTA answers 422 too)


class InjectError(Exception):
    """The whole request is refused: `status` (400 or 422) with `message` naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> InjectError:
    return InjectError(BAD_REQUEST, message)


def unprocessable(message: str) -> InjectError:
    return InjectError(UNPROCESSABLE, message)


class RecipientError(Exception):
    """One recipient's message cannot be generated; the text is the reason reported."""


class InvalidValue(ValueError):
    """A value that cannot go into a message (header, address, name); the text is the reason.

    Callers add the field path and decide whether it fails the request or one recipient.
    """
