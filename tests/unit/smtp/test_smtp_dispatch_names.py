"""A session lists only its verbs and AUTH mechanisms in dir(); aiosmtpd still finds them all."""

import inspect

from aiosmtpd.smtp import SMTP

from mta.smtp.handler import Handler
from mta.smtp.session import SmtpSession, _dispatch_names


def test_dispatch_names_cover_every_verb_and_mechanism() -> None:
    names = _dispatch_names(SmtpSession)
    full = [name for name in dir(SmtpSession) if name.startswith(("smtp_", "auth_"))]
    assert names == full
    for verb in (
        "smtp_EHLO",
        "smtp_HELO",
        "smtp_MAIL",
        "smtp_RCPT",
        "smtp_DATA",
        "smtp_QUIT",
        "smtp_RSET",
        "smtp_NOOP",
        "smtp_STARTTLS",
        "auth_PLAIN",
        "auth_LOGIN",
    ):
        assert verb in names
    # our DATA override is what aiosmtpd will dispatch to
    assert SmtpSession.smtp_DATA is not SMTP.smtp_DATA


def test_handler_lists_every_hook_and_nothing_else() -> None:
    handler = Handler.__new__(Handler)  # dir() needs no state

    listed = dir(handler)

    hooks = [name for name in vars(Handler) if name.startswith(("handle_", "auth_"))]
    assert sorted(listed) == sorted(hooks)
    assert {"handle_EHLO", "handle_MAIL", "handle_RCPT", "handle_DATA"} <= set(listed)


def test_handle_ehlo_signature_kept_for_aiosmtpd_matches_the_code() -> None:
    code = Handler.handle_EHLO.__code__
    names = list(code.co_varnames[: code.co_argcount])

    bound = inspect.signature(Handler.__new__(Handler).handle_EHLO)

    assert ["self", *bound.parameters] == names
    assert len(bound.parameters) == 5  # aiosmtpd's current hook form, not the deprecated 4
