"""`AdminClient`: one method per endpoint of a node's HTTP API (KumoMTA-compatible shapes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mta.client.transport import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, Transport, authorization

BOUNCE = "/api/admin/bounce/v1"
SUSPEND = "/api/admin/suspend/v1"
SUSPEND_READY_Q = "/api/admin/suspend-ready-q/v1"
INSPECT_MESSAGE = "/api/admin/inspect-message/v1"
QUEUE_SUMMARY = "/api/admin/queue-summary/v1"
INJECT = "/api/inject/v1"
LIVENESS = "/api/check-liveness/v1"
SUPPRESSION = "/api/admin/suppression/v1"


def _criteria(**fields: Any) -> dict[str, Any]:
    """A request body without the fields that were not given (None, empty, False)."""
    return {key: value for key, value in fields.items() if value not in (None, False, [], ())}


class AdminClient:
    """A synchronous client for the admin and inject endpoints of one node.

    Every method returns the decoded JSON answer and raises `ClientError(status, message)`
    when the node cannot be reached or answers with a non-2xx status. Credentials are
    optional: a `token` is sent as Bearer, `user` + `password` as Basic. Raises ValueError
    for an endpoint that is not an http(s) base URL.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        auth = authorization(user, password, token)
        self._http = Transport(endpoint, auth=auth, timeout=timeout)

    @property
    def endpoint(self) -> str:
        """The base URL requests go to, without a trailing slash."""
        return self._http.endpoint

    def check_liveness(self) -> Any:
        """GET /api/check-liveness/v1."""
        return self._http.request("GET", LIVENESS)

    def queue_summary(self) -> Any:
        """GET /api/admin/queue-summary/v1: counts and ages of the scheduled and ready queues."""
        return self._http.request("GET", QUEUE_SUMMARY)

    def inspect_message(self, msg_id: str, *, want_body: bool = False) -> Any:
        """GET /api/admin/inspect-message/v1: `{"id", "message": {sender, recipient, ...}}`."""
        query = {"id": msg_id, "want_body": "true" if want_body else "false"}
        return self._http.request("GET", INSPECT_MESSAGE, query=query)

    def bounce(
        self,
        reason: str,
        *,
        domain: str | None = None,
        routing_domain: str | None = None,
        tenant: str | None = None,
        campaign: str | None = None,
        queue_names: Sequence[str] = (),
        duration: str | None = None,
        expires: str | None = None,
        suppress_logging: bool = False,
    ) -> Any:
        """POST /api/admin/bounce/v1; with no criteria at all, every queue is bounced."""
        body = _criteria(
            domain=domain,
            routing_domain=routing_domain,
            tenant=tenant,
            campaign=campaign,
            queue_names=list(queue_names),
            duration=duration,
            expires=expires,
            suppress_logging=suppress_logging,
        )
        return self._http.request("POST", BOUNCE, body={**body, "reason": reason})

    def bounce_list(self) -> Any:
        """GET /api/admin/bounce/v1: the active bounce rules."""
        return self._http.request("GET", BOUNCE)

    def bounce_cancel(self, rule_id: str) -> Any:
        """DELETE /api/admin/bounce/v1 with `{"id": rule_id}`."""
        return self._http.request("DELETE", BOUNCE, body={"id": rule_id})

    def suspend(
        self,
        reason: str,
        *,
        domain: str | None = None,
        routing_domain: str | None = None,
        tenant: str | None = None,
        campaign: str | None = None,
        queue_names: Sequence[str] = (),
        duration: str | None = None,
        expires: str | None = None,
    ) -> Any:
        """POST /api/admin/suspend/v1: matching scheduled queues stop promoting mail."""
        body = _criteria(
            domain=domain,
            routing_domain=routing_domain,
            tenant=tenant,
            campaign=campaign,
            queue_names=list(queue_names),
            duration=duration,
            expires=expires,
        )
        return self._http.request("POST", SUSPEND, body={**body, "reason": reason})

    def suspend_list(self) -> Any:
        """GET /api/admin/suspend/v1: the active suspensions."""
        return self._http.request("GET", SUSPEND)

    def suspend_cancel(self, rule_id: str) -> Any:
        """DELETE /api/admin/suspend/v1 with `{"id": rule_id}`."""
        return self._http.request("DELETE", SUSPEND, body={"id": rule_id})

    def suspend_ready_q(
        self, name: str, reason: str, *, duration: str | None = None, expires: str | None = None
    ) -> Any:
        """POST /api/admin/suspend-ready-q/v1: stop deliveries from one ready queue."""
        body = _criteria(duration=duration, expires=expires)
        return self._http.request(
            "POST", SUSPEND_READY_Q, body={"name": name, "reason": reason, **body}
        )

    def suspend_ready_q_list(self) -> Any:
        """GET /api/admin/suspend-ready-q/v1: the active ready-queue suspensions."""
        return self._http.request("GET", SUSPEND_READY_Q)

    def suspend_ready_q_cancel(self, rule_id: str) -> Any:
        """DELETE /api/admin/suspend-ready-q/v1 with `{"id": rule_id}`."""
        return self._http.request("DELETE", SUSPEND_READY_Q, body={"id": rule_id})

    def suppression_list(self, *, tenant: str | None = None, recipient: str | None = None) -> Any:
        """GET /api/admin/suppression/v1: entries of `tenant` ("": the default tenant; None:
        every tenant), optionally of one recipient."""
        query = {} if tenant is None else {"tenant": tenant}
        if recipient is not None:
            query["recipient"] = recipient
        return self._http.request("GET", SUPPRESSION, query=query)

    def suppression_add(
        self,
        recipient: str,
        *,
        tenant: str | None = None,
        reason: str | None = None,
        classification: str | None = None,
        duration: str | None = None,
    ) -> Any:
        """POST /api/admin/suppression/v1: suppress `recipient` (default: the node's ttl)."""
        body = _criteria(
            tenant=tenant, reason=reason, classification=classification, duration=duration
        )
        return self._http.request("POST", SUPPRESSION, body={"recipient": recipient, **body})

    def suppression_remove(self, recipient: str, *, tenant: str | None = None) -> Any:
        """DELETE /api/admin/suppression/v1?recipient=...&tenant=...: "removed <recipient>"."""
        query = {"recipient": recipient, **({"tenant": tenant} if tenant else {})}
        return self._http.request("DELETE", SUPPRESSION, query=query)

    def inject(self, payload: Mapping[str, Any]) -> Any:
        """POST /api/inject/v1 with a KumoMTA inject request; returns the counts and errors."""
        return self._http.request("POST", INJECT, body=dict(payload))

    def inject_message(self, sender: str, recipients: Sequence[str], content: str) -> Any:
        """Inject one raw RFC 5322 message for `recipients`, sent as it is."""
        payload = {
            "envelope_sender": sender,
            "recipients": [{"email": rcpt} for rcpt in recipients],
            "content": content,
            # A file from disk is a finished message, not a template: "{{" in an HTML part
            # must reach the recipient unchanged.
            "template_dialect": "Static",
        }
        return self.inject(payload)
