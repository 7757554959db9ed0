"""Limits shared by all sessions: message rates per user and per IP, DATA bytes in flight."""

from __future__ import annotations

from shaping.spec import ThrottleSpec, parse_throttle_spec
from shaping.throttle import MemoryThrottle

AUTH_RATE_KEY = "smtp-auth-rate:"
IP_RATE_KEY = "smtp-ip-rate:"


class MessageRates:
    """`[smtp] auth_rate` per authenticated user, `ip_rate` per IP of the others.

    In process memory on purpose: taking mail in must never wait on Redis. Checked and
    consumed at MAIL FROM, where Postfix users know it from (smtpd_client_message_rate_limit).
    """

    def __init__(
        self, auth_rate: str | None, ip_rate: str | None, throttle: MemoryThrottle | None = None
    ) -> None:
        self._auth: ThrottleSpec | None = parse_throttle_spec(auth_rate) if auth_rate else None
        self._ip: ThrottleSpec | None = parse_throttle_spec(ip_rate) if ip_rate else None
        self._throttle = throttle if throttle is not None else MemoryThrottle()

    def allow_message(self, *, user: str | None, ip: str) -> bool:
        """Count one message; False when it is over the applicable limit (nothing counted)."""
        if user is not None:
            spec, key = self._auth, AUTH_RATE_KEY + user
        else:
            spec, key = self._ip, IP_RATE_KEY + ip
        return spec is None or not self._throttle.check_now(key, spec).throttled


class DataBudget:
    """Octets of DATA held in memory by all sessions together.

    Checked when a DATA command starts: a message already being received is never cut off
    (its own size is bounded by max_message_bytes), new ones wait until memory is released.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_flight = 0

    @property
    def exhausted(self) -> bool:
        return self.in_flight >= self.max_bytes

    def take(self, octets: int) -> None:
        self.in_flight += octets

    def release(self, octets: int) -> None:
        self.in_flight -= octets
