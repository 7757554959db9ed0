"""Compact in-memory forms of a queued message and its legs.

The queue holds every queued message in memory, a million of them on a busy node, so each is
a `__slots__` object rather than the nested dicts of its stored JSON (`mta.queue.meta`): about
a third of the memory. Strings that many messages share (queue names, domains, the sender,
the peer, the last reply) are interned, so each distinct one is held once.

Both read like the stored meta (`message["legs"]["example.com"]["rcpts"]`), so read-only
consumers (log records, DSNs, the admin API) need not know the difference; only the queue
manager changes them, through their attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, Final

from mta.queue.meta import META_VERSION

# The stored meta's own keys, in the order they are written.
_MESSAGE_FIELDS: Final = (
    "sender",
    "created",
    "size",
    "reception_protocol",
    "peer",
    "tenant",
    "campaign",
)
_KNOWN_KEYS: Final = frozenset({"v", "legs", *_MESSAGE_FIELDS})
LEG_FIELDS: Final = ("rcpts", "attempts", "due", "queue", "last_reply")
# Up to this many legs are kept in a tuple (a linear search is cheaper than a dict's memory).
MAX_TUPLE_LEGS: Final = 8


def _interned(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


_intern = sys.intern


class QueuedLeg(Mapping[str, Any]):
    """One leg: the recipients of one domain, with their attempt count and due time."""

    __slots__ = ("attempts", "domain", "due", "last_reply", "queue", "rcpts")

    def __init__(
        self,
        domain: str,
        rcpts: tuple[str, ...],
        attempts: int,
        due: float,
        queue: str,
        last_reply: str | None,
    ) -> None:
        # Positional only in practice: a million of these are built at a restart.
        self.domain: str = _intern(domain)
        self.rcpts = rcpts
        self.attempts = attempts
        self.due = due
        self.queue: str = _intern(queue)
        self.last_reply: str | None = _interned(last_reply)

    @classmethod
    def from_json(cls, domain: str, leg: Mapping[str, Any]) -> QueuedLeg:
        get = leg.get
        return cls(
            domain,
            tuple(leg["rcpts"]),
            get("attempts", 0),
            leg["due"],
            get("queue") or domain,
            get("last_reply"),
        )

    def to_json(self) -> dict[str, Any]:
        """The leg as stored (a fresh dict)."""
        return {
            "rcpts": list(self.rcpts),
            "attempts": self.attempts,
            "due": self.due,
            "queue": self.queue,
            "last_reply": self.last_reply,
        }

    def set_last_reply(self, reply: str) -> None:
        self.last_reply = sys.intern(reply)  # a refusing site gives every leg the same reply

    def __getitem__(self, key: str) -> Any:
        if key not in LEG_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(LEG_FIELDS)

    def __len__(self) -> int:
        return len(LEG_FIELDS)

    def __repr__(self) -> str:
        return f"QueuedLeg({self.domain!r}, {self.to_json()!r})"


class QueuedMessage(Mapping[str, Any]):
    """A queued message: the envelope and reception facts, and its legs by domain.

    Keys of the stored meta that this version does not know are kept (in `extra`) and
    written back unchanged.
    """

    __slots__ = (
        "_legs",
        "campaign",
        "created",
        "extra",
        "peer",
        "reception_protocol",
        "sender",
        "size",
        "tenant",
    )

    def __init__(self, meta: Mapping[str, Any]) -> None:
        """From a checked meta (`mta.queue.meta.check_meta`), new or read from the spool."""
        get = meta.get
        self.sender: str = _intern(meta["sender"])
        self.created: float = get("created", 0.0)
        self.size: int = get("size", 0)
        self.reception_protocol: str | None = _interned(get("reception_protocol"))
        self.peer: str | None = _interned(get("peer"))
        self.tenant: str | None = _interned(get("tenant"))
        self.campaign: str | None = _interned(get("campaign"))
        self.extra: dict[str, Any] | None = None
        if not _KNOWN_KEYS.issuperset(meta):
            self.extra = {k: v for k, v in meta.items() if k not in _KNOWN_KEYS}
        from_json = QueuedLeg.from_json
        legs = [from_json(domain, leg) for domain, leg in meta["legs"].items()]
        self._legs: tuple[QueuedLeg, ...] | dict[str, QueuedLeg] = _leg_store(legs)

    # -- the legs ----------------------------------------------------------------------------

    def leg(self, domain: str) -> QueuedLeg | None:
        legs = self._legs
        if isinstance(legs, dict):
            return legs.get(domain)
        for leg in legs:
            if leg.domain == domain:
                return leg
        return None

    def legs(self) -> tuple[QueuedLeg, ...]:
        """Every leg, in the order of the stored meta."""
        legs = self._legs
        return tuple(legs.values()) if isinstance(legs, dict) else legs

    def drop_leg(self, domain: str) -> QueuedLeg | None:
        """Take a leg out (its recipients are done); None if there is no such leg."""
        legs = self._legs
        if isinstance(legs, dict):
            return legs.pop(domain, None)
        leg = self.leg(domain)
        if leg is not None:
            self._legs = tuple(other for other in legs if other is not leg)
        return leg

    # -- the stored form ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The meta as stored (`mta.queue.meta`): fresh dicts, safe to hand to the spool."""
        meta: dict[str, Any] = {"v": META_VERSION}
        meta.update((name, getattr(self, name)) for name in _MESSAGE_FIELDS)
        if self.extra:
            meta.update(self.extra)
        meta["legs"] = {leg.domain: leg.to_json() for leg in self.legs()}
        return meta

    def __getitem__(self, key: str) -> Any:
        if key == "legs":
            return _LegsView(self)
        if key == "v":
            return META_VERSION
        if key in _MESSAGE_FIELDS:
            return getattr(self, key)
        if self.extra is not None:
            return self.extra[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield "v"
        yield from _MESSAGE_FIELDS
        if self.extra:
            yield from self.extra
        yield "legs"

    def __len__(self) -> int:
        return 2 + len(_MESSAGE_FIELDS) + len(self.extra or ())

    def __repr__(self) -> str:
        return f"QueuedMessage({self.to_json()!r})"


class _LegsView(Mapping[str, QueuedLeg]):
    """`message["legs"]`: the legs by domain, read-only."""

    __slots__ = ("_message",)

    def __init__(self, message: QueuedMessage) -> None:
        self._message = message

    def __getitem__(self, domain: str) -> QueuedLeg:
        leg = self._message.leg(domain)
        if leg is None:
            raise KeyError(domain)
        return leg

    def __iter__(self) -> Iterator[str]:
        return iter([leg.domain for leg in self._message.legs()])

    def __len__(self) -> int:
        return len(self._message.legs())


def _leg_store(legs: list[QueuedLeg]) -> tuple[QueuedLeg, ...] | dict[str, QueuedLeg]:
    if len(legs) <= MAX_TUPLE_LEGS:
        return tuple(legs)
    return {leg.domain: leg for leg in legs}
