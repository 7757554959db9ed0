"""Routing: which destination each recipient takes, from `[[routes]]` (first match wins).

A route matches by recipient domain (exact, `*.suffix`, `*`), full address (`addresses`), a
`regex` over the address, and optionally `tenant`; every criterion given must match. Its
destination is one of: MX resolution (`mx`, the default), smart hosts (`relay`, with `tls` and
SASL `auth`), an LMTP server (`lmtp`), `discard`, or a Postfix transport map that Mailman writes
(`transport_file` + `format`), whose entries send list addresses to Mailman's LMTP port.

Routing happens at acceptance: recipients whose route depends on more than their domain are
kept in a leg of their own, keyed `domain!routing-key` (KumoMTA's `!routing_domain` in the
scheduled queue name), so that one message's recipients of one domain may split across routes.
A leg is routed again when it is bound to a site, by its first recipient (all of a leg's
recipients took the same route), so route changes apply after a restart.
"""

from mta.routing.destination import DISCARD, MX, Destination, Rejected, parse_transport
from mta.routing.router import S550_NO_SUCH_USER, Router
from mta.routing.secrets import PasswordSource

__all__ = [
    "DISCARD",
    "MX",
    "S550_NO_SUCH_USER",
    "Destination",
    "PasswordSource",
    "Rejected",
    "Router",
    "parse_transport",
]
