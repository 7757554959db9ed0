"""An authoritative DNS server on loopback that tests script record by record.

The server answers real DNS packets over UDP and TCP (same port number) so the
code under test can use its ordinary resolver pointed at ``host:port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import Counter
from typing import Final, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

FAILURE_MODES: Final = frozenset({"SERVFAIL", "REFUSED", "timeout", "TRUNCATE"})
"""Modes accepted by :meth:`TestDNSServer.fail`.

``SERVFAIL``/``REFUSED`` answer with that rcode, ``timeout`` never answers, and
``TRUNCATE`` answers UDP queries with an empty TC=1 reply so the client must
retry over TCP (where the real answer is given).
"""

_log = logging.getLogger(__name__)
_MAX_CNAME_HOPS: Final = 8
_UDP_DEFAULT_PAYLOAD: Final = 512


def _name(name: str | dns.name.Name) -> dns.name.Name:
    if isinstance(name, dns.name.Name):
        return name if name.is_absolute() else name.concatenate(dns.name.root)
    return dns.name.from_text(name, origin=dns.name.root)


def _key(name: dns.name.Name) -> str:
    text: str = name.to_text(omit_final_dot=True).lower()
    return text


class TestDNSServer:
    """Authoritative test DNS server for every name, scripted through a zone API.

    Names never added get NXDOMAIN, names that exist without the asked type get
    NOERROR/NODATA; both carry an SOA in the authority section so resolvers can
    cache negatively. Every answer has AA set. ``queries`` counts each query
    received (UDP and TCP) by ``(name, type)``, e.g. ``queries["example.com", "MX"]``,
    names lowercase without the trailing dot.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, negative_ttl: int = 60) -> None:
        self._bind_host = host
        self._bind_port = port
        self.negative_ttl = negative_ttl
        self.queries: Counter[tuple[str, str]] = Counter()
        self.errors: list[Exception] = []
        self._records: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        self._failures: dict[dns.name.Name, str] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._bind_host

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("TestDNSServer is not started")
        return self._port

    async def start(self) -> None:
        """Bind UDP and TCP on the same port (retrying a few ports if needed)."""
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        for _ in range(20):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self),
                local_addr=(self._bind_host, self._bind_port),
                family=socket.AF_INET,
            )
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, self._bind_host, port, family=socket.AF_INET
                )
            except OSError as error:
                transport.close()
                last_error = error
                if self._bind_port:
                    raise
                continue
            self._udp = transport
            self._port = port
            return
        raise RuntimeError(f"could not bind UDP+TCP on one port: {last_error}")

    async def stop(self) -> None:
        """Close both sockets and drop any TCP connection still open."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            # Closing the transports ends each handler at EOF. (Cancelling the
            # handler tasks instead makes Python 3.11's start_server log an error.)
            for writer in list(self._tcp_writers):
                writer.transport.abort()
            if self._tcp_tasks:
                await asyncio.wait(list(self._tcp_tasks), timeout=5)
            await self._tcp.wait_closed()
            self._tcp = None

    async def __aenter__(self) -> TestDNSServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- zone API ------------------------------------------------------------------

    def add(self, name: str, rdtype: str, *rdatas: str, ttl: int = 300) -> None:
        """Add records, e.g. ``add("example.com", "MX", "10 mx1.example.com.")``.

        Names in rdata may omit the trailing dot (they are taken as absolute).
        Adding to an existing (name, type) extends that RRset.
        """
        if not rdatas:
            raise ValueError("add() needs at least one rdata text")
        owner = _name(name)
        rrset = dns.rrset.from_text_list(
            owner,
            ttl,
            dns.rdataclass.IN,
            rdtype,
            list(rdatas),
            origin=dns.name.root,
            relativize=False,
        )
        by_type = self._records.setdefault(owner, {})
        existing = by_type.get(rrset.rdtype)
        if existing is None:
            by_type[rrset.rdtype] = rrset
        else:
            for rdata in rrset:
                existing.add(rdata, rrset.ttl)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        """Remove all records of ``name`` (or only those of ``rdtype``)."""
        owner = _name(name)
        if rdtype is None:
            self._records.pop(owner, None)
            return
        by_type = self._records.get(owner, {})
        by_type.pop(dns.rdatatype.from_text(rdtype), None)
        if not by_type:
            self._records.pop(owner, None)

    def fail(self, name: str, mode: str) -> None:
        """Script a failure for every query about ``name`` (see FAILURE_MODES)."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {sorted(FAILURE_MODES)}, not {mode!r}")
        self._failures[_name(name)] = mode

    def clear_failure(self, name: str) -> None:
        self._failures.pop(_name(name), None)

    def query_count(self, name: str, rdtype: str) -> int:
        """How many queries arrived for ``(name, rdtype)``, name in any spelling."""
        return self.queries[_key(_name(name)), rdtype.upper()]

    # -- answering -----------------------------------------------------------------

    def _exists(self, name: dns.name.Name) -> bool:
        if name in self._records:
            return True
        # An empty non-terminal (a parent of an existing name) exists too.
        return any(owner.is_subdomain(name) for owner in self._records)

    def _soa(self, name: dns.name.Name) -> dns.rrset.RRset:
        for apex in (name, *_ancestors(name)):
            explicit = self._records.get(apex, {}).get(dns.rdatatype.SOA)
            if explicit is not None:
                return explicit
        labels = name.labels
        apex = dns.name.Name(labels[-3:]) if len(labels) > 3 else name
        soa = f"ns.test. hostmaster.test. 1 3600 600 86400 {self.negative_ttl}"
        return dns.rrset.from_text(apex, self.negative_ttl, "IN", "SOA", soa)

    def _failure_for(self, names: list[dns.name.Name]) -> str | None:
        for name in names:
            mode = self._failures.get(name)
            if mode is not None:
                return mode
        return None

    def respond(self, wire: bytes, *, over_tcp: bool) -> bytes | None:
        """Build the wire answer to a query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        try:
            return self._answer(query, over_tcp=over_tcp)
        except Exception as error:  # a bug here must not look like a DNS timeout
            _log.exception("TestDNSServer failed to answer %s", query.question)
            self.errors.append(error)
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()

    def _answer(self, query: dns.message.Message, *, over_tcp: bool) -> bytes | None:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname = question.name
        qtype = question.rdtype
        self.queries[_key(qname), dns.rdatatype.to_text(qtype)] += 1

        chain = [qname]
        answer: list[dns.rrset.RRset] = []
        current = qname
        for _ in range(_MAX_CNAME_HOPS):
            by_type = self._records.get(current, {})
            if qtype == dns.rdatatype.ANY:
                answer.extend(by_type.values())
                break
            found = by_type.get(qtype)
            cname = by_type.get(dns.rdatatype.CNAME)
            if found is not None:
                answer.append(found)
                break
            if cname is None or qtype == dns.rdatatype.CNAME:
                break
            answer.append(cname)
            current = cname[0].target
            chain.append(current)

        mode = self._failure_for(chain)
        if mode == "timeout":
            return None
        if mode in ("SERVFAIL", "REFUSED"):
            response.set_rcode(dns.rcode.from_text(mode))
            return response.to_wire()
        if mode == "TRUNCATE" and not over_tcp:
            response.flags |= dns.flags.TC
            return response.to_wire()

        response.answer.extend(answer)
        dangling_cname = bool(answer) and answer[-1].rdtype == dns.rdatatype.CNAME
        if not answer or (dangling_cname and qtype not in (dns.rdatatype.CNAME, dns.rdatatype.ANY)):
            if not self._exists(current):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa(current))

        max_size = 65535
        if not over_tcp:
            max_size = query.payload if query.edns >= 0 else _UDP_DEFAULT_PAYLOAD
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tcp_tasks.add(task)
        self._tcp_writers.add(writer)
        try:
            while True:
                try:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    wire = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                reply = self.respond(wire, over_tcp=True)
                if reply is None:
                    continue  # scripted timeout: keep the connection, say nothing
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._tcp_tasks.discard(task)
            self._tcp_writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _ancestors(name: dns.name.Name) -> list[dns.name.Name]:
    result = []
    while name != dns.name.root:
        name = name.parent()
        result.append(name)
    return result


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: TestDNSServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's selector UDP transport does not subclass DatagramTransport)
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self._server.respond(data, over_tcp=False)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)
