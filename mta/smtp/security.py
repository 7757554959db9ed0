"""The inbound security state shared by all sessions, built from `[smtp]` config."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiosmtpd.smtp import Session

from mta.config import SmtpConfig
from mta.smtp import validate
from mta.smtp.auth import FailureBudget, SmtpUsers, install_log_redaction
from mta.smtp.limits import DataBudget, MessageRates
from mta.smtp.sender_policy import SenderPolicy
from mta.smtp.tls import TlsProvider


@dataclass(frozen=True)
class Security:
    """TLS, AUTH users and their failure budget, rates, DATA memory, sender policy, proxies."""

    tls: TlsProvider | None
    users: SmtpUsers
    failures: FailureBudget
    rates: MessageRates
    data: DataBudget
    senders: SenderPolicy
    proxy_networks: tuple[validate.Network, ...]

    @classmethod
    def from_config(cls, config: SmtpConfig) -> Security:
        """Raises TlsError / CredentialsError / SenderPolicyError naming a bad file."""
        install_log_redaction()
        tls = None
        if config.tls_cert_file is not None and config.tls_key_file is not None:
            tls = TlsProvider(config.tls_cert_file, config.tls_key_file)
        return cls(
            tls=tls,
            users=SmtpUsers(config.auth_users_file, config.auth_users_dir),
            failures=FailureBudget(
                config.auth_max_failures, config.auth_failure_window, config.auth_failure_delay
            ),
            rates=MessageRates(config.auth_rate, config.ip_rate),
            data=DataBudget(config.max_data_in_flight_bytes),
            senders=SenderPolicy(config.sender_policy_file, config.sender_policy_default),
            proxy_networks=validate.parse_networks(config.proxy_networks),
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The current context (files re-checked at most once a second), None without TLS."""
        if self.tls is None:
            return None
        self.tls.refresh()
        return self.tls.context


def session_user(session: Session) -> str | None:
    """The authenticated user of an aiosmtpd Session (None before a successful AUTH)."""
    user = session.auth_data if session.authenticated else None
    return user if isinstance(user, str) else None


class ClientSession(Session):
    """aiosmtpd's Session plus the raw argument of the command being handled.

    The RCPT hook sees the path only as parsed, with any source route dropped; relay
    control also looks at what the client actually wrote.
    """

    command_argument: str | None = None


def command_argument(session: Session) -> str | None:
    return session.command_argument if isinstance(session, ClientSession) else None
