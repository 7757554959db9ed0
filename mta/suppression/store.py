"""The narrow storage interface of the suppression list, and its node-local implementation.

`LocalStore` keeps every entry in memory (a lookup at RCPT is one dict access) and durably
in SQLite under the spool directory: WAL journal with `synchronous=FULL`, so each change is
fsynced before the call returns and survives SIGKILL or power loss. Writes run in a worker
thread, one at a time; they are rare (one per hard bounce or admin call).
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
from pathlib import Path
from typing import Literal, Protocol

from mta.suppression.entry import Entry, StoreUnavailable, tenant_key

STORE_DIR = "suppression"
STORE_FILE = "suppression.sqlite3"


class _All(enum.Enum):
    TENANTS = "all tenants"


ALL_TENANTS: Literal[_All.TENANTS] = _All.TENANTS  # `entries(ALL_TENANTS, ...)`: every tenant
TenantFilter = str | None | Literal[_All.TENANTS]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppression (
    tenant TEXT NOT NULL,
    recipient TEXT NOT NULL,
    reason TEXT NOT NULL,
    classification TEXT NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (tenant, recipient)
)
"""
_COLUMNS = "tenant, recipient, reason, classification, source, created, expires"
_UPSERT = f"INSERT OR REPLACE INTO suppression ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


class SuppressionStore(Protocol):
    """Where entries live. Every method may raise StoreUnavailable; `recipient` arguments
    are already normalized (`entry.normalize`)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def get(self, tenant: str | None, recipient: str, now: float) -> Entry | None: ...
    async def put(self, entry: Entry) -> None: ...
    async def remove(self, tenant: str | None, recipient: str) -> bool: ...
    async def entries(
        self, tenant: TenantFilter, recipient: str | None, now: float
    ) -> list[Entry]: ...
    async def purge(self, now: float) -> int: ...


class LocalStore:
    """Entries of this node: in memory, and in `<spool>/suppression/suppression.sqlite3`."""

    def __init__(self, spool_path: Path) -> None:
        self.path = spool_path / STORE_DIR / STORE_FILE
        self._db: sqlite3.Connection | None = None
        self._entries: dict[tuple[str, str], Entry] = {}
        self._lock = asyncio.Lock()  # one write at a time, in order

    def __len__(self) -> int:
        return len(self._entries)

    async def open(self) -> None:
        """Open (or create) the database and load the live entries into memory."""
        self._db, rows = await asyncio.to_thread(self._open)
        self._entries = {(tenant_key(e.tenant), e.recipient): e for e in rows}

    def _open(self) -> tuple[sqlite3.Connection, list[Entry]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit
        db.execute(_SCHEMA)
        rows = db.execute(f"SELECT {_COLUMNS} FROM suppression").fetchall()
        return db, [_entry(row) for row in rows]

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await asyncio.to_thread(db.close)

    async def get(self, tenant: str | None, recipient: str, now: float) -> Entry | None:
        entry = self._entries.get((tenant_key(tenant), recipient))
        return None if entry is None or entry.expired(now) else entry

    async def put(self, entry: Entry) -> None:
        row = (
            tenant_key(entry.tenant),
            entry.recipient,
            entry.reason,
            entry.classification,
            entry.source,
            entry.created,
            entry.expires,
        )
        await self._write(_UPSERT, row)
        self._entries[(tenant_key(entry.tenant), entry.recipient)] = entry

    async def remove(self, tenant: str | None, recipient: str) -> bool:
        key = (tenant_key(tenant), recipient)
        if key not in self._entries:
            return False
        await self._write("DELETE FROM suppression WHERE tenant = ? AND recipient = ?", key)
        self._entries.pop(key, None)
        return True

    async def entries(self, tenant: TenantFilter, recipient: str | None, now: float) -> list[Entry]:
        return [
            entry
            for (key, rcpt), entry in self._entries.items()
            if (tenant is ALL_TENANTS or key == tenant_key(tenant))
            and (recipient is None or rcpt == recipient)
            and not entry.expired(now)
        ]

    async def purge(self, now: float) -> int:
        """Forget expired entries, in memory and on disk; how many there were."""
        expired = [key for key, entry in self._entries.items() if entry.expired(now)]
        if expired:
            await self._write("DELETE FROM suppression WHERE expires <= ?", (now,))
            for key in expired:
                self._entries.pop(key, None)
        return len(expired)

    async def _write(self, sql: str, params: tuple[object, ...]) -> None:
        async with self._lock:
            db = self._db
            if db is None:
                raise StoreUnavailable("the suppression store is closed")
            try:
                await asyncio.to_thread(db.execute, sql, params)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc


def _entry(row: tuple[object, ...]) -> Entry:
    tenant, recipient, reason, classification, source, created, expires = row
    return Entry.from_storage(
        {
            "tenant": tenant,
            "recipient": recipient,
            "reason": reason,
            "classification": classification,
            "source": source,
            "created": created,
            "expires": expires,
        }
    )
