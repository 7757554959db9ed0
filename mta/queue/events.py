"""The log records the queue manager writes for each recipient outcome."""

from __future__ import annotations

from typing import Any, Protocol

from mta.bounce import BounceClassifier, load_classifier
from mta.delivery import Outcome
from mta.logs import RecordLog
from mta.queue.meta import Leg, Meta, record_meta
from mta.replies import Reply

ADMIN_SITE = "localhost"
_OUTCOME_TYPES = {"delivered": "Delivery", "transient": "TransientFailure", "permanent": "Bounce"}


class OutcomeLog(Protocol):
    def outcome(
        self,
        msg_id: str,
        meta: Meta,
        leg: Leg,
        rcpt: str,
        outcome: Outcome,
        site: str,
        *,
        egress_pool: str | None = None,
        egress_source: str | None = None,
        provider: str | None = None,
    ) -> None: ...

    def expiration(
        self, msg_id: str, meta: Meta, leg: Leg, rcpt: str, reply: Reply, site: str
    ) -> None: ...


class QueueEvents:
    """Turns queue outcomes into KumoMTA-style log records."""

    def __init__(self, records: RecordLog, classifier: BounceClassifier | None = None) -> None:
        self._records = records
        self._classifier = classifier or load_classifier()  # the node's: `[bounce] rules_files`

    def outcome(
        self,
        msg_id: str,
        meta: Meta,
        leg: Leg,
        rcpt: str,
        outcome: Outcome,
        site: str,
        *,
        egress_pool: str | None = None,
        egress_source: str | None = None,
        provider: str | None = None,
    ) -> None:
        """One attempt's outcome for `rcpt`; the egress pool and source when one was used,
        the provider (shaping `[provider."x"]`) the destination matched."""
        kind = _OUTCOME_TYPES[outcome.kind]
        self._records.record(
            kind,  # type: ignore[arg-type]
            **_common(msg_id, meta, leg, rcpt, site),
            response=outcome.reply,
            command=outcome.command,
            peer_address=outcome.peer,
            num_attempts=leg["attempts"] + 1,
            bounce_classification=self._classifier.classify(outcome.reply),
            delivery_protocol="ESMTP",
            tls_cipher=outcome.tls_cipher,
            tls_protocol_version=outcome.tls_protocol_version,
            egress_pool=egress_pool,
            egress_source=egress_source,
            provider=provider,
        )

    def expiration(
        self, msg_id: str, meta: Meta, leg: Leg, rcpt: str, reply: Reply, site: str
    ) -> None:
        self._records.record(
            "Expiration",
            **_common(msg_id, meta, leg, rcpt, site),
            response=reply,
            num_attempts=leg["attempts"],
            bounce_classification="MessageExpired",
        )

    def admin_bounce(self, msg_id: str, meta: Meta, leg: Leg, rcpt: str, reply: Reply) -> None:
        """An administrator bounced the recipient (KumoMTA logs these with site "localhost")."""
        self._records.record(
            "AdminBounce",
            **_common(msg_id, meta, leg, rcpt, ADMIN_SITE),
            response=reply,
            num_attempts=leg["attempts"],
        )

    def suspended(self, msg_id: str, meta: Meta, leg: Leg, rcpt: str, reply: Reply) -> None:
        """A scheduled-queue suspension held the recipient back (site: the queue, as KumoMTA).

        Both admin records keep the "Uncategorized" class: no remote server judged the mail.
        """
        self._records.record(
            "TransientFailure",
            **_common(msg_id, meta, leg, rcpt, leg["queue"]),
            response=reply,
            num_attempts=leg["attempts"],
        )


def _common(msg_id: str, meta: Meta, leg: Leg, rcpt: str, site: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "sender": meta["sender"],
        "recipient": rcpt,
        "queue": leg["queue"],
        "site": site,
        "size": meta["size"],
        "created": meta["created"],
        "meta": record_meta(meta),
        "headers": meta.get("headers"),
        "reception_protocol": meta["reception_protocol"],
    }
