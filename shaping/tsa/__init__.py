"""Traffic-shaping automation (TSA): the rule engine (pure logic, no I/O) and the
``mta tsa`` daemon that runs it for a whole cluster.

The engine (:class:`AutomationState`) turns log records into :mod:`events` (suspensions,
bounces, configuration overrides); the daemon (``shaping.tsa.daemon``) serves them over
KumoMTA's TSA endpoints. A node without a TSA runs the same engine in process.
"""

from .events import (
    AutomationEvent,
    ConfigOverride,
    EventFormatError,
    ReadyQueueSuspension,
    SchedQueueBounce,
    SchedQueueSuspension,
    event_from_json,
    event_to_message,
    message_to_event,
)

__all__ = [
    "AutomationEvent",
    "ConfigOverride",
    "EventFormatError",
    "ReadyQueueSuspension",
    "SchedQueueBounce",
    "SchedQueueSuspension",
    "event_from_json",
    "event_to_message",
    "message_to_event",
]
