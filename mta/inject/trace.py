"""Trace headers of injected messages, as KumoMTA adds them (`trace_headers` in the request).

- The supplemental header (default `X-KumoRef`, on by default): base64 of a JSON object with
  KumoMTA's marker `"_@_": "\\_/"`, the recipient, and the metadata named in
  `include_meta_names`, so feedback reports (ARF) can be matched to the original mailing.
  Names are looked up in the recipient's `metadata`, then in the message's own meta
  (`tenant` and `campaign` from X-Tenant / X-Campaign, `received_from`, `reception_protocol`,
  `rcpt_meta`); names with no value are left out.
- The Received header (off by default, so injector addresses stay private): RFC 5321 4.4.

Both go on top of the message, the supplemental header first (KumoMTA prepends it last).
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

import orjson

from mta.accept import header_values
from mta.inject.errors import InvalidValue, bad_request
from mta.inject.headers import MAX_LINE, check_name
from mta.inject.schema import TraceHeaders

MARKER = {"_@_": "\\_/"}  # KumoMTA's key identifying its supplemental header
RECEPTION_PROTOCOL = "HTTP"
_HEADER_META = {"tenant": b"x-tenant", "campaign": b"x-campaign"}


class TracePlan:
    """The trace headers of one request; `lines` gives them for one message."""

    def __init__(
        self, spec: TraceHeaders, *, hostname: str, peer: str, sender: str, date: str
    ) -> None:
        if spec.supplemental_header:
            try:
                check_name(spec.header_name)
            except InvalidValue as exc:
                raise bad_request(f"trace_headers.header_name: {exc}") from None
        self._spec = spec
        self._peer = peer
        sender_domain = sender.rpartition("@")[2]
        self._received_prefix = (
            f"Received: from {sender_domain or hostname} ({_literal(peer)})\r\n"
            f"\tby {hostname} (mta) with {RECEPTION_PROTOCOL} id "
        )
        self._received_date = date

    @property
    def enabled(self) -> bool:
        return self._spec.supplemental_header or self._spec.received_header

    def lines(
        self, *, recipient: str, msg_id: str, metadata: Mapping[str, Any], data: bytes
    ) -> bytes:
        """The trace header lines to put on top of `data` (the rest of the message)."""
        out = b""
        if self._spec.supplemental_header:
            out += self._supplemental(recipient, metadata, data)
        if self._spec.received_header:
            out += (
                f"{self._received_prefix}{msg_id}\r\n\tfor <{recipient}>;\r\n"
                f"\t{self._received_date}\r\n"
            ).encode()
        return out

    def _supplemental(self, recipient: str, metadata: Mapping[str, Any], data: bytes) -> bytes:
        payload: dict[str, Any] = {**MARKER, "recipient": recipient}
        if self._spec.include_meta_names:
            payload.update(self._meta(metadata, data))
        value = base64.b64encode(_json(payload)).decode("ascii")
        line = f"{self._spec.header_name}: {value}"
        if len(line) > MAX_LINE:  # only with huge metadata; keep within the line limit
            line = "\r\n\t".join(line[i : i + 76] for i in range(0, len(line), 76))
        return (line + "\r\n").encode("ascii")

    def _meta(self, metadata: Mapping[str, Any], data: bytes) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in self._spec.include_meta_names:
            value = self._meta_value(name, metadata, data)
            if value is not None:
                found[name] = value
        return found

    def _meta_value(self, name: str, metadata: Mapping[str, Any], data: bytes) -> Any:
        if name in metadata:
            return metadata[name]
        if name in _HEADER_META:
            return header_values(data, (_HEADER_META[name],))[0]
        return {
            "received_from": self._peer,
            "reception_protocol": RECEPTION_PROTOCOL,
            "rcpt_meta": dict(metadata) or None,
        }.get(name)


def _literal(peer: str) -> str:
    """The peer as an RFC 5321 4.1.3 address literal, or "unknown"."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return "unknown"
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def _json(payload: dict[str, Any]) -> bytes:
    # Sorted keys and no spaces: what KumoMTA's serde_json produces for the same object.
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
