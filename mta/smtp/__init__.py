"""The SMTP front end: inbound SMTP on aiosmtpd, handing messages to the shared accept path."""

from mta.smtp.headers import ensure_message_id_and_date
from mta.smtp.server import SmtpServer
from mta.smtp.types import AcceptPath, EventLog, Inbound

__all__ = ["AcceptPath", "EventLog", "Inbound", "SmtpServer", "ensure_message_id_and_date"]
