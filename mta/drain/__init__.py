"""Scale-down without stranded mail: hand a node's queued messages to a peer node.

- `wire`: the body of `POST /api/internal/accept/v1`;
- `receiver` + `accepted`: the peer's side, idempotent by original message id;
- `client` + `drainer`: the sending side, shared by `mta spool drain` and the node's own
  drain at SIGTERM (`live`, `[node] drain_to`).
"""

from mta.drain.accepted import AcceptedIds
from mta.drain.drainer import Drainer, DrainReport
from mta.drain.receiver import HandoverReceiver
from mta.drain.wire import ACCEPT_PATH

__all__ = ["ACCEPT_PATH", "AcceptedIds", "DrainReport", "Drainer", "HandoverReceiver"]
