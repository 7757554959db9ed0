"""Webhooks: log records POSTed in signed JSON batches, queued durably on disk first.

`Webhooks` is built by the composition root from `[[webhooks]]`; `mta.webhooks.signing`
documents the signature scheme and has `verify()` for receivers written in Python.
"""

from mta.webhooks.metrics import WebhookCollector
from mta.webhooks.service import Webhooks
from mta.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, verify

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookCollector",
    "Webhooks",
    "signature",
    "verify",
]
